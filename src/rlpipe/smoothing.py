"""Moving averages: the one implementation behind metrics.json, the DVC plot series and the figures.

NumPy only (the summarize stage imports it and imports no matplotlib or torch).

- :func:`trailing_mean`: the mean of the last ``window`` points at each point. ``metrics.json``
  uses it ("final" and "best" window means over ``summarize.window`` episodes).
- :func:`centred_mean`: the mean of ``window`` points centred on each point (near the ends, of
  the points there are: half a window and more). Smoothed curves use it: it does not shift a
  change late by half a window, as a trailing mean does, nor draw a bend where the trailing
  mean's first full window ends; a linear trend comes out unchanged except in the first and the
  last half window.
- :func:`smoothing_window`: the window a series of ``n`` points is smoothed with: the configured
  one, but never more than a tenth of the series and always odd (centred). Per-episode series
  (hundreds of points) and per-update series (tens) so each get a window that fits them; a
  series of fewer than 30 points is not smoothed at all (window 1).

Every mean counts the finite values only: NaN and inf are left out, and a window without a finite
value gives NaN. O(n) through cumulative sums in float64.

Shapes:
    x: [n] (any real dtype); every function returns float64 [n].
"""
from __future__ import annotations

import numpy as np

MAX_WINDOW_SHARE = 0.1  # a smoothing window covers at most this share of its series


def window_means(x: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Mean of the finite values of ``x[lo[i]:hi[i]]`` for each ``i``; NaN where there are none.

    Shapes:
        x: [n]; lo, hi: [m] integer indices with 0 <= lo <= hi <= n; returns [m].
    """
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 1:
        raise ValueError("expected a 1-D series")
    ok = np.isfinite(x)
    sums = np.concatenate(([0.0], np.cumsum(np.where(ok, x, 0.0))))
    counts = np.concatenate(([0], np.cumsum(ok)))
    n = counts[hi] - counts[lo]
    with np.errstate(invalid="ignore", divide="ignore"):
        out = (sums[hi] - sums[lo]) / n
    out[n == 0] = np.nan
    return out


def final_mean(x: np.ndarray, window: int) -> float | None:
    """Mean of the finite values among the last ``window`` of ``x`` (None when there are none):
    the "final" value of metrics.json and of a sweep's objective."""
    v = np.asarray(x, dtype=np.float64)[-window:]
    v = v[np.isfinite(v)]
    return float(np.mean(v)) if len(v) else None


def trailing_mean(x: np.ndarray, window: int) -> np.ndarray:
    """Mean of the finite values among ``x[max(0, i - window + 1) : i + 1]`` at each ``i``
    (fewer points at the start)."""
    n = np.asarray(x).shape[0]
    hi = np.arange(1, n + 1)
    return window_means(x, np.maximum(hi - max(int(window), 1), 0), hi)


def centred_mean(x: np.ndarray, window: int) -> np.ndarray:
    """Mean of the finite values among ``x[max(0, i - h) : i + h + 1]`` at each ``i``, where
    ``h = (window - 1) // 2``: a centred window of ``window`` points (an even window is used as
    the odd one below it), cut short at both ends of the series."""
    n = np.asarray(x).shape[0]
    i = np.arange(n)
    h = (max(int(window), 1) - 1) // 2
    return window_means(x, np.maximum(i - h, 0), np.minimum(i + h + 1, n))


def smoothing_window(n: int, requested: int) -> int:
    """The odd window (>= 1) that smooths a series of ``n`` points: ``requested`` at most, and at
    most :data:`MAX_WINDOW_SHARE` of ``n``."""
    w = min(int(requested), int(n * MAX_WINDOW_SHARE))
    if w < 3:
        return 1
    return w if w % 2 else w - 1


def smooth(x: np.ndarray, requested: int) -> tuple[np.ndarray, int]:
    """``x`` smoothed for display: (:func:`centred_mean` over :func:`smoothing_window`, window)."""
    w = smoothing_window(np.asarray(x).shape[0], requested)
    return centred_mean(x, w), w
