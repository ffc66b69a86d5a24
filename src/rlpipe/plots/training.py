"""Training-curve figures from the summary tables: reward, loss, entropy, value, performance, actions.

Each ``*_figure`` function takes :class:`rlpipe.plots.inputs.Table` objects and returns a
matplotlib Figure, or raises :class:`FigureUnavailable` with a note when the data cannot make it.
Raw series are drawn faint, their centred moving average solid (:func:`rlpipe.smoothing.smooth`:
``visualize.smoothing`` points, at most a tenth of the series; the legend gives the window used).
A series too short to smooth (under 30 points) is drawn once, solid, with markers.
"""
from __future__ import annotations

import math

import numpy as np
from matplotlib.figure import Figure

from rlpipe.plots.inputs import Table
from rlpipe.plots.render import FigureUnavailable, new_figure
from rlpipe.plots.curves import fmt as _fmt
from rlpipe.plots.curves import last_finite as _last_finite
from rlpipe.plots.curves import no_data as _no_data
from rlpipe.plots.curves import plot_smoothed
from rlpipe.plots.curves import sorted_by as _sorted_by
from rlpipe.plots.style import CMAP_SHARE, COLORS, METRIC_CYCLE, integer_ticks
from rlpipe.plots.value import value_figure  # noqa: F401  (drawn in rlpipe.plots.value)
from rlpipe.smoothing import trailing_mean
from rlpipe.statistics import COLUMN as C

# Units of the contract's columns; an environment's own metrics are labelled "as logged".
METRIC_UNITS = {
    C["accuracy"]: "share of decisions in the reference set",
}


def _require_rows(table: Table) -> None:
    if len(table) == 0:
        raise FigureUnavailable(f"{table.path} has no rows")


# --------------------------------------------------------------------------- reward
def reward_figure(episodes: Table, smoothing: int, evaluations=None) -> Figure:
    """``evaluations``: (episode, mean return, sd) arrays of evaluation during training
    (training_output/eval.csv), drawn beside the training curve; None or empty = none."""
    _require_rows(episodes)
    x, ret, mean = _sorted_by(episodes[C["episode"]], episodes[C["total_reward"]],
                              episodes[C["mean_episode_reward"]])
    if not np.isfinite(ret).any():
        raise FigureUnavailable(f"'{C['total_reward']}' is empty in {episodes.path}")
    fig = new_figure(8.0, 4.5)
    ax = fig.subplots()
    plot_smoothed(ax, x, ret, COLORS["reward"], "episode return", smoothing, "episodes")
    if np.isfinite(mean).any():
        ax.plot(x, mean, color=COLORS["mean_reward"], lw=1.4, ls="--",
                label=f"{C['mean_episode_reward']} (train.summary_window)")
    if evaluations is not None and len(evaluations[0]):
        ex, em, es = evaluations
        ax.fill_between(ex, em - es, em + es, color=COLORS["evaluation"], alpha=0.2, lw=0)
        ax.plot(ex, em, color=COLORS["evaluation"], lw=1.6, marker="o", ms=3,
                label="evaluation during training (greedy, held-out episodes; mean ± sd)")
    ax.set_xlabel("episode")
    integer_ticks(ax.xaxis)
    ax.set_ylabel("return per episode (sum of rewards, env. units)")
    ax.set_title(f"{len(episodes)} episodes; {C['mean_episode_reward']} at the end: "
                 f"{_fmt(_last_finite(mean))}", fontsize=9)
    fig.suptitle("Episode reward")
    ax.legend(loc="best")
    return fig


# --------------------------------------------------------------------------- loss, entropy
def _update_axis(updates: Table, episodes: Table) -> tuple[np.ndarray, str, Table]:
    """x values and label for per-update series; the episodes table when there are no updates."""
    if len(updates) > 0:
        return updates[C["update"]], "policy update", updates
    if len(episodes) > 0:
        return episodes[C["episode"]], "episode (latest update's value)", episodes
    raise FigureUnavailable(f"{updates.path} and {episodes.path} have no rows")


def _unit(src: Table, updates: Table) -> str:
    return "updates" if src is updates else "episodes"


def loss_figure(updates: Table, episodes: Table, smoothing: int) -> Figure:
    x, xlabel, src = _update_axis(updates, episodes)
    has_skipped = src is updates and C["skipped"] in src
    skipped = (src[C["skipped"]] == 1) if has_skipped else np.zeros(x.size, bool)
    x, actor, critic, skipped = _sorted_by(x, src[C["actor_loss"]], src[C["critic_loss"]], skipped)
    if not (np.isfinite(actor).any() or np.isfinite(critic).any()):
        raise FigureUnavailable(f"'{C['actor_loss']}' and '{C['critic_loss']}' are empty in {src.path}")
    fig = new_figure(10.0, 4.3)
    ax_a, ax_c = fig.subplots(1, 2)
    for ax, y, key, name in ((ax_a, actor, "actor", "actor (policy) loss"),
                             (ax_c, critic, "critic", "critic (value) loss")):
        if not plot_smoothed(ax, x, y, COLORS[key], name, smoothing, _unit(src, updates)):
            _no_data(ax, f"no finite {name} values")
            continue
        ax.set_xlabel(xlabel)
        integer_ticks(ax.xaxis)
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
    ent = src[C["entropy"]]
    x, ent = _sorted_by(x, ent)
    if not np.isfinite(ent).any():
        raise FigureUnavailable(f"'{C['entropy']}' is empty in {src.path}")
    kl = updates[C["approx_kl"]] if src is updates else np.array([])
    clip = updates[C["clip_fraction"]] if src is updates else np.array([])
    if kl.size:
        _, kl, clip = _sorted_by(updates[C["update"]], kl, clip)
    has_ppo = np.isfinite(kl).any()  # A2C measures no KL (rlpipe.statistics)
    fig = new_figure(8.0, 6.5 if has_ppo else 4.3)
    axes = fig.subplots(2 if has_ppo else 1, 1, sharex=True, squeeze=False)[:, 0]
    ax = axes[0]
    unit = _unit(src, updates)
    plot_smoothed(ax, x, ent, COLORS["entropy"], "policy entropy", smoothing, unit)
    ax.set_ylabel("entropy (nats)")
    ax.set_title("Policy entropy (higher = more exploration)")
    ax.legend(loc="best")
    if has_ppo:
        ax2 = axes[1]
        plot_smoothed(ax2, x, kl, COLORS["kl"], "approx. KL", smoothing, unit)
        ax2.set_ylabel("approx. KL (nats)")
        ax3 = ax2.twinx()
        ax3.grid(False)
        plot_smoothed(ax3, x, clip, COLORS["clip"], "clip fraction", smoothing, unit)
        ax3.set_ylabel("clip fraction (share of samples)")
        ax2.set_title("Update size: approx. KL (left axis), clip fraction (right axis)")
        h2, l2 = ax2.get_legend_handles_labels()
        h3, l3 = ax3.get_legend_handles_labels()
        ax2.legend(h2 + h3, l2 + l3, loc="upper right", ncols=2)  # twin axes: no "best"
    axes[-1].set_xlabel(xlabel)
    integer_ticks(axes[-1].xaxis)
    fig.suptitle("Policy entropy")
    return fig


# --------------------------------------------------------------------------- performance
def performance_metrics(episodes: Table) -> list[str]:
    """Deployment Accuracy (when any value is present) and every numeric column after it."""
    names = []
    if C["accuracy"] in episodes and np.isfinite(episodes[C["accuracy"]]).any():
        names.append(C["accuracy"])
    for c in episodes.columns_after(C["accuracy"]):
        if np.isfinite(episodes[c]).any():
            names.append(c)
    return names


def performance_figure(episodes: Table, smoothing: int) -> Figure:
    _require_rows(episodes)
    names = performance_metrics(episodes)
    if not names:
        raise FigureUnavailable(
            f"no metric values in {episodes.path} ({C['accuracy']} is empty "
            "and no performance-metric column after it has a value)"
        )
    ncols = 1 if len(names) == 1 else 2
    nrows = math.ceil(len(names) / ncols)
    fig = new_figure(5.2 * ncols, 3.4 * nrows + 0.5)
    axes = np.atleast_1d(fig.subplots(nrows, ncols, squeeze=False)).ravel()
    for i, (ax, name) in enumerate(zip(axes, names)):
        color = COLORS["accuracy"] if name == C["accuracy"] else \
            METRIC_CYCLE[i % len(METRIC_CYCLE)]
        x, y = _sorted_by(episodes[C["episode"]], episodes[name])
        plot_smoothed(ax, x, y, color, name.lower(), smoothing, "episodes")
        if name == C["accuracy"]:
            ax.set_ylim(-0.02, 1.02)
        last = max(1, min(int(smoothing), len(y)))
        ax.set_title(f"{name} (last {last} episodes: "
                     f"{_fmt(_last_finite(trailing_mean(y, last)))})", fontsize=10)
        ax.set_xlabel("episode")
        integer_ticks(ax.xaxis)
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
    # visualize.smoothing episodes per column, but at least ~10 columns and at most ~150
    window = max(math.ceil(n_ep / 150), min(int(smoothing), max(1, n_ep // 10)))
    counts, starts = action_window_counts(episode, action, window, num_actions)
    share = counts / np.maximum(counts.sum(axis=0, keepdims=True), 1)

    fig = new_figure(12.0 if has_reference else 9.0, max(4.2, min(9.0, 2.5 + 0.12 * num_actions)))
    if has_reference:
        ax_h, ax_b = fig.subplots(1, 2, width_ratios=[1.6, 1])
    else:
        ax_h, ax_b = fig.subplots(), None
    # column edges: the last window ends with the last episode (it may hold fewer episodes)
    x_edges = np.append(starts, min(starts[-1] + window, ep_hi + 1)) - 0.5
    im = ax_h.pcolormesh(x_edges, np.arange(num_actions + 1) - 0.5, share, cmap=CMAP_SHARE,
                         vmin=0.0)
    fig.colorbar(im, ax=ax_h, label="share of the window's actions")
    ax_h.set_xlabel(f"episode (windows of {window} episodes)")
    ax_h.set_ylabel("action index")
    ax_h.set_title(f"Action frequency per window of {window} episodes "
                   f"({int(valid.sum())} logged steps)", fontsize=10)
    ax_h.grid(False)
    integer_ticks(ax_h.xaxis, ax_h.yaxis)
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
                       f"(chosen = the reference's lowest index: {_fmt(match)})",
                       fontsize=10)
        ax_b.set_xlabel("action index")
        integer_ticks(ax_b.xaxis)
        if n_or <= 30:
            ax_b.set_xticks(idx)
        ax_b.set_ylabel("share of steps")
        ax_b.legend(loc="best")
    fig.suptitle("Action distribution")
    return fig
