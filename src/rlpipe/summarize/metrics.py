"""Pure functions: typed episode/update tables -> the nested ``metrics.json`` dictionary.

Rules (``window`` = ``summarize.window``; NaN, inf and missing values are left out everywhere):

* "final" window mean: the mean of the finite values among the last ``window`` rows.
* "best" window mean: the largest trailing ``window``-row mean over the run, counting only full
  windows (rows ``window``..n); a run shorter than one window has a single window, all of it,
  so best = final.
* ``reward.std_last_window``: population standard deviation (ddof=0) of the last window.
* "last"/"final" single values (``reward.last``, and ``<group>.<name>_final`` of every update
  statistic with a ``summary`` in :mod:`rlpipe.statistics`: ``loss.actor_final``,
  ``loss.critic_final``, ``policy.entropy_final``): the last finite value of the column.
* A key without a finite value is left out, and so is a group left empty.
"""
from __future__ import annotations

import math
from typing import Any, Mapping

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from rlpipe.smoothing import final_mean, trailing_mean
from rlpipe.statistics import BY_KEY, COLUMN, SUMMARY_KEYS
from rlpipe.statistics import performance_keys, snake_case  # noqa: F401 - one definition
from rlpipe.summarize.tables import EPISODES_BASE


def column(table: pa.Table, name: str) -> np.ndarray:
    """A column as float64 with NaN for nulls (all-NaN if the column is absent)."""
    if name not in table.column_names:
        return np.full(table.num_rows, np.nan)
    col = table.column(name)
    if pa.types.is_boolean(col.type):
        col = pc.cast(col, pa.int8())
    col = pc.fill_null(pc.cast(col, pa.float64()), math.nan)
    return np.asarray(col.to_numpy(), dtype=np.float64)


def _finite(x: np.ndarray) -> np.ndarray:
    return x[np.isfinite(x)]


def best_mean(x: np.ndarray, window: int) -> float | None:
    n = len(x)
    if n == 0:
        return None
    if n <= window:
        return final_mean(x, window)
    means = trailing_mean(x, window)[window - 1:]
    if not np.isfinite(means).any():
        return None
    i = int(np.nanargmax(means)) + window - 1
    # recompute the winning window exactly (no cumulative-sum rounding in the reported number)
    v = _finite(x[i - window + 1: i + 1])
    return float(np.mean(v))


def std_last(x: np.ndarray, window: int) -> float | None:
    v = _finite(x[-window:])
    return float(np.std(v)) if len(v) else None


def last_finite(x: np.ndarray) -> float | None:
    idx = np.flatnonzero(np.isfinite(x))
    return float(x[idx[-1]]) if len(idx) else None


def performance_columns(episodes: pa.Table) -> list[str]:
    """The episodes.csv columns after the fixed ones: the environment's performance metrics."""
    return [c for c in episodes.column_names if c not in EPISODES_BASE]


def _put(group: dict, key: str, value: Any) -> None:
    if value is None or isinstance(value, bool):
        return
    if isinstance(value, int):
        group[key] = value
    elif isinstance(value, float) and math.isfinite(value):
        group[key] = value


def compute_metrics(episodes: pa.Table, updates: pa.Table, window: int,
                    run_info: Mapping[str, Any] | None = None) -> dict[str, dict[str, Any]]:
    """The ``metrics.json`` document (docs/FILES.md), finite numbers only."""
    run_info = run_info or {}
    reward = column(episodes, COLUMN["total_reward"])
    accuracy = column(episodes, COLUMN["accuracy"])
    out: dict[str, dict[str, Any]] = {
        "reward": {}, "deployment": {}, "loss": {}, "policy": {}, "performance": {}, "run": {},
    }
    _put(out["reward"], "final_mean", final_mean(reward, window))
    _put(out["reward"], "best_mean", best_mean(reward, window))
    _put(out["reward"], "last", last_finite(reward))
    _put(out["reward"], "std_last_window", std_last(reward, window))
    _put(out["deployment"], "accuracy_final", final_mean(accuracy, window))
    _put(out["deployment"], "accuracy_best", best_mean(accuracy, window))
    for key in SUMMARY_KEYS:
        group, name = BY_KEY[key].summary.split(".")
        _put(out.setdefault(group, {}), f"{name}_final", last_finite(column(updates, COLUMN[key])))
    for name, key in performance_keys(performance_columns(episodes)).items():
        _put(out["performance"], key, final_mean(column(episodes, name), window))
    run = out["run"]
    run["episodes"] = episodes.num_rows
    step = COLUMN["global_step"]
    steps = pc.max(updates.column(step)).as_py() if step in updates.column_names else None
    run["steps"] = int(steps) if steps is not None else 0
    run["updates"] = updates.num_rows
    ws = run_info.get("wall_seconds")
    if isinstance(ws, (int, float)) and not isinstance(ws, bool):
        _put(run, "wall_seconds", float(ws))
    rc = run_info.get("resumed_count")
    if isinstance(rc, int) and not isinstance(rc, bool):
        _put(run, "resumed_count", rc)
    return {k: v for k, v in out.items() if v}
