"""The ``sweep`` section of params.yaml (a section of :class:`rlpipe.config.Params`, kept in a
module of its own so that config.py stays small). Imports nothing heavy."""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Union

from rlpipe.config_build import _check, _field, in_range, non_negative

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
class SweepConfig:
    """``sweep``: seeds x grid of training runs on Ray (``dvc repro sweeps/dvc.yaml``).

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
    #: replaces the budget (train.episodes, or train.total_steps) in every trial; null = the
    #: training sections' budget.
    episodes: Union[int, None] = _field(None, in_range(1, 10_000_000))
    #: attempts after a trial's first failure (per sweep run), then it is reported failed.
    max_retries: int = _field(2, in_range(0, 100))
    #: final reward and accuracy: the mean of a trial's last N episodes.
    window: int = _field(50, in_range(1, 1_000_000))

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
