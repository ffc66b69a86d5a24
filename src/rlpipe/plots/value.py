"""The value figure: the critic's estimate against the discounted return it estimates.

The critic learns ``V(s) ≈ E[G]``, ``G = r_t + γ r_{t+1} + γ² r_{t+2} + …`` with the run's
``train.gamma`` (its regression target, the GAE λ-return, has this expectation). So the figure
compares the logged ``Value`` of each step with ``G`` computed from the logged rewards at that γ,
which puts both on one scale whatever γ is (with γ = 0.2 the undiscounted reward-to-go of a
50-step episode is ~40 times larger than any value the critic should predict):

- top: per-episode means of ``V`` and of ``G`` over training (did the estimate follow the return?);
- bottom left: ``V`` against ``G`` per step over the last tenth of training (calibration, y = x);
- bottom right: explained variance per update, as logged by train.
"""
from __future__ import annotations

import math

import numpy as np
from matplotlib.figure import Figure

from rlpipe.plots.curves import no_data, plot_smoothed, sorted_by
from rlpipe.plots.inputs import Table
from rlpipe.plots.render import FigureUnavailable, new_figure
from rlpipe.plots.style import CMAP_DENSITY, COLORS, SMOOTH_WIDTH, integer_ticks
from rlpipe.statistics import COLUMN as C


def reward_to_go(episode: np.ndarray, step: np.ndarray, reward: np.ndarray,
                 gamma: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """Discounted reward-to-go ``G`` of every step row, and whether it is exact.

    Rows are grouped by ``episode`` and ordered by ``step``; the value at a row is
    ``Σ_k γ^k r_{t+k}`` over that row and the later rows of its episode. Exact (second array True)
    only for episodes whose logged steps are 1, 2, ..., n (not sub-sampled by step_log_interval)
    with finite rewards. Returned in the input row order.

    Shapes:
        episode, step, reward: [n]; returns ([n] float64, [n] bool).
    """
    n = episode.size
    rtg = np.full(n, np.nan)
    exact = np.zeros(n, dtype=bool)
    if n == 0:
        return rtg, exact
    order = np.lexsort((step, episode))
    ep, st, rw = episode[order], step[order], reward[order]
    starts = np.flatnonzero(np.concatenate(([True], ep[1:] != ep[:-1])))
    ends = np.concatenate((starts[1:], [n]))
    seg = np.repeat(np.arange(starts.size), ends - starts)
    from_end = ends[seg] - 1 - np.arange(n)           # 0 on the last row of each episode
    g = np.where(np.isfinite(rw), rw, 0.0)
    # one vector step per position from the end: G_t = r_t + γ G_{t+1}
    by_pos = np.argsort(from_end, kind="stable")
    bounds = np.concatenate(([0], np.cumsum(np.bincount(from_end))))
    for k in range(1, bounds.size - 1):
        rows = by_pos[bounds[k]:bounds[k + 1]]
        g[rows] += gamma * g[rows + 1]
    # exactness per episode: steps 1..n consecutive and every reward finite
    first_ok = st[starts] == 1
    diffs_ok = np.ones(n, dtype=bool)
    diffs_ok[1:] = (st[1:] - st[:-1]) == 1
    diffs_ok[starts] = True
    bad = (~diffs_ok) | ~np.isfinite(rw)
    bad_per_ep = np.add.reduceat(bad.astype(np.int64), starts) > 0
    ok_ep = first_ok & ~bad_per_ep
    rtg[order] = g
    exact[order] = ok_ep[seg]
    return rtg, exact


def binned_means(x: np.ndarray, y: np.ndarray, bins: int = 20,
                 min_count: int = 5) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean and std of ``y`` in equal-width bins of ``x`` holding at least ``min_count`` points:
    (mean x in the bin, mean y, std y). Equal widths keep separate clusters of ``x`` (the
    rejected requests' returns near −1, say) in separate bins.

    Shapes:
        x, y: [n]; returns three [b] arrays, b <= bins.
    """
    keep = np.isfinite(x) & np.isfinite(y)
    x, y = x[keep], y[keep]
    if x.size == 0:
        return np.array([]), np.array([]), np.array([])
    edges = np.linspace(x.min(), x.max(), bins + 1)
    idx = np.clip(np.searchsorted(edges, x, side="right") - 1, 0, bins - 1)
    n = np.bincount(idx, minlength=bins)
    ok = n >= min(min_count, x.size)
    with np.errstate(invalid="ignore", divide="ignore"):
        cx = np.bincount(idx, weights=x, minlength=bins) / n
        my = np.bincount(idx, weights=y, minlength=bins) / n
        sy = np.sqrt(np.maximum(np.bincount(idx, weights=y * y, minlength=bins) / n - my ** 2, 0.0))
    return cx[ok], my[ok], sy[ok]


def episode_means(episode: np.ndarray, *values: np.ndarray) -> tuple[np.ndarray, ...]:
    """The episodes (sorted) and, per value array, its mean over each episode's rows."""
    eps, inv = np.unique(episode, return_inverse=True)
    counts = np.bincount(inv, minlength=eps.size)
    return (eps,) + tuple(np.bincount(inv, weights=v, minlength=eps.size) / counts for v in values)


def _gamma_text(gamma: float) -> str:
    return f"γ = {gamma:g}"


def _over_training(ax, episode, value, ret, gamma: float, smoothing: int) -> None:
    eps, mv, mg = episode_means(episode, value, ret)
    plot_smoothed(ax, eps, mg, COLORS["return"], f"discounted return G ({_gamma_text(gamma)})",
                  smoothing, "episodes")
    plot_smoothed(ax, eps, mv, COLORS["value"], "critic value estimate V", smoothing, "episodes")
    ax.set_xlabel("episode")
    integer_ticks(ax.xaxis)
    ax.set_ylabel("mean over the episode's steps\n(env. reward units)")
    ax.set_title("Value estimate and the discounted return it estimates, per episode", fontsize=10)
    ax.legend(loc="best")


def _calibration(fig, ax, episode, value, ret, gamma: float, smoothing: int) -> None:
    ep_hi = int(episode.max())
    n_ep = ep_hi - int(episode.min()) + 1
    last = min(n_ep, max(int(smoothing), math.ceil(0.1 * n_ep)))
    sel = episode > ep_hi - last
    xv, yv = ret[sel], value[sel]
    hb = ax.hexbin(xv, yv, gridsize=40, bins="log", mincnt=1, cmap=CMAP_DENSITY, linewidths=0.0)
    fig.colorbar(hb, ax=ax, label="steps per cell (log scale)")
    cx, my, sy = binned_means(xv, yv)
    ax.fill_between(cx, my - sy, my + sy, color=COLORS["value"], alpha=0.2,
                    label="± 1 std of V in the bin")
    ax.plot(cx, my, color=COLORS["value"], lw=SMOOTH_WIDTH, marker="o", ms=3,
            label="mean V per bin of G")
    lo = float(min(xv.min(), yv.min()))
    hi = float(max(xv.max(), yv.max()))
    ax.plot([lo, hi], [lo, hi], color=COLORS["reference"], ls="--", lw=1, label="V = G")
    ax.set_xlabel(f"discounted return G = Σₖ γᵏ r (observed, {_gamma_text(gamma)})")
    ax.set_ylabel("critic value estimate V")
    first = ep_hi - last + 1
    ax.set_title(f"Per step, episodes {first}–{ep_hi} ({int(sel.sum())} steps)", fontsize=10)
    ax.legend(loc="upper left")


def _explained_variance(ax, updates: Table, smoothing: int) -> None:
    x, ev = sorted_by(updates[C["update"]], updates[C["explained_variance"]])
    plot_smoothed(ax, x, ev, COLORS["explained_variance"], "explained variance", smoothing,
                  "updates")
    ax.axhline(1.0, color=COLORS["reference"], ls="--", lw=1, label="perfect (1)")
    ax.axhline(0.0, color=COLORS["reference"], ls=":", lw=1, label="no better than the mean (0)")
    f = ev[np.isfinite(ev)]
    if f.min() < -1.0:
        ax.set_ylim(-1.0, 1.05)
        ax.set_title("Explained variance of the critic (values below −1 clipped)", fontsize=10)
    else:
        ax.set_title("Explained variance of the critic", fontsize=10)
    ax.set_xlabel("policy update")
    integer_ticks(ax.xaxis)
    ax.set_ylabel("1 − Var[target − V] / Var[target]")
    ax.legend(loc="lower right")


def value_figure(steps: Table, updates: Table, smoothing: int, gamma: float) -> Figure:
    """The value figure (see the module docstring); ``gamma`` is the run's ``train.gamma``."""
    has_steps = len(steps) > 0 and np.isfinite(steps["Value"]).any()
    ev = updates[C["explained_variance"]] if len(updates) else np.array([])
    has_ev = bool(np.isfinite(ev).any())
    if not has_steps and not has_ev:
        raise FigureUnavailable(
            f"no 'Value' rows in {steps.path} and no '{C['explained_variance']}' in {updates.path}"
        )
    fig = new_figure(11.0, 8.4)
    axes = fig.subplot_mosaic([["time", "time"], ["scatter", "ev"]])
    if has_steps:
        ret, exact = reward_to_go(steps["Episode"], steps["Step"], steps["Reward"], gamma)
        value = steps["Value"]
        keep = exact & np.isfinite(value)
        if keep.sum() >= 2:
            episode, value, ret = steps["Episode"][keep], value[keep], ret[keep]
            _over_training(axes["time"], episode, value, ret, gamma, smoothing)
            _calibration(fig, axes["scatter"], episode, value, ret, gamma, smoothing)
        else:
            for key in ("time", "scatter"):
                no_data(axes[key], "steps.parquet is sub-sampled (experiment.step_log_interval > 1):"
                                   "\nthe discounted return cannot be computed")
    else:
        for key in ("time", "scatter"):
            no_data(axes[key], f"no step rows with a value estimate in {steps.path}\n"
                               "(experiment.step_log_interval = 0?)")
    if has_ev:
        _explained_variance(axes["ev"], updates, smoothing)
    else:
        no_data(axes["ev"], f"no '{C['explained_variance']}' values in {updates.path}")
    fig.suptitle(f"Value function (critic), {_gamma_text(gamma)} (train.gamma)")
    return fig
