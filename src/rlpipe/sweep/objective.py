"""What a search optimizes: a metric name -> where its value comes from (pure; numpy only).

A trial's metric at episode ``s`` is the mean of the metric's per-episode values over the last
``sweep.window`` episodes up to ``s``; its final value is the same at the last episode, and the
objective of a setting is the mean of that over its seeds. The same numbers come from the
training hook (intermediate values, read from the episode events as they happen) and from a
finished trial's files (``episodes.csv``): one definition, :func:`last_window_mean`.

Adding a metric = one :class:`Metric` entry: the log file and column a finished trial is read
from, the :class:`rlpipe.events.EpisodeRecord` attribute the hook reads while training, and the
metric's range (bands of the figures are clipped to it).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from rlpipe.paths import EPISODES_CSV
from rlpipe.smoothing import final_mean
from rlpipe.statistics import COLUMN


@dataclass(frozen=True)
class Metric:
    name: str                       # sweep.objective.metric
    file: str                       # the log (in experiment.directory) a finished trial holds
    column: str                     # its column
    event_attr: str                 # EpisodeRecord attribute the training hook reads
    low: float = -math.inf          # the metric's range (figure bands are clipped to it)
    high: float = math.inf
    needs_reference: bool = False   # only environments with a reference set report it
    label: str = ""


METRICS = {
    "final_reward": Metric("final_reward", EPISODES_CSV, COLUMN["total_reward"], "total_reward",
                           label="final reward"),
    "accuracy": Metric("accuracy", EPISODES_CSV, COLUMN["accuracy"], "accuracy", 0.0, 1.0,
                       needs_reference=True, label="final accuracy"),
}
DIRECTIONS = ("maximize", "minimize")


def metric(name: str) -> Metric:
    return METRICS[name]


def range_of_column(column: str) -> tuple[float, float]:
    """The range of a log column that a metric reads (unbounded when no metric reads it)."""
    for m in METRICS.values():
        if m.column == column:
            return m.low, m.high
    return -math.inf, math.inf


def last_window_mean(values: Sequence[float | None], window: int) -> float | None:
    """:func:`rlpipe.smoothing.final_mean` of reported values (None counts as missing)."""
    return final_mean(np.array([math.nan if v is None else v for v in values], dtype=np.float64),
                      window)


def better(a: float, b: float, direction: str) -> bool:
    return a > b if direction == "maximize" else a < b
