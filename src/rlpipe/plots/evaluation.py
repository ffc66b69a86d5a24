"""The evaluation figure: variants x policies (checkpoints and baselines), mean ± sd over the
held-out episodes of ``eval/episodes.csv`` (the evaluate stage); and the evaluation-during-training
curve of the reward figure (``training_output/eval.csv``)."""
from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from rlpipe.statistics import EVAL_EPISODE_COLUMNS
from rlpipe.plots.render import FigureUnavailable, new_figure
from rlpipe.plots.style import kind_colors

ACCURACY_COLUMN = "Reference Accuracy"   # rlpipe.evaluation.report.ACCURACY_COLUMN
PRODUCER = "run `dvc repro evaluate`"


def _float(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        return math.nan


def read_eval_episodes(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    """(columns, rows) of eval/episodes.csv; FigureUnavailable when missing or malformed."""
    if not path.exists():
        raise FigureUnavailable(f"no {path.as_posix()} ({PRODUCER})")
    try:
        with open(path, newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            rows = list(reader)
            columns = list(reader.fieldnames or [])
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise FigureUnavailable(f"cannot read {path.as_posix()}: {e}") from None
    missing = [c for c in EVAL_EPISODE_COLUMNS if c not in columns]
    if missing:
        raise FigureUnavailable(f"{path.as_posix()} lacks the columns {', '.join(missing)}")
    if not rows:
        raise FigureUnavailable(f"{path.as_posix()} has no rows")
    return columns, rows


def _grouped(rows, column: str) -> tuple[list[str], list[str], dict]:
    variants, policies, values = [], [], {}
    for r in rows:
        v, p = r["Variant"], r["Policy"]
        variants += [v] if v not in variants else []
        policies += [p] if p not in policies else []
        values.setdefault((v, p), []).append(_float(r.get(column, "")))
    return variants, policies, values


def evaluation_figure(path: Path) -> Figure:
    columns, rows = read_eval_episodes(path)
    panels = [("Return", "return per episode (sum of rewards)")]
    if ACCURACY_COLUMN in columns:
        panels.append((ACCURACY_COLUMN, "reference accuracy (0..1)"))
    fig = new_figure(4.0 + 3.2 * len(panels), 4.5)
    axes = np.atleast_1d(fig.subplots(1, len(panels)))
    for ax, (column, label) in zip(axes, panels):
        variants, policies, values = _grouped(rows, column)
        colors = kind_colors(len(policies))
        width = 0.8 / len(policies)
        x = np.arange(len(variants))
        for k, policy in enumerate(policies):
            means, sds = [], []
            for v in variants:
                a = np.asarray(values.get((v, policy), []), dtype=np.float64)
                a = a[np.isfinite(a)]
                means.append(a.mean() if a.size else math.nan)
                sds.append(a.std(ddof=1) if a.size > 1 else 0.0)
            ax.bar(x + (k - (len(policies) - 1) / 2) * width, means, width, yerr=sds, capsize=3,
                   color=colors[k], label=policy)
        ax.set_xticks(x, variants)
        ax.set_xlabel("variant (evaluate.variants)")
        ax.set_ylabel(label)
    n = max(len(values[key]) for key in values)
    axes[0].legend(loc="best", fontsize=8, title="policy")
    fig.suptitle(f"Held-out evaluation: mean ± sd over {n} episodes per bar")
    return fig


def read_training_evaluations(path: Path, note=lambda message: None):
    """(episode, mean return, sd) arrays of training_output/eval.csv (evaluation during
    training), or None when the file is missing or unreadable (a note says so)."""
    if not path.exists():
        return None
    try:
        with open(path, newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
        cols = [np.asarray([_float(r.get(c) or "") for r in rows], dtype=np.float64)
                for c in ("Episode", "Mean Return", "Return SD")]
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        note(f"{path.as_posix()}: cannot read ({e}); the reward figure shows no evaluations")
        return None
    keep = np.isfinite(cols[0]) & np.isfinite(cols[1])
    return cols[0][keep], cols[1][keep], np.nan_to_num(cols[2][keep])
