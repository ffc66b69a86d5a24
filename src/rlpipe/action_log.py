"""How actions are logged, for every action space: the ``Action`` cell of ``steps.csv``, the Box
summary columns, and the per-dimension histograms of ``actions.csv`` (contract: docs/FILES.md).

- ``Discrete``: ``Action`` is the action (an int); no ``actions.csv`` (the action figure counts
  the ``Action`` column).
- ``MultiDiscrete``: ``Action`` is the flat index of the action tuple (``numpy.ravel_multi_index``
  over ``nvec``, C order); ``actions.csv`` holds per-component counts per episode.
- ``Box``: ``Action`` is empty and two summary columns follow the contract columns of
  ``steps.csv``: ``Action Mean`` (mean over dimensions) and ``Action Norm`` (Euclidean norm), both
  of the action *as sent to the environment* (clipped to the bounds). ``actions.csv`` holds
  per-dimension histograms per episode (:data:`BOX_BINS` equal bins over the bounds; an unbounded
  dimension uses ``[-UNBOUNDED_RANGE, UNBOUNDED_RANGE]``, values outside counted in the edge bins).

Pure functions over plain values: the metrics hook writes with them, the plots read their columns.
Imports numpy only.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

ACTIONS_COLUMNS = ("Episode", "Dimension", "Bin", "Low", "High", "Count")
BOX_SUMMARY_COLUMNS = ("Action Mean", "Action Norm")
BOX_BINS = 20
UNBOUNDED_RANGE = 5.0
_MAX_FLAT_INDEX = 2 ** 62


@dataclass(frozen=True)
class ActionLayout:
    """What the logs need to know about an action space (plain values, picklable).

    Attributes:
        kind: ``"discrete"``, ``"multi_discrete"`` or ``"box"``.
        nvec: choices per component (multi-discrete; flattened), or ``(n,)`` (discrete).
        start: offset per component added to the logged values (multi-discrete), else zeros.
        low, high: bounds per dimension (box), possibly infinite.
    """

    kind: str
    nvec: tuple[int, ...] = ()
    start: tuple[int, ...] = ()
    low: tuple[float, ...] = ()
    high: tuple[float, ...] = ()

    @property
    def has_histograms(self) -> bool:
        return self.kind in ("box", "multi_discrete")

    @property
    def step_columns(self) -> tuple[str, ...]:
        """Columns that follow the contract columns of steps.csv."""
        return BOX_SUMMARY_COLUMNS if self.kind == "box" else ()

    def box_edges(self) -> np.ndarray:
        """Bin edges [D, BOX_BINS + 1] of a Box space."""
        low = np.asarray(self.low, np.float64)
        high = np.asarray(self.high, np.float64)
        finite = np.isfinite(low) & np.isfinite(high) & (high > low)
        lo = np.where(finite, low, -UNBOUNDED_RANGE)
        hi = np.where(finite, high, UNBOUNDED_RANGE)
        return lo[:, None] + (hi - lo)[:, None] * np.linspace(0.0, 1.0, BOX_BINS + 1)[None, :]


def env_actions(layout: ActionLayout, actions: np.ndarray) -> np.ndarray:
    """A Box episode's actions as the environment received them (clipped), float64 [L, D]."""
    a = np.asarray(actions, dtype=np.float64).reshape(len(actions), -1)
    return np.clip(a, np.asarray(layout.low), np.asarray(layout.high))


def action_cells(layout: ActionLayout, actions: np.ndarray) -> tuple[list, list[list[float]]]:
    """Per step of an episode: the ``Action`` cell (int or None) and the extra step columns.

    Shapes:
        - actions: [L] (discrete), [L, K] (multi-discrete), [L, D] (box)
        - returns: (L cells, L lists of ``len(layout.step_columns)`` floats)
    """
    n = len(actions)
    if layout.kind == "discrete":
        return [int(a) for a in np.asarray(actions).reshape(n)], [[] for _ in range(n)]
    if layout.kind == "multi_discrete":
        a = np.asarray(actions, dtype=np.int64).reshape(n, -1)
        if float(np.prod(np.asarray(layout.nvec, dtype=np.float64))) >= _MAX_FLAT_INDEX:
            return [None] * n, [[] for _ in range(n)]
        flat = np.ravel_multi_index(tuple(a.T), layout.nvec) if n else np.zeros(0, np.int64)
        return [int(i) for i in flat], [[] for _ in range(n)]
    a = env_actions(layout, actions)
    means, norms = a.mean(axis=1), np.sqrt((a * a).sum(axis=1))
    return [None] * n, [[float(m), float(r)] for m, r in zip(means, norms)]


def histogram_rows(layout: ActionLayout, episode: int, actions: np.ndarray) -> list[tuple]:
    """``actions.csv`` rows of one episode: one per (dimension, bin) with a non-zero count."""
    rows: list[tuple] = []
    if layout.kind == "multi_discrete":
        a = np.asarray(actions, dtype=np.int64).reshape(len(actions), -1)
        for d, n in enumerate(layout.nvec):
            counts = np.bincount(a[:, d], minlength=n)
            start = layout.start[d] if layout.start else 0
            for b in np.flatnonzero(counts):
                value = float(start + b)
                rows.append((episode, d, int(b), value, value, int(counts[b])))
    elif layout.kind == "box":
        a = env_actions(layout, actions)
        edges = layout.box_edges()
        for d in range(edges.shape[0]):
            bins = np.clip(np.searchsorted(edges[d], a[:, d], side="right") - 1, 0, BOX_BINS - 1)
            counts = np.bincount(bins, minlength=BOX_BINS)
            for b in np.flatnonzero(counts):
                rows.append((episode, d, int(b), float(edges[d, b]), float(edges[d, b + 1]),
                             int(counts[b])))
    return rows


def scalar_actions(layout: ActionLayout, actions: np.ndarray) -> list:
    """One number per action, for figures that colour or plot by action (captures, traces): the
    action (Discrete), the flat index (MultiDiscrete), the mean of the clipped action (Box)."""
    cells, extra = action_cells(layout, actions)
    if layout.kind == "box":
        return [row[0] for row in extra]
    return cells
