"""Helpers that the curve figures share: sorting by x, a raw series under its moving average,
"no data" panels, and number formatting."""
from __future__ import annotations

import math

import numpy as np

from rlpipe.plots.style import RAW_ALPHA, RAW_WIDTH, SMOOTH_WIDTH, smoothing_label
from rlpipe.smoothing import smooth


def sorted_by(x: np.ndarray, *ys: np.ndarray) -> tuple[np.ndarray, ...]:
    if x.size > 1 and np.any(np.diff(x) < 0):
        order = np.argsort(x, kind="stable")
        return (x[order],) + tuple(y[order] for y in ys)
    return (x,) + ys


def plot_smoothed(ax, x: np.ndarray, y: np.ndarray, color: str, label: str, window: int,
                  unit: str = "points", raw_label: bool = True) -> bool:
    """Raw ``y`` faint plus its centred moving average (the legend names the window used, in
    ``unit``); a series too short to smooth is drawn once, solid, with markers. False (nothing
    drawn) when ``y`` has no finite value."""
    if not np.isfinite(y).any():
        return False
    smoothed, used = smooth(y, window)
    if used == 1:
        ax.plot(x, y, color=color, lw=RAW_WIDTH + 0.5, marker="o", ms=3,
                label=f"{label} ({len(y)} {unit}, too few to smooth)")
        return True
    ax.plot(x, y, color=color, alpha=RAW_ALPHA, lw=RAW_WIDTH,
            label=f"{label} (raw)" if raw_label else None)
    ax.plot(x, smoothed, color=color, lw=SMOOTH_WIDTH,
            label=f"{label} ({smoothing_label(used, unit)})")
    return True


def no_data(ax, message: str) -> None:
    ax.text(0.5, 0.5, message, transform=ax.transAxes, ha="center", va="center",
            fontsize=9, color="#555555", wrap=True)
    ax.set_xticks([])
    ax.set_yticks([])


def last_finite(y: np.ndarray) -> float:
    f = y[np.isfinite(y)]
    return float(f[-1]) if f.size else math.nan


def fmt(v: float) -> str:
    return "n/a" if not math.isfinite(v) else f"{v:.4g}"
