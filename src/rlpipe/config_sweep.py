"""The ``sweep`` section of params.yaml (``dvc --cd sweeps repro``): typed and validated like
the other sections of :mod:`rlpipe.config` (which re-exports it). The train stage never reads it.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any, Mapping, Union

from rlpipe.config_build import ConfigError, _check, _field, in_range, non_negative, one_of

#: the values of ``sweep.objective.metric`` (rlpipe.sweep.objective says where each comes from)
OBJECTIVE_METRICS = ("final_reward", "accuracy")

# --- the shape of ``sweep.space``: checked here with the section, so that building the
# params never imports the sweep package (the train stage builds every section)
RANGE_KEYS = ("low", "high", "log", "step")
CHOICE_TYPES = (str, int, float, bool, type(None))


def _number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def check_distribution(key: str, spec: Any) -> None:
    """Raise :class:`ConfigError` naming ``key`` when ``spec`` is not a distribution."""
    if isinstance(spec, list):
        if not spec:
            raise ConfigError(f"{key}: a list of choices must not be empty")
        bad = [v for v in spec if not isinstance(v, CHOICE_TYPES)]
        if bad:
            raise ConfigError(f"{key}: choices must be numbers, strings, booleans or null, "
                              f"got {bad[0]!r}")
        texts = [json.dumps(v) for v in spec]
        if len(set(texts)) != len(texts):
            raise ConfigError(f"{key}: must not repeat a choice, got {spec!r}")
        return
    if not isinstance(spec, Mapping):
        raise ConfigError(f"{key}: must be {{low, high, log}} or a list of choices, got {spec!r}")
    unknown = sorted(set(spec) - set(RANGE_KEYS))
    if unknown:
        raise ConfigError(f"{key}: unknown distribution key {unknown[0]!r} "
                          f"(allowed: {', '.join(RANGE_KEYS)}; or a list of choices)")
    for name in ("low", "high"):
        if name not in spec:
            raise ConfigError(f"{key}: missing {name} (a range is {{low, high, log}})")
        if not _number(spec[name]):
            raise ConfigError(f"{key}.{name}: must be a finite number, got {spec[name]!r}")
    low, high = spec["low"], spec["high"]
    if low > high:
        raise ConfigError(f"{key}: low must be <= high, got low={low!r} > high={high!r}")
    log = spec.get("log", False)
    if not isinstance(log, bool):
        raise ConfigError(f"{key}.log: expected true/false, got {log!r}")
    if log and low <= 0:
        raise ConfigError(f"{key}: a log range needs low > 0, got low={low!r}")
    step = spec.get("step")
    if step is not None:
        if not _number(step) or step <= 0:
            raise ConfigError(f"{key}.step: must be a number > 0, got {step!r}")
        if log:
            raise ConfigError(f"{key}: step and log cannot be combined")


def check_space(section: str, space: Mapping[str, Any], train_sections: tuple[str, ...]) -> None:
    """The shape of ``sweep.space`` (keys dotted training keys, values distributions)."""
    for name, spec in space.items():
        key = f"{section}.space.{name}"
        if not (isinstance(name, str) and name.count(".") >= 1 and all(name.split("."))):
            raise ConfigError(f"{key}: must be a dotted param key such as train.actor_lr")
        if name.split(".")[0] not in train_sections:
            raise ConfigError(f"{key}: must name a training section ({', '.join(train_sections)})")
        if name == "train.seed":
            raise ConfigError(f"{key}: seeds come from {section}.seeds, not the space")
        check_distribution(key, spec)



# The sections that define one training run (what the train stage and every sweep trial read).
TRAIN_SECTIONS = ("env", "agent", "train", "experiment", "checkpoint", "capture")
SWEEP_ADDRESS_KEYWORDS = ("local", "auto")


def ray_address(key: str, v: str) -> None:
    """'local', 'auto', or host:port of a Ray cluster's head (GCS) node."""
    if v in SWEEP_ADDRESS_KEYWORDS:
        return
    _check("://" not in v, key, "must be host:port of the Ray head's GCS (e.g. 10.0.0.5:6379); "
           "Ray Client addresses (ray://) are not supported", v)
    host, sep, port = v.rpartition(":")
    _check(bool(sep) and bool(host.strip("[]")) and " " not in v and port.isdigit()
           and 0 < int(port) < 65536, key,
           "must be 'local', 'auto' or host:port of a Ray head node (e.g. 10.0.0.5:6379)", v)


@dataclass(frozen=True)
class ObjectiveConfig:
    """``sweep.objective``: what a search optimizes and which way (see rlpipe.sweep.objective)."""

    #: final_reward (mean Cumulative Reward of the last sweep.window episodes) or accuracy.
    metric: str = _field("final_reward")
    #: maximize or minimize.
    direction: str = _field("maximize", one_of("maximize", "minimize"))

    def validate(self, s: str) -> None:
        _check(self.metric in OBJECTIVE_METRICS, f"{s}.metric",
               f"must be one of {', '.join(OBJECTIVE_METRICS)}", self.metric)


@dataclass(frozen=True)
class SweepConfig:
    """``sweep``: seeds x grid of training runs on Ray (``dvc --cd sweeps repro``).

    Each trial is one full training run: the training sections, then ``episodes``, then one grid
    point (dotted keys, e.g. ``train.actor_lr``), then one seed as ``train.seed``. The train
    stage never reads this section (it is not part of any run's fingerprint).
    """

    #: one trial per seed per grid point.
    seeds: tuple[int, ...] = _field((0, 1, 2), in_range(0, 2**32 - 1))
    #: dotted training key -> list of values (``env.kwargs.num_nodes``, ``train.actor_lr``);
    #: every combination is a setting; {} = the seeds alone.
    grid: dict = _field({})
    #: ``local`` = an embedded Ray on this machine; ``auto`` or host:port = a running cluster.
    address: str = _field("local", ray_address)
    #: trials in flight at once; 0 = as many as the cluster's alive CPUs take (re-read as nodes
    #: come and go).
    max_concurrent: int = _field(0, non_negative)
    #: Ray CPUs one trial reserves (torch runs train.torch_threads threads).
    cpus_per_trial: float = _field(1.0, in_range(0.01, 1024.0))
    #: replaces train.episodes in every trial; null = train.episodes.
    episodes: Union[int, None] = _field(None, in_range(1, 10_000_000))
    #: attempts after a trial's first failure (per sweep run), then it is reported failed.
    max_retries: int = _field(2, in_range(0, 100))
    #: final reward and accuracy: the mean of a trial's last N episodes.
    window: int = _field(50, in_range(1, 1_000_000))
    #: grid = every grid point x seeds; optuna = `trials` settings drawn from `space` x seeds.
    search: str = _field("grid", one_of("grid", "optuna"))
    #: optuna: settings (study trials) to try in all, each over every seed.
    trials: int = _field(20, in_range(1, 100_000))
    #: optuna: dotted training key -> {low, high, log} (floats; ints when both bounds are ints)
    #: or a list of choices.
    space: dict = _field({})
    #: optuna: tpe, random or qmc; seeded with sampler_seed.
    sampler: str = _field("tpe", one_of("tpe", "random", "qmc"))
    sampler_seed: int = _field(0, in_range(0, 2**32 - 1))
    #: optuna: median, successive_halving or none.
    pruner: str = _field("median", one_of("median", "successive_halving", "none"))
    #: no pruning before this episode (median: warm-up steps; successive_halving: min resource).
    pruner_warmup: int = _field(0, non_negative)
    #: median: settings that must finish before any is pruned.
    pruner_startup_trials: int = _field(2, non_negative)
    #: episodes between intermediate reports; 0 = at each checkpoint (checkpoint.interval).
    report_every: int = _field(0, non_negative)
    #: what the search optimizes (and how settings are ranked into best_params.yaml).
    objective: ObjectiveConfig = _field(ObjectiveConfig())

    def validate(self, s: str) -> None:
        _check(len(self.seeds) > 0, f"{s}.seeds", "must list at least one seed, e.g. [0, 1, 2]",
               list(self.seeds))
        _check(len(set(self.seeds)) == len(self.seeds), f"{s}.seeds", "must not repeat a seed",
               list(self.seeds))
        for name, values in self.grid.items():
            key = f"{s}.grid.{name}"
            _check(isinstance(name, str) and name.count(".") >= 1 and all(name.split(".")), key,
                   "must be a dotted param key such as train.actor_lr", name)
            _check(name.split(".")[0] in TRAIN_SECTIONS, key,
                   f"must name a training section ({', '.join(TRAIN_SECTIONS)})", name)
            _check(name != "train.seed", key, f"seeds come from {s}.seeds, not the grid", name)
            _check(isinstance(values, list) and len(values) > 0, key,
                   "must be a non-empty list of values, e.g. [0.001, 0.003]", values)
            texts = [json.dumps(v, sort_keys=True) for v in values]
            _check(len(set(texts)) == len(texts), key, "must not repeat a value", values)
        if self.search == "optuna":
            _check(bool(self.space), f"{s}.space", "must name at least one key to search, e.g. "
                   "{train.actor_lr: {low: 0.0001, high: 0.01, log: true}}", self.space)
            _check(not self.grid, f"{s}.grid", "must be {} when search is optuna (the space "
                   "replaces it)", self.grid)
            check_space(s, self.space, TRAIN_SECTIONS)


