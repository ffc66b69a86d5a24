"""Finished trial folders -> one episodes table, one row per trial, metrics per setting.

* ``episodes`` (Parquet): every trial's ``episodes.csv`` rows (typed as the summarize stage
  types them), led by ``trial_id``, ``seed``, ``setting`` and one column per grid key (named
  by the dotted key, e.g. ``train.actor_lr``).
* ``trials`` (CSV): per trial its seed, grid values, final reward, final accuracy, wall time.
* metrics (JSON, for ``dvc metrics show/diff``): per setting label, the mean and sample standard
  deviation (ddof=1, left out for one seed) across seeds of ``final_reward`` (mean Cumulative
  Reward of the last ``sweep.window`` episodes), ``accuracy`` (mean Deployment Accuracy of the
  same episodes, left out where the environment has none) and ``wall_seconds`` (run.json).
"""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd
import pyarrow as pa

from rlpipe.paths import EPISODES_CSV
from rlpipe.statistics import COLUMN
from rlpipe.summarize import tables as T
from rlpipe.summarize.metrics import column, final_mean
from rlpipe.sweep import records
from rlpipe.sweep.grid import Trial

ID_COLUMNS = ("trial_id", "seed", "setting")
SUMMARY_COLUMNS = ("final_reward", "accuracy", "wall_seconds")
REWARD, ACCURACY = COLUMN["total_reward"], COLUMN["accuracy"]


def read_episodes(trials_dir: Path, trial: Trial) -> pa.Table:
    """A finished trial's episodes.csv as a typed table."""
    path = records.trial_dir(trials_dir, trial) / trial.params.experiment.directory / EPISODES_CSV
    return T.read_table(T.inspect_csv(path, f"{trial.trial_id}/{path.name}"))


def key_type(values: Sequence[Any]) -> pa.DataType:
    """A grid key's column type: the values' natural type when they share a flat one, else
    string (JSON text)."""
    try:
        arr = pa.array(list(values))
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return pa.string()
    return pa.string() if pa.types.is_nested(arr.type) or pa.types.is_null(arr.type) else arr.type


def key_array(value: Any, n: int, type_: pa.DataType) -> pa.Array:
    if pa.types.is_string(type_) and not isinstance(value, str):
        value = json.dumps(value, sort_keys=True)
    return pa.array([value] * n, type_)


def episodes_table(trials: Sequence[Trial], tables: Sequence[pa.Table],
                   grid_keys: Sequence[str]) -> pa.Table:
    """All trials' episodes with the identifying columns in front."""
    types = {key: key_type([t.values[key] for t in trials]) for key in grid_keys}
    parts = []
    for trial, table in zip(trials, tables):
        n = table.num_rows
        lead = {"trial_id": pa.array([trial.trial_id] * n, pa.string()),
                "seed": pa.array([trial.seed] * n, pa.int64()),
                "setting": pa.array([trial.label] * n, pa.string())}
        for key in grid_keys:
            lead[key] = key_array(trial.values[key], n, types[key])
        cols = {**lead, **{name: table.column(name) for name in table.column_names}}
        parts.append(pa.table(cols))
    if not parts:
        return pa.table({c: pa.array([], pa.string()) for c in ID_COLUMNS})
    return pa.concat_tables(parts, promote_options="permissive")


def trial_summary(trial: Trial, episodes: pa.Table, run_info: dict, window: int) -> dict:
    """One row of the trials table (final values are None when there is nothing finite)."""
    wall = run_info.get("wall_seconds")
    return {
        "trial_id": trial.trial_id, "seed": trial.seed, "setting": trial.label, **trial.values,
        "episodes": episodes.num_rows,
        "final_reward": final_mean(column(episodes, REWARD), window),
        "accuracy": final_mean(column(episodes, ACCURACY), window),
        "wall_seconds": float(wall) if isinstance(wall, (int, float)) else None,
    }


def _stats(values: Sequence[Any]) -> dict[str, float]:
    v = np.array([x for x in values if x is not None and math.isfinite(x)], dtype=np.float64)
    if len(v) == 0:
        return {}
    out = {"mean": float(v.mean())}
    if len(v) > 1:
        out["sd"] = float(v.std(ddof=1))
    return out


def setting_metrics(summaries: pd.DataFrame, order: Sequence[str]) -> dict[str, Any]:
    """``{"settings": {label: {metric: {"mean", "sd"}, "seeds": n}}}`` in ``order``."""
    settings: dict[str, Any] = {}
    for label in order:
        rows = summaries[summaries["setting"] == label]
        if rows.empty:
            continue
        entry: dict[str, Any] = {}
        for name in SUMMARY_COLUMNS:
            stats = _stats(rows[name].tolist())
            if stats:
                entry[name] = stats
        entry["seeds"] = int(len(rows))
        settings[label] = entry
    return {"settings": settings}


def summaries_frame(rows: list[dict], grid_keys: Sequence[str]) -> pd.DataFrame:
    cols = [*ID_COLUMNS, *grid_keys, "episodes", *SUMMARY_COLUMNS]
    frame = pd.DataFrame(rows, columns=cols)
    for name in SUMMARY_COLUMNS:
        frame[name] = pd.to_numeric(frame[name], errors="coerce")
    return frame


def collect(trials_dir: Path, trials: Sequence[Trial], window: int
            ) -> tuple[pa.Table, pd.DataFrame]:
    """Read the finished ``trials``: the episodes table and the per-trial summaries."""
    grid_keys = list(trials[0].values) if trials else []
    tables, rows = [], []
    for trial in trials:
        table = read_episodes(trials_dir, trial)
        tables.append(table)
        run_info = records.read_json(records.run_json_path(trials_dir, trial))
        rows.append(trial_summary(trial, table, run_info, window))
    return episodes_table(trials, tables, grid_keys), summaries_frame(rows, grid_keys)
