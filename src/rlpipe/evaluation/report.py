"""Evaluation results as numbers: the keys of ``eval/metrics.json`` (also the JSON of
``rlpipe evaluate``) and the rows of ``eval/episodes.csv``.

One block per policy (a checkpoint or a baseline) of one setting::

    {"episodes": 50,
     "return": {"mean": ..., "sd": ...},
     "reference_accuracy": {"mean": ..., "sd": ...},   # only when the environment has a reference
     "<metric>": {"mean": ..., "sd": ...}, ...}         # each episode metric, snake_case

``sd`` is the sample standard deviation over episodes (0 for one episode). An environment with
neither metrics nor reference decisions reports ``episodes`` and ``return`` only.
"""
from __future__ import annotations

import csv
import io
import math
from typing import Sequence

import numpy as np

from rlpipe.statistics import EVAL_EPISODE_COLUMNS, performance_keys
from rlpipe.evaluation.episodes import EpisodeResult

RETURN, ACCURACY = "return", "reference_accuracy"
ACCURACY_COLUMN = "Reference Accuracy"


def _stats(values: Sequence[float]) -> dict[str, float]:
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    if v.size == 0:
        return {"mean": float("nan"), "sd": float("nan")}
    return {"mean": float(v.mean()), "sd": float(v.std(ddof=1)) if v.size > 1 else 0.0}


def metric_names(results: Sequence[EpisodeResult]) -> list[str]:
    names: list[str] = []
    for r in results:
        names += [n for n in r.metrics if n not in names]
    return names


def summarize(results: Sequence[EpisodeResult]) -> dict:
    """The block of one policy (see the module docstring); NaN values are left out."""
    out: dict = {"episodes": len(results), RETURN: _stats([r.total_reward for r in results])}
    accs = [r.accuracy for r in results if r.accuracy is not None]
    if accs:
        out[ACCURACY] = _stats(accs)
    names = metric_names(results)
    for name, key in performance_keys(names).items():
        out[key] = _stats([r.metrics.get(name, math.nan) for r in results])
    return {k: v for k, v in out.items()
            if not (isinstance(v, dict) and math.isnan(v["mean"]))}


def episode_rows_csv(rows: Sequence[tuple[str, str, EpisodeResult]]) -> str:
    """``eval/episodes.csv``: one row per (variant, policy, episode); the columns of
    :data:`rlpipe.statistics.EVAL_EPISODE_COLUMNS`, then Reference Accuracy (when any episode has
    one) and the environment's metrics (their names as in episodes.csv)."""
    results = [r for _, _, r in rows]
    has_acc = any(r.accuracy is not None for r in results)
    names = metric_names(results)
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow([*EVAL_EPISODE_COLUMNS, *([ACCURACY_COLUMN] if has_acc else []), *names])
    counters: dict[tuple[str, str], int] = {}
    for variant, policy, r in rows:
        n = counters[(variant, policy)] = counters.get((variant, policy), 0) + 1
        acc = [] if not has_acc else ["" if r.accuracy is None else repr(float(r.accuracy))]
        w.writerow([variant, policy, n, r.seed, repr(r.total_reward), r.length, *acc,
                    *(repr(float(r.metrics[k])) if k in r.metrics else "" for k in names)])
    return buf.getvalue()
