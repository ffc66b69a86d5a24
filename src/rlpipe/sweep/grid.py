"""The ``sweep`` section -> the list of trials, every trial's params validated (pure, no I/O).

A trial's params are the training sections of params.yaml, then ``sweep.episodes`` (when set) as
``train.episodes``, then one grid point (its dotted keys), then one seed as ``train.seed``.
Building them with :class:`rlpipe.config.Params` checks every value before any trial starts,
and an error names the key: ``sweep.grid: train.actor_lr: must be between ... (setting ...)``.
"""
from __future__ import annotations

import hashlib
import itertools
import json
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

from rlpipe.config import ConfigError, Params, SweepConfig

BASE_SETTING = "base"  # the label and id of the one setting of an empty grid


@dataclass(frozen=True)
class Trial:
    """One training run of a sweep.

    Attributes:
        trial_id: folder name under ``trials/``: ``<setting id>-seed<seed>``.
        seed: the run's ``train.seed``.
        setting: the grid point, ``(dotted key, value)`` pairs in the grid's key order.
        setting_id: 8 hex digits of the setting's digest (``base`` for an empty grid).
        label: ``key=value,key=value`` (``base`` for an empty grid): the metrics' key.
        params: the validated params of the run.
    """

    trial_id: str
    seed: int
    setting: tuple[tuple[str, Any], ...]
    setting_id: str
    label: str
    params: Params

    @property
    def values(self) -> dict[str, Any]:
        return dict(self.setting)


def format_value(value: Any) -> str:
    """How a grid value reads in labels: strings as they are, anything else as JSON."""
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True)


def setting_label(setting: Sequence[tuple[str, Any]]) -> str:
    if not setting:
        return BASE_SETTING
    return ",".join(f"{k}={format_value(v)}" for k, v in setting)


def setting_id(setting: Sequence[tuple[str, Any]]) -> str:
    """A short stable id of a grid point (independent of the seeds and of other grid points)."""
    if not setting:
        return BASE_SETTING
    blob = json.dumps([[k, v] for k, v in setting], sort_keys=True).encode()
    return hashlib.sha256(blob).hexdigest()[:8]


def set_dotted(data: dict, key: str, value: Any) -> None:
    """``data[a][b][c] = value`` for ``key = "a.b.c"``; creates missing mappings on the way."""
    parts = key.split(".")
    node = data
    for i, part in enumerate(parts[:-1]):
        child = node.get(part)
        if child is None:
            child = node[part] = {}
        if not isinstance(child, dict):
            raise ConfigError(f"{'.'.join(parts[:i + 1])}: is not a mapping, so {key} cannot be set")
        node = child
    node[parts[-1]] = value


def settings(grid: Mapping[str, Sequence[Any]]) -> list[tuple[tuple[str, Any], ...]]:
    """Every grid point, the first key varying slowest (``itertools.product`` order)."""
    keys = list(grid)
    return [tuple(zip(keys, combo)) for combo in itertools.product(*(grid[k] for k in keys))]


def base_dict(base: Params, cfg: SweepConfig) -> dict:
    """The params every trial starts from: the training sections, ``sweep.episodes`` applied."""
    data = base.to_dict()
    data["sweep"] = {}  # a trial is a plain training run; its params do not hold the sweep
    if cfg.episodes is not None:  # the trials' budget, in place of train.episodes/total_steps
        data["train"]["episodes"] = cfg.episodes
        data["train"]["total_steps"] = None
    return data


def trial_params(base: dict, setting: Sequence[tuple[str, Any]], seed: int) -> Params:
    """``base`` with the setting's dotted keys and ``train.seed`` set, validated."""
    data = json.loads(json.dumps(base))
    for key, value in setting:
        set_dotted(data, key, value)
    data["train"]["seed"] = seed
    return Params.from_dict(data)


def expand(base: Params, cfg: SweepConfig) -> list[Trial]:
    """The trials of a sweep, settings in grid order and seeds inside each setting.

    Raises :class:`ConfigError` (naming the key) when any trial's params are invalid.
    """
    start = base_dict(base, cfg)
    trials = []
    for setting in settings(cfg.grid):
        label, sid = setting_label(setting), setting_id(setting)
        for seed in cfg.seeds:
            try:
                params = trial_params(start, setting, seed)
            except ConfigError as e:
                raise ConfigError(f"sweep.grid: {e} (setting {label})") from None
            trials.append(Trial(f"{sid}-seed{seed}", seed, setting, sid, label, params))
    return trials
