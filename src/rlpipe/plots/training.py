"""Training-curve figures from the summary tables: reward, loss, entropy, value, performance, actions.

Each ``*_figure`` function takes :class:`rlpipe.plots.inputs.Table` objects and returns a
matplotlib Figure, or raises :class:`FigureUnavailable` with a note when the data cannot make it.
Raw series are drawn faint, their trailing moving average over ``visualize.smoothing`` points solid.
"""
from __future__ import annotations

import math

import numpy as np
from matplotlib.figure import Figure

from rlpipe.plots.inputs import Table
from rlpipe.plots.render import FigureUnavailable, new_figure
from rlpipe.plots.style import (
    CMAP_DENSITY, CMAP_SHARE, COLORS, METRIC_CYCLE, RAW_ALPHA, RAW_WIDTH, SMOOTH_WIDTH,
    moving_average,
)

# Units of the contract's columns; an environment's own metrics are labelled "as logged".
METRIC_UNITS = {
    "Deployment Accuracy": "share of decisions in the reference set",
}


def _sorted_by(x: np.ndarray, *ys: np.ndarray) -> tuple[np.ndarray, ...]:
    if x.size > 1 and np.any(np.diff(x) < 0):
        order = np.argsort(x, kind="stable")
        return (x[order],) + tuple(y[order] for y in ys)
    return (x,) + ys


def plot_smoothed(ax, x: np.ndarray, y: np.ndarray, color: str, label: str, window: int,
                  raw_label: bool = True) -> bool:
    """Raw ``y`` faint plus its moving average; False (nothing drawn) when ``y`` has no finite value."""
    if not np.isfinite(y).any():
        return False
    ax.plot(x, y, color=color, alpha=RAW_ALPHA, lw=RAW_WIDTH,
            label=f"{label} (raw)" if raw_label else None)
    ax.plot(x, moving_average(y, window), color=color, lw=SMOOTH_WIDTH,
            label=f"{label} (moving avg., {window})")
    return True


def _no_data(ax, message: str) -> None:
    ax.text(0.5, 0.5, message, transform=ax.transAxes, ha="center", va="center",
            fontsize=9, color="#555555", wrap=True)
    ax.set_xticks([])
    ax.set_yticks([])


def _require_rows(table: Table) -> None:
    if len(table) == 0:
        raise FigureUnavailable(f"{table.path} has no rows")


# --------------------------------------------------------------------------- reward
def reward_figure(episodes: Table, smoothing: int) -> Figure:
    _require_rows(episodes)
    x, ret, mean = _sorted_by(episodes["Episode"], episodes["Cumulative Reward"],
                              episodes["Mean Episode Reward"])
    if not np.isfinite(ret).any():
        raise FigureUnavailable(f"'Cumulative Reward' is empty in {episodes.path}")
    fig = new_figure(8.0, 4.5)
    ax = fig.subplots()
    plot_smoothed(ax, x, ret, COLORS["reward"], "episode return", smoothing)
    if np.isfinite(mean).any():
        ax.plot(x, mean, color=COLORS["mean_reward"], lw=1.4, ls="--",
                label="Mean Episode Reward (train.summary_window)")
    ax.set_xlabel("episode")
    ax.set_ylabel("return per episode (sum of rewards, env. units)")
    ax.set_title(f"{len(episodes)} episodes; last mean {_fmt(_last_finite(mean))}", fontsize=9)
    fig.suptitle("Episode reward")
    ax.legend(loc="best")
    return fig


def _last_finite(y: np.ndarray) -> float:
    f = y[np.isfinite(y)]
    return float(f[-1]) if f.size else math.nan


def _fmt(v: float) -> str:
    return "n/a" if not math.isfinite(v) else f"{v:.4g}"


# --------------------------------------------------------------------------- loss, entropy
def _update_axis(updates: Table, episodes: Table) -> tuple[np.ndarray, str, Table]:
    """x values and label for per-update series; the episodes table when there are no updates."""
    if len(updates) > 0:
        return updates["Update"], "policy update", updates
    if len(episodes) > 0:
        return episodes["Episode"], "episode (latest update's value)", episodes
    raise FigureUnavailable(f"{updates.path} and {episodes.path} have no rows")


def loss_figure(updates: Table, episodes: Table, smoothing: int) -> Figure:
    x, xlabel, src = _update_axis(updates, episodes)
    skipped = (src["Skipped"] == 1) if (src is updates and "Skipped" in src) else np.zeros(x.size, bool)
    x, actor, critic, skipped = _sorted_by(x, src["Actor Loss"], src["Critic Loss"], skipped)
    if not (np.isfinite(actor).any() or np.isfinite(critic).any()):
        raise FigureUnavailable(f"'Actor Loss' and 'Critic Loss' are empty in {src.path}")
    fig = new_figure(10.0, 4.3)
    ax_a, ax_c = fig.subplots(1, 2)
    for ax, y, key, name in ((ax_a, actor, "actor", "actor (policy) loss"),
                             (ax_c, critic, "critic", "critic (value) loss")):
        if not plot_smoothed(ax, x, y, COLORS[key], name, smoothing):
            _no_data(ax, f"no finite {name} values")
            continue
        ax.set_xlabel(xlabel)
        ax.set_ylabel(f"{name} (objective units)")
        ax.set_title(name[0].upper() + name[1:])
    f = critic[np.isfinite(critic)]
    if f.size and np.all(f > 0):
        ax_c.set_yscale("log")
        ax_c.set_ylabel("critic (value) loss, log scale")
    if skipped.any():
        for ax in (ax_a, ax_c):
            ax.vlines(x[skipped], 0, 1, transform=ax.get_xaxis_transform(),
                      color=COLORS["skipped"], lw=0.6, alpha=0.5)
        ax_a.plot([], [], color=COLORS["skipped"], lw=0.8,
                  label=f"skipped update, NaN/inf loss ({int(skipped.sum())})")
    for ax in (ax_a, ax_c):
        if ax.lines:
            ax.legend(loc="best")
    fig.suptitle("Losses per policy update" if src is updates else "Losses per episode")
    return fig


def entropy_figure(updates: Table, episodes: Table, smoothing: int) -> Figure:
    x, xlabel, src = _update_axis(updates, episodes)
    ent = src["Policy Entropy"]
    x, ent = _sorted_by(x, ent)
    if not np.isfinite(ent).any():
        raise FigureUnavailable(f"'Policy Entropy' is empty in {src.path}")
    kl = updates["Approx KL"] if src is updates else np.array([])
    clip = updates["Clip Fraction"] if src is updates else np.array([])
    if kl.size:
        _, kl, clip = _sorted_by(updates["Update"], kl, clip)
    has_ppo = np.isfinite(kl).any() or np.isfinite(clip).any()
    fig = new_figure(8.0, 6.5 if has_ppo else 4.3)
    axes = fig.subplots(2 if has_ppo else 1, 1, sharex=True, squeeze=False)[:, 0]
    ax = axes[0]
    plot_smoothed(ax, x, ent, COLORS["entropy"], "policy entropy", smoothing)
    ax.set_ylabel("entropy (nats)")
    ax.set_title("Policy entropy (higher = more exploration)")
    ax.legend(loc="best")
    if has_ppo:
        ax2 = axes[1]
        plot_smoothed(ax2, x, kl, COLORS["kl"], "approx. KL", smoothing)
        ax2.set_ylabel("approx. KL (nats)")
        ax3 = ax2.twinx()
        ax3.grid(False)
        plot_smoothed(ax3, x, clip, COLORS["clip"], "clip fraction", smoothing)
        ax3.set_ylabel("clip fraction (share of samples)")
        ax2.set_title("Update size: approx. KL (left axis), clip fraction (right axis)")
        h2, l2 = ax2.get_legend_handles_labels()
        h3, l3 = ax3.get_legend_handles_labels()
        ax2.legend(h2 + h3, l2 + l3, loc="best")
    axes[-1].set_xlabel(xlabel)
    fig.suptitle("Policy entropy")
    return fig


# --------------------------------------------------------------------------- value
def reward_to_go(episode: np.ndarray, step: np.ndarray, reward: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Undiscounted reward-to-go (gamma = 1) of every step row, and whether it is exact.

    Rows are grouped by ``episode`` and ordered by ``step``; the value at a row is the sum of the
    rewards of that row and all later rows of its episode. Exact (second array True) only for
    episodes whose logged steps are 1, 2, ..., n (not sub-sampled by step_log_interval) with finite
    rewards. Returned in the input row order.
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
    r0 = np.where(np.isfinite(rw), rw, 0.0)
    csum = np.cumsum(r0[::-1])[::-1]  # suffix sums over the whole array
    tail = np.concatenate((csum[ends[:-1]], [0.0]))  # suffix sum just past each episode
    seg = np.repeat(np.arange(starts.size), ends - starts)
    rtg_sorted = csum - tail[seg]
    # exactness per episode: steps 1..n consecutive and every reward finite
    first_ok = st[starts] == 1
    diffs_ok = np.ones(n, dtype=bool)
    diffs_ok[1:] = (st[1:] - st[:-1]) == 1
    diffs_ok[starts] = True
    bad = (~diffs_ok) | ~np.isfinite(rw)
    bad_per_ep = np.add.reduceat(bad.astype(np.int64), starts) > 0
    ok_ep = first_ok & ~bad_per_ep
    exact_sorted = ok_ep[seg]
    rtg[order] = rtg_sorted
    exact[order] = exact_sorted
    return rtg, exact


def binned_means(x: np.ndarray, y: np.ndarray, bins: int = 30) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean and std of ``y`` in equal-count bins of ``x``: (bin centre of x, mean y, std y)."""
    keep = np.isfinite(x) & np.isfinite(y)
    x, y = x[keep], y[keep]
    if x.size == 0:
        return np.array([]), np.array([]), np.array([])
    order = np.argsort(x, kind="stable")
    x, y = x[order], y[order]
    parts = np.array_split(np.arange(x.size), min(bins, x.size))
    cx = np.array([x[p].mean() for p in parts])
    my = np.array([y[p].mean() for p in parts])
    sy = np.array([y[p].std() for p in parts])
    return cx, my, sy


def value_figure(steps: Table, updates: Table, smoothing: int) -> Figure:
    has_steps = len(steps) > 0 and np.isfinite(steps["Value"]).any()
    ev = updates["Explained Variance"] if len(updates) else np.array([])
    has_ev = bool(np.isfinite(ev).any())
    if not has_steps and not has_ev:
        raise FigureUnavailable(
            f"no 'Value' rows in {steps.path} and no 'Explained Variance' in {updates.path}"
        )
    fig = new_figure(11.0, 4.6)
    ax_v, ax_e = fig.subplots(1, 2)
    if has_steps:
        rtg, exact = reward_to_go(steps["Episode"], steps["Step"], steps["Reward"])
        value = steps["Value"]
        keep = exact & np.isfinite(value)
        if keep.sum() >= 2:
            xv, yv = rtg[keep], value[keep]
            hb = ax_v.hexbin(xv, yv, gridsize=50, bins="log", mincnt=1, cmap=CMAP_DENSITY,
                             linewidths=0.0)
            fig.colorbar(hb, ax=ax_v, label="steps per cell (log scale)")
            cx, my, sy = binned_means(xv, yv)
            ax_v.fill_between(cx, my - sy, my + sy, color=COLORS["value"], alpha=0.2,
                              label="± 1 std of value in bin")
            ax_v.plot(cx, my, color=COLORS["value"], lw=SMOOTH_WIDTH, marker="o", ms=3,
                      label="mean value estimate per reward-to-go bin")
            lo = float(min(np.nanmin(xv), np.nanmin(yv)))
            hi = float(max(np.nanmax(xv), np.nanmax(yv)))
            ax_v.plot([lo, hi], [lo, hi], color=COLORS["reference"], ls="--", lw=1,
                      label="value = reward-to-go")
            ax_v.set_xlabel("observed reward-to-go, undiscounted (γ = 1), env. reward units")
            ax_v.set_ylabel("critic value estimate (env. reward units)")
            ax_v.legend(loc="upper left")
            skipped = int((~exact).sum())
            note = f" ({skipped} sub-sampled/incomplete step rows left out)" if skipped else ""
            ax_v.set_title(f"Value estimate vs return, {int(keep.sum())} steps{note}\n"
                           "critic targets the γ-discounted return: slope < 1 is expected for γ < 1",
                           fontsize=9)
        else:
            _no_data(ax_v, "steps.parquet is sub-sampled (experiment.step_log_interval > 1):\n"
                           "reward-to-go cannot be computed")
    else:
        _no_data(ax_v, f"no step rows with a value estimate in {steps.path}\n"
                       "(experiment.step_log_interval = 0?)")
    if has_ev:
        x, ev = _sorted_by(updates["Update"], ev)
        plot_smoothed(ax_e, x, ev, COLORS["explained_variance"], "explained variance", smoothing)
        ax_e.axhline(1.0, color=COLORS["reference"], ls="--", lw=1, label="perfect (1)")
        ax_e.axhline(0.0, color=COLORS["reference"], ls=":", lw=1, label="no better than mean (0)")
        f = ev[np.isfinite(ev)]
        if f.min() < -1.0:
            ax_e.set_ylim(-1.0, 1.05)
            ax_e.set_title("Explained variance of the critic (values below −1 clipped)", fontsize=10)
        else:
            ax_e.set_title("Explained variance of the critic", fontsize=10)
        ax_e.set_xlabel("policy update")
        ax_e.set_ylabel("explained variance (1 − Var[return − V] / Var[return])")
        ax_e.legend(loc="lower right")
    else:
        _no_data(ax_e, f"no 'Explained Variance' values in {updates.path}")
    fig.suptitle("Value function")
    return fig


# --------------------------------------------------------------------------- performance
def performance_metrics(episodes: Table) -> list[str]:
    """Deployment Accuracy (when any value is present) and every numeric column after it."""
    names = []
    if "Deployment Accuracy" in episodes and np.isfinite(episodes["Deployment Accuracy"]).any():
        names.append("Deployment Accuracy")
    for c in episodes.columns_after("Deployment Accuracy"):
        if np.isfinite(episodes[c]).any():
            names.append(c)
    return names


def performance_figure(episodes: Table, smoothing: int) -> Figure:
    _require_rows(episodes)
    names = performance_metrics(episodes)
    if not names:
        raise FigureUnavailable(
            f"no metric values in {episodes.path} (Deployment Accuracy is empty "
            "and no performance-metric column after it has a value)"
        )
    ncols = 1 if len(names) == 1 else 2
    nrows = math.ceil(len(names) / ncols)
    fig = new_figure(5.2 * ncols, 3.4 * nrows + 0.5)
    axes = np.atleast_1d(fig.subplots(nrows, ncols, squeeze=False)).ravel()
    for i, (ax, name) in enumerate(zip(axes, names)):
        color = COLORS["accuracy"] if name == "Deployment Accuracy" else \
            METRIC_CYCLE[i % len(METRIC_CYCLE)]
        x, y = _sorted_by(episodes["Episode"], episodes[name])
        plot_smoothed(ax, x, y, color, name.lower(), smoothing)
        if name == "Deployment Accuracy":
            ax.set_ylim(-0.02, 1.02)
        ax.set_title(f"{name}: last avg. {_fmt(_last_finite(moving_average(y, smoothing)))}",
                     fontsize=10)
        ax.set_xlabel("episode")
        ax.set_ylabel(METRIC_UNITS.get(name, f"{name} (as logged by the environment)"))
        ax.legend(loc="best")
    for ax in axes[len(names):]:
        ax.set_visible(False)
    fig.suptitle("Performance metrics per episode")
    return fig


# --------------------------------------------------------------------------- actions
def action_window_counts(episode: np.ndarray, action: np.ndarray, window: int,
                         num_actions: int) -> tuple[np.ndarray, np.ndarray]:
    """Counts [num_actions, W] of each action per window of ``window`` episodes, and the first
    episode of each window. Rows with a missing or negative action are left out."""
    keep = np.isfinite(episode) & np.isfinite(action) & (action >= 0)
    ep = episode[keep].astype(np.int64)
    act = action[keep].astype(np.int64)
    first = int(ep.min()) if ep.size else 1
    col = (ep - first) // window
    ncol = int(col.max()) + 1 if col.size else 0
    counts = np.bincount(act * ncol + col, minlength=num_actions * ncol).reshape(num_actions, ncol) \
        if ncol else np.zeros((num_actions, 0), dtype=np.int64)
    return counts, first + window * np.arange(ncol)


def actions_figure(steps: Table, smoothing: int) -> Figure:
    if len(steps) == 0:
        raise FigureUnavailable(
            f"{steps.path} has no rows (experiment.step_log_interval = 0?)"
        )
    episode, action = steps["Episode"], steps["Action"]
    valid = np.isfinite(action) & (action >= 0) & np.isfinite(episode)
    if not valid.any():
        raise FigureUnavailable(f"no valid 'Action' values in {steps.path}")
    num_actions = int(action[valid].max()) + 1
    reference = steps["Oracle Action"]  # the contract's column: one action of the reference set
    has_reference = bool(np.isfinite(reference).any())
    ep_lo, ep_hi = int(episode[valid].min()), int(episode[valid].max())
    n_ep = ep_hi - ep_lo + 1
    window = max(int(smoothing), math.ceil(n_ep / 150))  # at most ~150 columns
    counts, starts = action_window_counts(episode, action, window, num_actions)
    share = counts / np.maximum(counts.sum(axis=0, keepdims=True), 1)

    fig = new_figure(12.0 if has_reference else 9.0, max(4.2, min(9.0, 2.5 + 0.12 * num_actions)))
    if has_reference:
        ax_h, ax_b = fig.subplots(1, 2, width_ratios=[1.6, 1])
    else:
        ax_h, ax_b = fig.subplots(), None
    extent = (starts[0] - 0.5, starts[-1] + window - 0.5, -0.5, num_actions - 0.5)
    im = ax_h.imshow(share, aspect="auto", origin="lower", interpolation="nearest",
                     cmap=CMAP_SHARE, extent=extent, vmin=0.0)
    fig.colorbar(im, ax=ax_h, label="share of the window's actions")
    ax_h.set_xlabel(f"episode (windows of {window} episodes)")
    ax_h.set_ylabel("action index")
    ax_h.set_title(f"Action frequency per window of {window} episodes "
                   f"({int(valid.sum())} logged steps)", fontsize=10)
    ax_h.grid(False)
    if num_actions <= 30:
        ax_h.set_yticks(range(num_actions))

    if has_reference:
        last = max(int(smoothing), math.ceil(0.1 * n_ep))
        first_ep = ep_hi - last + 1
        sel = (episode >= first_ep) & np.isfinite(reference) & valid
        chosen = np.bincount(action[sel].astype(np.int64), minlength=num_actions)
        orc_v = reference[sel]
        orc_v = orc_v[orc_v >= 0].astype(np.int64)
        n_or = max(num_actions, int(orc_v.max()) + 1 if orc_v.size else 0)
        chosen = np.pad(chosen, (0, n_or - chosen.size))
        orc = np.bincount(orc_v, minlength=n_or)
        tot = max(int(sel.sum()), 1)
        idx = np.arange(n_or)
        w = 0.4
        ax_b.bar(idx - w / 2, chosen / tot, width=w, color=COLORS["chosen"], label="chosen action")
        ax_b.bar(idx + w / 2, orc / tot, width=w, color=COLORS["reference_set"],
                 label="reference action (lowest index of the reference set)")
        match = float(np.mean(action[sel] == reference[sel])) if sel.any() else math.nan
        ax_b.set_title(f"Chosen vs reference, episodes {first_ep}–{ep_hi}\n"
                       f"(same action as the reference's lowest-index choice: {_fmt(match)})",
                       fontsize=10)
        ax_b.set_xlabel("action index")
        ax_b.set_ylabel("share of steps")
        ax_b.legend(loc="best")
    fig.suptitle("Action distribution")
    return fig
