"""The training hook of a search trial: intermediate values to the driver, and the stop it answers.

At each evaluation point (the rollout end that saved a periodic checkpoint, or every
``sweep.report_every`` episodes) the hook takes the objective's metric over the last
``sweep.window`` episodes, appends ``(step, value)`` to ``reports.json`` in the trial folder (sent
home, so a driver that restarts knows every value a seed reported), and reports it to the
driver. The driver answers whether the trial has been pruned; if so the hook raises
:class:`TrialPruned`, which ends ``train()`` right after the checkpoint and files were sent home
(the trial stops with its checkpoint). Imports no Ray and no torch.
"""
from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from typing import Callable

from rlpipe.events import CheckpointSaved, EpisodeRecord, RolloutEnd, RunInfo
from rlpipe.hooks.base import PERSIST, Hook
from rlpipe.io_utils import atomic_write_text
from rlpipe.paths import SWEEP_TRIAL_REPORTS
from rlpipe.sweep.objective import Metric, last_window_mean

Report = Callable[[int, "float | None"], bool]   # (step, value) -> keep training?


class TrialPruned(RuntimeError):
    """The driver pruned this trial: stop training (not a failure)."""

    def __init__(self, step: int):
        super().__init__(f"pruned at episode {step}")
        self.step = step


def read_reports(folder: Path) -> dict[int, float | None]:
    """``reports.json`` of a trial folder: step -> value (empty when absent or unreadable)."""
    try:
        rows = json.loads((Path(folder) / SWEEP_TRIAL_REPORTS).read_text())
        return {int(step): (None if v is None else float(v)) for step, v in rows}
    except (OSError, ValueError, TypeError):
        return {}


def read_column(path: Path, column: str, upto: int = 2**62) -> list[float]:
    """A log's column for episodes <= ``upto`` (NaN where empty)."""
    out = []
    try:
        with open(path, newline="") as f:
            for row in csv.DictReader(f):
                try:
                    if int(row["Episode"]) > upto:
                        break
                    out.append(float(row.get(column) or "nan"))
                except (KeyError, ValueError):
                    out.append(math.nan)
    except OSError:
        pass
    return out


class ReportHook(Hook):
    """Reports the objective's metric at each evaluation point; stops the run when pruned.

    It runs after the sync hook (``order``): the checkpoint of the rollout end is home before
    the value is reported, so a trial pruned on this report stops with that checkpoint.
    """

    order = PERSIST + 2

    def __init__(self, metric: Metric, window: int, every: int, report: Report,
                 push: Callable[[], None]):
        self.metric, self.window, self.every = metric, window, every
        self.report, self.push = report, push
        self.values: list[float] = []
        self.reports: dict[int, float | None] = {}
        self.folder = Path(".")
        self.due = False

    def on_train_start(self, run: RunInfo) -> None:
        self.folder = Path(run.root)
        # a resumed run: the episodes so far come from its log (trimmed to the checkpoint)
        if run.start_episode:
            log = self.folder / run.params.experiment.directory / self.metric.file
            self.values = read_column(log, self.metric.column, run.start_episode)
        self.reports = {s: v for s, v in read_reports(self.folder).items()
                        if s <= run.start_episode}

    def on_episode_end(self, episode: EpisodeRecord) -> None:
        value = getattr(episode, self.metric.event_attr)
        self.values.append(math.nan if value is None else float(value))

    def on_checkpoint(self, saved: CheckpointSaved) -> None:
        if not saved.is_best and self.every == 0:
            self.due = True

    def on_rollout_end(self, rollout: RolloutEnd) -> None:
        ep = rollout.episode
        if self.every and (rollout.prev_episode // self.every < ep // self.every
                           or ep >= rollout.target_episodes):
            self.due = True
        if not self.due:
            return
        self.due = False
        value = last_window_mean(self.values[:ep], self.window)
        self.reports[ep] = value
        atomic_write_text(self.folder / SWEEP_TRIAL_REPORTS,
                          json.dumps(sorted(self.reports.items())) + "\n")
        self.push()
        if not self.report(ep, value):
            raise TrialPruned(ep)
