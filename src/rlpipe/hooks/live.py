"""The live hook: progress of a running train stage for `dvc exp show` and `dvc plots show`.

``summarize`` writes ``metrics.json`` and the plot series after training; during a long run the
DVC tools (and the VS Code extension) would show nothing. This hook keeps, in ``live/`` at the
repository root (``rlpipe.paths``; dvc.yaml declares them as outputs of the train stage,
``cache: false``, git-tracked):

- ``metrics.json``: the run's position and its latest numbers (numbers only, contract in
  docs/FILES.md), for ``dvc exp show`` / ``dvc metrics show``;
- ``reward.csv`` (``Episode,Cumulative Reward,Mean Episode Reward``) and ``losses.csv``
  (``Update,Episode`` then the statistics with a ``summary`` in :mod:`rlpipe.statistics`:
  ``Actor Loss,Critic Loss,Policy Entropy``), for ``dvc plots show``.

All three are rewritten atomically after every rollout (``RECORD``: before a checkpoint covers
it), without fsync (a kill never tears them; they hold nothing the logs do not, and the next
rollout rewrites them). Each series holds at most :data:`MAX_POINTS` rows: the rows whose key
(episode, update) is a multiple of a power-of-two stride, plus the newest; the stride doubles as
the run grows, so the cost of a rewrite stays bounded. A resume keeps the rows up to the
checkpoint's episode.
"""
from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from typing import Sequence

from rlpipe.events import EpisodeRecord, EvalRecord, RolloutEnd, RunInfo, UpdateRecord
from rlpipe.hooks.base import Hook
from rlpipe.hooks.writers import format_cell
from rlpipe.io_utils import atomic_write_text
from rlpipe.paths import LIVE_LOSSES, LIVE_METRICS, LIVE_REWARD
from rlpipe.statistics import BY_KEY, COLUMN, SUMMARY_KEYS, performance_keys

MAX_POINTS = 1000
REWARD_COLUMNS = tuple(COLUMN[k] for k in ("episode", "total_reward", "mean_episode_reward"))
LOSS_COLUMNS = tuple(COLUMN[k] for k in ("update", "episode", *SUMMARY_KEYS))


def stride_for(last_key: int, max_points: int) -> int:
    """The smallest power of two ``s`` with ``ceil(last_key / s) <= max_points``."""
    s = 1
    while -(-last_key // s) > max_points:
        s *= 2
    return s


class LiveSeries:
    """A CSV series keyed by consecutive integers (column 0), thinned to at most ``max_points``
    rows: keys on the grid of :func:`stride_for` plus the newest row (a function of the rows so
    far only, so a resumed series equals an uninterrupted one)."""

    def __init__(self, path: Path, columns: Sequence[str], episode_column: str, max_points: int):
        self.path = Path(path)
        self.columns = tuple(columns)
        self.episode_index = self.columns.index(episode_column)
        self.max_points = max_points
        self.rows: list[tuple] = []
        self.lines: list[str] = []  # the rows as CSV lines, kept beside them (rendered once)
        self.stride = 1

    def load(self, keep_through: int) -> None:
        """Read the file and keep the rows of episodes <= ``keep_through`` (a resume)."""
        self._set([])
        self.stride = 1
        try:
            with open(self.path, newline="") as f:
                lines = list(csv.reader(f))
        except (OSError, UnicodeDecodeError, csv.Error):
            return
        if not lines or tuple(lines[0]) != self.columns:
            return
        rows = []
        for cells in lines[1:]:
            try:
                key, episode = int(cells[0]), int(cells[self.episode_index])
            except (ValueError, IndexError):
                continue
            if episode <= keep_through and len(cells) == len(self.columns):
                rows.append((key, *cells[1:]))
        if rows:
            self.stride = stride_for(rows[-1][0], self.max_points)
            self._set([r for r in rows[:-1] if r[0] % self.stride == 0] + [rows[-1]])

    def _set(self, rows: list[tuple]) -> None:
        self.rows = rows
        self.lines = [_line(r) for r in rows]

    def add(self, row: tuple) -> None:
        if self.rows and self.rows[-1][0] % self.stride:
            self.rows.pop()  # the previous newest row, off the grid
            self.lines.pop()
        self.rows.append(row)
        self.lines.append(_line(row))
        while len(self.rows) > self.max_points:
            self.stride *= 2
            keep = [i for i, r in enumerate(self.rows[:-1]) if r[0] % self.stride == 0]
            keep.append(len(self.rows) - 1)
            self.rows = [self.rows[i] for i in keep]
            self.lines = [self.lines[i] for i in keep]

    def text(self) -> str:
        return ",".join(self.columns) + "\n" + "".join(self.lines)


def _line(row: tuple) -> str:
    """A CSV line: cells as in the logs (``format_cell``); cells read back from a file as they are."""
    return ",".join(v if isinstance(v, str) else format_cell(v) for v in row) + "\n"


def _finite(value) -> float | None:
    return float(value) if value is not None and math.isfinite(value) else None


def _mean(values: list[float]) -> float | None:
    values = [v for v in values if v is not None and math.isfinite(v)]
    return math.fsum(values) / len(values) if values else None


class LiveHook(Hook):
    """Writes ``live/metrics.json``, ``live/reward.csv`` and ``live/losses.csv`` under ``root``."""

    def __init__(self, root: Path, max_points: int = MAX_POINTS):
        self.root = Path(root)
        episode = COLUMN["episode"]
        self.reward = LiveSeries(self.root / LIVE_REWARD, REWARD_COLUMNS, episode, max_points)
        self.losses = LiveSeries(self.root / LIVE_LOSSES, LOSS_COLUMNS, episode, max_points)

    def on_train_start(self, run: RunInfo) -> None:
        self.metric_names = list(run.env.metric_names)
        self.episodes: list[EpisodeRecord] = []
        self.last_update: UpdateRecord | None = None
        self.last_eval: EvalRecord | None = None
        if run.start_episode:
            self.reward.load(run.start_episode)
            self.losses.load(run.start_episode)
        budget = run.run_budget
        self.target_key = "target_steps" if budget.unit == "steps" else "target_episodes"
        self.target = budget.total
        self._write({"episode": run.start_episode, self.target_key: self.target,
                     "progress": budget.progress(run.start_episode, run.start_global_step)})

    def on_episode_end(self, ep: EpisodeRecord) -> None:
        self.episodes.append(ep)
        self.reward.add((ep.episode, ep.total_reward, ep.mean_episode_reward))

    def on_update(self, up: UpdateRecord) -> None:
        self.last_update = up
        self.losses.add((up.update, up.episode, *(up.stats.get(k) for k in SUMMARY_KEYS)))

    def on_evaluation(self, ev: EvalRecord) -> None:
        self.last_eval = ev

    def on_rollout_end(self, rollout: RolloutEnd) -> None:
        eps, self.episodes = self.episodes, []
        metrics: dict = {
            "episode": rollout.episode, self.target_key: self.target,
            "progress": rollout.progress,
            "update": rollout.update, "global_step": rollout.global_step,
            "reward": {"last": _mean([e.total_reward for e in eps]),
                       "mean": _finite(rollout.mean_episode_reward),
                       "best_mean": _finite(rollout.best_mean_reward)},
            "accuracy": _mean([e.accuracy for e in eps]),
        }
        if self.last_update is not None:
            for key in SUMMARY_KEYS:  # e.g. loss.actor
                group, name = BY_KEY[key].summary.split(".")
                metrics.setdefault(group, {})[name] = _finite(self.last_update.stats.get(key))
        for e in eps:  # metrics an environment reports without declaring them
            self.metric_names += [n for n in e.metrics if n not in self.metric_names]
        metrics["performance"] = {key: _mean([e.metrics.get(name) for e in eps])
                                  for name, key in performance_keys(self.metric_names).items()}
        if self.last_eval is not None:  # the newest evaluation during training
            ev = self.last_eval
            metrics["eval"] = {"episode": ev.episode, "mean_return": _finite(ev.mean_return),
                               "best_return": _finite(ev.best_return), "accuracy": ev.accuracy}
        self._write(metrics)

    def _write(self, metrics: dict) -> None:
        atomic_write_text(self.root / LIVE_REWARD, self.reward.text(), durable=False)
        atomic_write_text(self.root / LIVE_LOSSES, self.losses.text(), durable=False)
        atomic_write_text(self.root / LIVE_METRICS, json.dumps(_clean(metrics), indent=1) + "\n",
                          durable=False)


def _clean(d: dict) -> dict:
    """Numbers only: drop None values and groups left empty."""
    out = {}
    for k, v in d.items():
        if isinstance(v, dict):
            v = _clean(v)
            if v:
                out[k] = v
        elif v is not None:
            out[k] = v
    return out
