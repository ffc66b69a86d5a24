"""Seaborn figures of a sweep: learning curves across seeds, final results against each grid key.

Bands and error bars are 95% confidence intervals of the mean across seeds from Student's t
(mean +- t(0.975, n-1) * sd / sqrt(n)), passed to seaborn as a callable ``errorbar``: exact for
few seeds (a bootstrap of 3 values is not) and computed directly (no resampling), so drawing
stays fast however long the runs are. The interval is clipped to the metric's range (accuracy
[0, 1]; see rlpipe.sweep.objective): the mean cannot lie outside it, and with 2 seeds the raw
interval (t with 1 degree of freedom) would run far past it. One seed draws a line without a
band.

* ``learning_curves.png``: per setting, the trailing mean over ``sweep.window`` episodes of each
  trial's Cumulative Reward (and Deployment Accuracy, where the environment reports it), averaged
  across seeds, with the band; at most :data:`MAX_POINTS` episodes per curve are drawn.
* ``final_by_<key>.png`` for each grid key: the final reward (and accuracy) of every trial as
  dots, and their mean with its interval, against the key's values (other keys pooled).
"""
from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from rlpipe.paths import SWEEP_LEARNING_CURVES
from rlpipe.smoothing import trailing_mean
from rlpipe.statistics import COLUMN
from rlpipe.sweep.objective import metric, range_of_column

MAX_POINTS = 400
FIGURE_DPI = 100
CURVE_METRICS = ((COLUMN["total_reward"], "reward"), (COLUMN["accuracy"], "accuracy"))
FINAL_METRICS = (("final_reward", "final reward"), ("accuracy", "final accuracy"))
# each figure's metric range (bands are clipped to it), from the metrics' one definition
RANGES = {name: range_of_column(col) for col, name in CURVE_METRICS}
RANGES.update({col: (metric(col).low, metric(col).high) for col, _ in FINAL_METRICS})


def t_interval(values: Sequence[float], low: float = -math.inf,
               high: float = math.inf) -> tuple[float, float]:
    """95% confidence interval of the mean (Student's t), clipped to the metric's range
    [``low``, ``high``] (accuracy: [0, 1]; with 2 seeds t has 1 degree of freedom and the raw
    interval is 12.7 standard errors wide); a single value gives (v, v)."""
    from scipy import stats

    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    if len(v) == 0:
        return math.nan, math.nan
    m = float(v.mean())
    if len(v) < 2:
        return m, m
    half = float(stats.t.ppf(0.975, len(v) - 1) * v.std(ddof=1) / math.sqrt(len(v)))
    return max(low, m - half), min(high, m + half)


def interval_within(low: float, high: float):
    """:func:`t_interval` clipped to [low, high], as seaborn's ``errorbar`` callable."""
    return lambda values: t_interval(values, low, high)


def figure_name(key: str) -> str:
    """``train.actor_lr`` -> ``final_by_train.actor_lr.png`` (safe characters only)."""
    return "final_by_" + re.sub(r"[^0-9A-Za-z._-]+", "_", key) + ".png"


def curve_frame(episodes: pd.DataFrame, window: int, max_points: int = MAX_POINTS) -> pd.DataFrame:
    """Long frame (trial_id, setting, Episode, metric, value): smoothed, at most ``max_points``
    episodes per trial (the same episodes for every trial, so seeds line up)."""
    last = int(episodes["Episode"].max()) if len(episodes) else 0
    step = max(1, math.ceil(last / max_points))
    parts = []
    for (tid, setting), rows in episodes.groupby(["trial_id", "setting"], sort=False):
        rows = rows.sort_values("Episode")
        ep = rows["Episode"].to_numpy()
        keep = (ep % step == 0) | (ep == ep.max())
        for col, name in CURVE_METRICS:
            if col not in rows or not np.isfinite(rows[col].to_numpy(dtype=float)).any():
                continue
            smooth = trailing_mean(rows[col].to_numpy(dtype=float), window)
            parts.append(pd.DataFrame({"trial_id": tid, "setting": setting, "Episode": ep[keep],
                                       "metric": name, "value": smooth[keep]}))
    if not parts:
        return pd.DataFrame(columns=["trial_id", "setting", "Episode", "metric", "value"])
    return pd.concat(parts, ignore_index=True)


def _save(fig, path: Path) -> None:
    fig.savefig(path, dpi=FIGURE_DPI, format="png", bbox_inches="tight")


def learning_curves(episodes: pd.DataFrame, order: Sequence[str], window: int, path: Path) -> None:
    import matplotlib.pyplot as plt
    import seaborn as sns

    data = curve_frame(episodes, window)
    metrics = [name for _, name in CURVE_METRICS if (data["metric"] == name).any()] or ["reward"]
    with sns.axes_style("whitegrid"):
        fig, axes = plt.subplots(1, len(metrics), figsize=(6.4 * len(metrics), 4.2), squeeze=False)
        for ax, name in zip(axes[0], metrics):
            rows = data[data["metric"] == name]
            if len(rows):
                sns.lineplot(data=rows, x="Episode", y="value", hue="setting",
                             hue_order=[s for s in order if s in set(rows["setting"])],
                             estimator="mean", errorbar=interval_within(*RANGES[name]), ax=ax)
            ax.set_ylabel(f"{name} (mean of last {window} episodes)")
            ax.set_title(f"{name}: mean across seeds, 95% CI band")
            if ax.get_legend() is not None:
                ax.get_legend().set_title("setting")
        crowded = len(order) > 3 or max((len(s) for s in order), default=0) > 30
        legends = [ax for ax in axes[0] if ax.get_legend() is not None]
        fig.tight_layout()
        if crowded and legends:  # one legend, under the panels, not over the curves
            handles = legends[-1].get_legend().legend_handles
            labels = [t.get_text() for t in legends[-1].get_legend().get_texts()]
            for ax in legends:
                ax.get_legend().remove()
            fig.legend(handles, labels, title="setting", loc="upper center", frameon=False,
                       bbox_to_anchor=(0.5, 0.0), ncol=2 if len(labels) > 3 else 1)
        _save(fig, path)
        plt.close(fig)


def final_by_key(summaries: pd.DataFrame, key: str, path: Path) -> None:
    import matplotlib.pyplot as plt
    import seaborn as sns

    metrics = [(c, n) for c, n in FINAL_METRICS if summaries[c].notna().any()] or [FINAL_METRICS[0]]
    data = summaries.copy()
    data[key] = data[key].map(lambda v: v if isinstance(v, str) else repr(v))
    try:  # numeric values in numeric order
        order = sorted(data[key].unique(), key=float)
    except ValueError:
        order = list(dict.fromkeys(data[key]))
    with sns.axes_style("whitegrid"):
        fig, axes = plt.subplots(1, len(metrics), figsize=(4.8 * len(metrics), 4.0), squeeze=False)
        for ax, (col, name) in zip(axes[0], metrics):
            sns.stripplot(data=data, x=key, y=col, order=order, color="0.55", size=5,
                          jitter=0.08, ax=ax)
            sns.pointplot(data=data, x=key, y=col, order=order, estimator="mean",
                          errorbar=interval_within(*RANGES[col]), capsize=0.15,
                          linestyle="none", ax=ax)
            ax.set_ylabel(name)
            ax.set_title(f"{name} by {key}\n(dots: trials; mean, 95% CI)")
        fig.tight_layout()
        _save(fig, path)
        plt.close(fig)


def draw_all(episodes: pd.DataFrame, summaries: pd.DataFrame, grid_keys: Sequence[str],
             order: Sequence[str], window: int, path_for) -> list[str]:
    """Draw every figure; ``path_for(name)`` gives where to write ``name``. Returns the names."""
    import matplotlib

    matplotlib.use("Agg")
    names = [SWEEP_LEARNING_CURVES]
    learning_curves(episodes, order, window, path_for(names[0]))
    for key in grid_keys:
        name = figure_name(key)
        final_by_key(summaries, key, path_for(name))
        names.append(name)
    return names
