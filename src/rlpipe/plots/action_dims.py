"""The action figure for Box and MultiDiscrete actions: one heat map per action dimension.

Reads the ``actions`` table (docs/FILES.md: ``Episode, Dimension, Bin, Low, High, Count``, one row
per episode, dimension and non-empty bin) and shows, per dimension, the share of the window's
steps in each bin (Box: equal bins over the bounds; MultiDiscrete: one row per value), with
training windows of episodes along x. At most :data:`MAX_PANELS` dimensions are drawn; the title
says how many were left out.
"""
from __future__ import annotations

import math

import numpy as np
from matplotlib.figure import Figure

from rlpipe.plots.inputs import Table
from rlpipe.plots.render import FigureUnavailable, new_figure
from rlpipe.plots.style import CMAP_SHARE

MAX_PANELS = 12
MAX_WINDOWS = 150


def window_shares(episode: np.ndarray, bins: np.ndarray, count: np.ndarray, n_bins: int,
                  window: int) -> tuple[np.ndarray, np.ndarray]:
    """Share [n_bins, W] of each bin per window of ``window`` episodes, and each window's first
    episode. Windows without steps are all zero."""
    first = int(episode.min())
    col = ((episode - first) // window).astype(np.int64)
    ncol = int(col.max()) + 1
    counts = np.bincount(bins.astype(np.int64) * ncol + col, weights=count,
                         minlength=n_bins * ncol).reshape(n_bins, ncol)
    share = counts / np.maximum(counts.sum(axis=0, keepdims=True), 1)
    return share, first + window * np.arange(ncol)


def action_dimensions_figure(actions: Table, smoothing: int) -> Figure:
    if len(actions) == 0:
        raise FigureUnavailable(f"{actions.path} has no rows (Discrete actions, or no episodes)")
    episode, dim, bins = actions["Episode"], actions["Dimension"], actions["Bin"]
    low, high, count = actions["Low"], actions["High"], actions["Count"]
    ok = np.isfinite(episode) & np.isfinite(dim) & np.isfinite(bins) & np.isfinite(count)
    if not ok.any():
        raise FigureUnavailable(f"no valid rows in {actions.path}")
    dims = np.unique(dim[ok]).astype(np.int64)
    shown = dims[:MAX_PANELS]
    n_ep = int(episode[ok].max() - episode[ok].min()) + 1
    window = max(int(smoothing), math.ceil(n_ep / MAX_WINDOWS))
    discrete = bool(np.all(low[ok] == high[ok]))
    ncols = 1 if len(shown) == 1 else 2
    nrows = math.ceil(len(shown) / ncols)
    fig = new_figure(6.0 * ncols, 2.8 * nrows + 0.8)
    axes = np.atleast_1d(fig.subplots(nrows, ncols, squeeze=False)).ravel()
    for ax, d in zip(axes, shown):
        sel = ok & (dim == d)
        n_bins = int(bins[sel].max()) + 1
        share, starts = window_shares(episode[sel], bins[sel], count[sel], n_bins, window)
        # bin -> its [low, high] (from any row of that bin)
        lo = np.full(n_bins, np.nan)
        hi = np.full(n_bins, np.nan)
        b = bins[sel].astype(np.int64)
        lo[b], hi[b] = low[sel], high[sel]
        extent_x = (starts[0] - 0.5, starts[-1] + window - 0.5)
        if discrete:
            im = ax.imshow(share, aspect="auto", origin="lower", interpolation="nearest",
                           cmap=CMAP_SHARE, vmin=0.0, extent=(*extent_x, -0.5, n_bins - 0.5))
            if n_bins <= 20:
                ax.set_yticks(range(n_bins))
                ax.set_yticklabels([f"{v:g}" if np.isfinite(v) else "" for v in lo])
            ax.set_ylabel("action value")
        else:
            y0 = np.nanmin(lo)
            y1 = np.nanmax(hi)
            im = ax.imshow(share, aspect="auto", origin="lower", interpolation="nearest",
                           cmap=CMAP_SHARE, vmin=0.0, extent=(*extent_x, y0, y1))
            ax.set_ylabel("action (as sent, clipped)")
        ax.grid(False)
        ax.set_title(f"dimension {d}", fontsize=10)
        ax.set_xlabel(f"episode (windows of {window})")
        fig.colorbar(im, ax=ax, label="share of steps")
    for ax in axes[len(shown):]:
        ax.set_visible(False)
    more = f"; first {MAX_PANELS} of {len(dims)} dimensions" if len(dims) > len(shown) else ""
    kind = "per-component counts" if discrete else "per-dimension histograms"
    fig.suptitle(f"Action distribution ({kind} per window of {window} episodes{more})")
    return fig
