"""Figures of an Optuna study (``search: optuna``), drawn with matplotlib/seaborn like the others.

* ``study_history.png``: each trial's objective against its number (complete trials as dots,
  pruned ones as crosses at their last reported value) and the best value so far.
* ``param_importance.png``: Optuna's parameter importances (fANOVA) of the complete trials;
  a note instead when fewer than two trials completed.
"""
from __future__ import annotations

from rlpipe.paths import SWEEP_HISTORY, SWEEP_IMPORTANCE
from rlpipe.sweep.figures import FIGURE_DPI


def history_rows(study) -> list[tuple[int, float, str]]:
    from optuna.trial import TrialState

    rows = []
    for t in study.get_trials(deepcopy=False):
        if t.state == TrialState.COMPLETE:
            rows.append((t.number, float(t.value), "complete"))
        elif t.state == TrialState.PRUNED and t.intermediate_values:
            rows.append((t.number, float(t.intermediate_values[max(t.intermediate_values)]),
                         "pruned"))
    return rows


def draw_history(search, path) -> None:
    import matplotlib.pyplot as plt
    import seaborn as sns
    from matplotlib.ticker import MaxNLocator

    rows = history_rows(search.study)
    maximize = search.cfg.objective.direction == "maximize"
    with sns.axes_style("whitegrid"):
        fig, ax = plt.subplots(figsize=(6.4, 4.2))
        for state, marker, color in (("complete", "o", "C0"), ("pruned", "x", "C3")):
            pts = [(n, v) for n, v, s in rows if s == state]
            if pts:
                ax.scatter(*zip(*pts), marker=marker, color=color, s=40, zorder=3,
                           label=f"{state} ({len(pts)})")
        done = sorted((n, v) for n, v, s in rows if s == "complete")
        if done:
            best, xs, ys = None, [], []
            for n, v in done:
                best = v if best is None else (max(best, v) if maximize else min(best, v))
                xs.append(n)
                ys.append(best)
            ax.step(xs, ys, where="post", color="C2", label="best so far")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel("trial number")
        ax.set_ylabel(f"{search.metric.label} (mean of {len(search.cfg.seeds)} seeds)")
        ax.set_title(f"Study history: {search.cfg.objective.direction} {search.metric.name}\n"
                     "(pruned: last value reported)")
        if rows:
            ax.legend(loc="best")
        fig.tight_layout()
        fig.savefig(path, dpi=FIGURE_DPI, format="png", bbox_inches="tight")
        plt.close(fig)


def draw_importance(search, path) -> None:
    import matplotlib.pyplot as plt
    import optuna
    import seaborn as sns
    from optuna.trial import TrialState

    complete = search.study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    importances = {}
    if len(complete) >= 2:
        try:
            importances = optuna.importance.get_param_importances(search.study)
        except (RuntimeError, ValueError):  # e.g. every complete trial had the same value
            importances = {}
    with sns.axes_style("whitegrid"):
        fig, ax = plt.subplots(figsize=(6.4, 0.6 * max(2, len(search.cfg.space)) + 1.6))
        if importances:
            names = list(importances)[::-1]
            bars = ax.barh(names, [importances[n] for n in names], color="C0", height=0.6)
            ax.bar_label(bars, fmt="%.2f", padding=3)
            ax.set_xlim(0, 1)
            ax.set_xlabel("importance (fANOVA, share of the objective's variance)")
        else:
            ax.text(0.5, 0.5, f"{len(complete)} complete trial(s): at least 2 with different "
                    "values are needed", ha="center", va="center", transform=ax.transAxes)
            ax.set_axis_off()
        ax.set_title(f"Parameter importance for {search.metric.name} "
                     f"({len(complete)} complete trials)")
        fig.tight_layout()
        fig.savefig(path, dpi=FIGURE_DPI, format="png", bbox_inches="tight")
        plt.close(fig)


def draw_study(search, path_for) -> list[str]:
    draw_history(search, path_for(SWEEP_HISTORY))
    draw_importance(search, path_for(SWEEP_IMPORTANCE))
    return [SWEEP_HISTORY, SWEEP_IMPORTANCE]
