"""Building environments from ``env`` params: the id, its settings checked by the environment's
own ``config_class`` (environment contract), and the spaces rlpipe can train."""
from __future__ import annotations

import dataclasses
from typing import Any

import gymnasium as gym

from rlpipe.config import ConfigError, EnvConfig, build

KWARGS_KEY = "env.kwargs"


def _creator(env_id: str) -> Any:
    """The registered entry point of ``env_id`` (imports ``module:`` ids and the built-ins)."""
    import rlpipe.envs

    rlpipe.envs.register()
    from gymnasium.envs.registration import _find_spec, load_env_creator

    spec = _find_spec(env_id)
    entry = spec.entry_point
    return load_env_creator(entry) if isinstance(entry, str) else entry


def env_settings(cfg: EnvConfig, key: str = KWARGS_KEY) -> dict[str, Any]:
    """``env.kwargs`` validated by the environment's ``config_class`` (when it declares one),
    with that class's defaults filled in; raises :class:`ConfigError` naming the key (``key``
    names the settings: ``env.kwargs``, or an evaluation variant's)."""
    try:
        creator = _creator(cfg.id)
    except Exception as e:  # noqa: BLE001 - unknown ids, 'module:Env' whose module is missing
        raise ConfigError(f"env.id: cannot make environment {cfg.id!r}: {_reason(e)}") from None
    config_class = getattr(creator, "config_class", None)
    if config_class is None:
        return dict(cfg.kwargs)
    settings = build(config_class, cfg.kwargs, key)
    return {f.name: getattr(settings, f.name) for f in dataclasses.fields(settings)}


def _reason(e: Exception) -> str:
    if isinstance(e, gym.error.Error):
        return str(e)
    return f"{type(e).__name__}: {e}"


def make_env(cfg: EnvConfig, settings: dict[str, Any] | None = None,
             key: str = KWARGS_KEY) -> gym.Env:
    """Build one environment; unknown ids, bad settings and unsupported spaces raise
    :class:`ConfigError` naming ``env.id`` or ``env.kwargs.<key>`` (``key``: see env_settings)."""
    if settings is None:
        settings = env_settings(cfg, key)
    kw = dict(settings)
    if cfg.max_episode_steps:
        kw["max_episode_steps"] = cfg.max_episode_steps
    try:
        env = gym.make(cfg.id, disable_env_checker=True, **kw)
    except TypeError as e:  # a setting the environment's constructor does not take
        raise ConfigError(f"{key}: {cfg.id!r} does not accept these settings: {e}") from None
    except Exception as e:  # noqa: BLE001 - the environment's own refusal, in one line
        raise ConfigError(f"env.id: cannot make environment {cfg.id!r}: {_reason(e)}") from None
    check_spaces(cfg.id, env)
    return env


def check_spaces(env_id: str, env: gym.Env) -> None:
    """Refuse, in one line naming ``env.id`` and the space, what rlpipe cannot train
    (:mod:`rlpipe.agents.spaces`, docs/SPACES.md)."""
    from rlpipe.agents.spaces import UnsupportedSpace, check_spaces as supported

    try:
        supported(env.observation_space, env.action_space)
    except UnsupportedSpace as e:
        env.close()
        raise ConfigError(f"env.id: {env_id!r}: {e}") from None
