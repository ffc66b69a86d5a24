"""Environments, agents and policies of an evaluation, from params or a checkpoint.

Shared by the ``evaluate`` stage (:mod:`rlpipe.evaluation.stage`) and ``rlpipe evaluate``.
"""
from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

from rlpipe.config import ConfigError, EnvConfig, Params
from rlpipe.envs import contract
from rlpipe.evaluation import seeds as S
from rlpipe.evaluation.episodes import AGENT_POLICIES, EpisodeResult, load_agent, run_episodes

#: the params sections that define the agent and its environment; the others (logging, figures)
#: are not needed to evaluate, so a checkpoint written when they had other keys still loads
RUN_SECTIONS = ("env", "agent", "train")
#: environments stepped together (one batched forward pass per step)
BATCH = 64


def configure_torch() -> None:
    """One torch thread and subnormals flushed to zero, as training runs (train.torch_threads: 1;
    rlpipe.train.run): the batches are small, and extra threads beside other busy processes cost
    more than they give (measured 3x slower evaluation)."""
    import torch

    torch.set_num_threads(1)
    torch.set_flush_denormal(True)


def same_weights(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Whether two checkpoints hold the same networks and observation statistics (then they
    play the same episodes the same way)."""
    import torch

    def equal(x, y) -> bool:
        if isinstance(x, dict) and isinstance(y, dict):
            return x.keys() == y.keys() and all(equal(x[k], y[k]) for k in x)
        if torch.is_tensor(x) and torch.is_tensor(y):
            return x.shape == y.shape and bool(torch.equal(x, y))
        return x == y

    return all(equal(a.get(k), b.get(k)) for k in ("actor", "critic", "obs_normalizer"))


def params_from_checkpoint(state: dict[str, Any]) -> Params:
    """The run's params as its checkpoint stored them. Keys a later version removed (the
    ``REMOVED`` of their section, e.g. ``train.vf_coef``) are dropped: an older run's checkpoint
    still evaluates and exports."""
    stored = json.loads(state["params"])
    kept = {}
    for name, values in stored.items():
        if name in RUN_SECTIONS:
            removed = getattr(Params.SECTIONS[name], "REMOVED", {})
            kept[name] = ({k: v for k, v in values.items() if k not in removed}
                          if isinstance(values, dict) else values)
    return Params.from_dict(kept)


def make_envs(env: EnvConfig, overrides: dict[str, Any], key: str, count: int) -> list:
    """``count`` environments of ``env`` with ``overrides`` replacing entries of its kwargs;
    a setting the environment refuses raises :class:`ConfigError` naming ``key``.<setting>."""
    from rlpipe.train.environment import env_settings, make_env

    cfg = replace(env, kwargs={**env.kwargs, **overrides})
    settings = env_settings(cfg, key)
    return [make_env(cfg, settings, key) for _ in range(max(1, count))]


def checkpoint_agent(state: dict[str, Any], params: Params, env, key: str):
    """The checkpoint's agent for ``env``; networks that do not fit it raise ConfigError naming ``key``."""
    try:
        return load_agent(state, env, params.agent)
    except (RuntimeError, ValueError, KeyError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ConfigError(f"{key}: the checkpoint's networks do not fit this environment "
                          f"({first})") from None


def has_reference(envs) -> bool:
    return contract.describe(envs[0]).has_reference


def evaluate(params: Params, state: dict[str, Any] | None, policy: str, episodes: int, seed: int,
             overrides: dict[str, Any] | None = None, key: str = "env.kwargs",
             lane: int = S.TEST) -> list[EpisodeResult]:
    """``episodes`` episodes of ``policy`` (a checkpoint's greedy/sampled actions, or a baseline)
    on the held-out seeds of ``seed`` (:mod:`rlpipe.evaluation.seeds`)."""
    if policy in AGENT_POLICIES and state is None:
        raise ConfigError(f"policy {policy!r} needs a checkpoint")
    configure_torch()
    envs = make_envs(params.env, overrides or {}, key, min(episodes, BATCH))
    try:
        agent = checkpoint_agent(state, params, envs[0], key) if policy in AGENT_POLICIES else None
        return run_episodes(envs, [S.episode_seed(seed, j, lane) for j in range(episodes)], policy,
                            agent, params.env.action_masking, repr(params.env.id))
    finally:
        for e in envs:
            e.close()


def evaluate_checkpoint(path, episodes: int = 50, seed: int = 0, policy: str = "greedy",
                        overrides: dict[str, Any] | None = None, key: str = "env.kwargs") -> dict:
    """One policy's block of eval/metrics.json (:func:`rlpipe.evaluation.report.summarize`) for
    the checkpoint at ``path`` (its own env and agent settings; ``overrides`` replace env.kwargs
    entries): what ``rlpipe evaluate`` prints."""
    from rlpipe.checkpoints import load_checkpoint
    from rlpipe.evaluation.report import summarize

    state = load_checkpoint(path)
    return summarize(evaluate(params_from_checkpoint(state), state, policy, episodes, seed,
                              overrides, key))
