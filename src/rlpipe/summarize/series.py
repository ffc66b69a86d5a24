"""Pure functions: small, smoothed plot series for the ``plots:`` section of ``dvc.yaml``.

Every file in :data:`SERIES_FILES` is always written (DVC needs declared outputs to exist):

==================  ===========================================================================
``reward.csv``      ``Episode,Cumulative Reward,Moving Average,Mean Episode Reward``
``accuracy.csv``    ``Episode,Deployment Accuracy,Moving Average``
``losses.csv``      ``Update,Actor Loss,Critic Loss,Actor Loss Moving Average,Critic Loss Moving Average``
``entropy.csv``     ``Update,Policy Entropy,Moving Average``
``performance.csv`` ``Episode`` then, per performance metric ``M`` (episodes.csv order),
                    ``M,M Moving Average``
==================  ===========================================================================

Moving averages are computed on the **full** series by :func:`rlpipe.smoothing.smooth`: a centred
mean over ``summarize.window`` rows, narrowed to at most a tenth of the series (so the 60 updates
of a default run get a 5-update window, its 480 episodes a 47-episode one; a series of fewer than
30 rows is left unsmoothed), cut short at both ends of the series; finite values only. Rows
whose x is missing, or whose y values are all missing, are left out (an environment without
reference decisions gives a header-only ``accuracy.csv``); the remaining rows are then
downsampled to at most ``summarize.max_points``, evenly strided, always keeping the first and
the last. Missing/NaN cells are written empty.
"""
from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import pyarrow as pa

from rlpipe.smoothing import smooth
from rlpipe.statistics import COLUMN
from rlpipe.summarize.metrics import column, performance_columns

SERIES_FILES = ("reward.csv", "accuracy.csv", "losses.csv", "entropy.csv", "performance.csv")
MA = "Moving Average"


@dataclass
class Series:
    """One plot file: an integer x column and float y columns (NaN = empty cell)."""

    x_name: str
    x: np.ndarray                     # float64 holding integers, NaN = missing
    y_names: list[str]
    ys: list[np.ndarray]

    @property
    def columns(self) -> list[str]:
        return [self.x_name, *self.y_names]

    def __len__(self) -> int:
        return len(self.x)


def downsample_indices(n: int, max_points: int) -> np.ndarray:
    """At most ``max_points`` evenly strided indices of ``range(n)``, first and last included."""
    if n <= max_points:
        return np.arange(n)
    if max_points <= 1:
        return np.array([n - 1])
    idx = np.round(np.linspace(0, n - 1, max_points)).astype(np.int64)
    return np.unique(idx)


def _finish(x_name: str, x: np.ndarray, y_names: list[str], ys: list[np.ndarray],
            max_points: int) -> Series:
    keep = np.isfinite(x)
    if ys:
        keep &= np.logical_or.reduce([np.isfinite(y) for y in ys])
    else:
        keep &= False
    rows = np.flatnonzero(keep)
    rows = rows[downsample_indices(len(rows), max_points)]
    return Series(x_name, x[rows], list(y_names), [y[rows] for y in ys])


def _ma(y: np.ndarray, window: int) -> np.ndarray:
    return smooth(y, window)[0]


def build_series(episodes: pa.Table, updates: pa.Table, window: int,
                 max_points: int) -> dict[str, Series]:
    """File name -> series, for every name in :data:`SERIES_FILES`."""
    c = COLUMN  # statistic key -> column (rlpipe.statistics)
    ep = column(episodes, c["episode"])
    up = column(updates, c["update"])
    out: dict[str, Series] = {}

    reward = column(episodes, c["total_reward"])
    out["reward.csv"] = _finish(
        c["episode"], ep, [c["total_reward"], MA, c["mean_episode_reward"]],
        [reward, _ma(reward, window), column(episodes, c["mean_episode_reward"])],
        max_points)

    acc = column(episodes, c["accuracy"])
    out["accuracy.csv"] = _finish(
        c["episode"], ep, [c["accuracy"], MA], [acc, _ma(acc, window)],
        max_points)

    actor, critic = column(updates, c["actor_loss"]), column(updates, c["critic_loss"])
    out["losses.csv"] = _finish(
        c["update"], up,
        [c["actor_loss"], c["critic_loss"], f"{c['actor_loss']} {MA}", f"{c['critic_loss']} {MA}"],
        [actor, critic, _ma(actor, window), _ma(critic, window)],
        max_points)

    ent = column(updates, c["entropy"])
    out["entropy.csv"] = _finish(
        c["update"], up, [c["entropy"], MA], [ent, _ma(ent, window)], max_points)

    names: list[str] = []
    values: list[np.ndarray] = []
    for m in performance_columns(episodes):
        v = column(episodes, m)
        names += [m, f"{m} {MA}"]
        values += [v, _ma(v, window)]
    out["performance.csv"] = _finish(c["episode"], ep, names, values, max_points)
    return out


def _cell(v: float) -> str:
    return repr(float(v)) if math.isfinite(v) else ""


def to_csv(series: Series) -> str:
    """CSV text: header, then ``x`` as an integer and y values as shortest round-trip floats."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(series.columns)
    ys: Sequence[list[float]] = [y.tolist() for y in series.ys]
    for i, x in enumerate(series.x.tolist()):
        w.writerow([str(int(x)), *(_cell(y[i]) for y in ys)])
    return buf.getvalue()
