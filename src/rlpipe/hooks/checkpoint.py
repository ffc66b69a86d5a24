"""The checkpoint hook: periodic checkpoints, the best model, and a final checkpoint."""
from __future__ import annotations

import json
import logging
import os
import shutil
from pathlib import Path

from rlpipe import checkpoints as ckpt
from rlpipe.events import CheckpointSaved, RolloutEnd, RunInfo
from rlpipe.hooks.base import PERSIST, Hook


class CheckpointHook(Hook):
    """Saves at every ``interval`` episodes (first rollout end at or past each multiple), at the
    end of the run and when a stop is requested; keeps the newest ``keep_last``; writes
    ``best.pt`` whenever the mean episode reward improves.

    ``interval`` ``'auto'`` means 10 checkpoints per run (in the budget's unit: episodes, or
    environment steps with ``train.total_steps``); ``<= 0`` turns periodic, final and
    stop checkpoints off (``best.pt`` is still written), so a stopped run then resumes from its
    last periodic checkpoint, or starts afresh; the text log says so once, at the start.
    ``best.pt`` follows ``store_separately`` (then it is the folder ``best/``).
    """

    order = PERSIST  # after every hook that records what the checkpoint covers (hooks.base)

    def __init__(self, directory: Path, interval: int | str, keep_last: int, store_separately: bool):
        self.directory = Path(directory)
        self.interval_setting = interval
        self.keep_last = keep_last
        self.separate = store_separately

    def on_train_start(self, run: RunInfo) -> None:
        self.run = run
        self.schedule = run.run_budget.interval(self.interval_setting, 10)
        self.interval = self.schedule.every
        self.params_json = json.dumps(run.params.to_dict(), sort_keys=True)
        if self.interval == 0:
            logging.getLogger("rlpipe").warning(
                "checkpoint.interval %s <= 0: no periodic, final or stop checkpoints, only %s "
                "(the best model); a stopped run resumes from an older checkpoint or starts afresh",
                self.interval_setting, ckpt.best_name(self.separate))

    def _state(self, rollout: RolloutEnd) -> dict:
        state = rollout.snapshot()
        state["fingerprint"] = self.run.fingerprint
        state["params"] = self.params_json
        return state

    def _saved(self, path: Path, episode: int, is_best: bool, reward: float,
               best_by: str = "mean episode reward") -> CheckpointSaved:
        return CheckpointSaved(os.path.relpath(path, self.run.root), episode, is_best, reward,
                               best_by)

    def on_rollout_end(self, rollout: RolloutEnd) -> list[CheckpointSaved]:
        ep, prev = rollout.episode, rollout.prev_episode
        due = self.interval > 0 and (
            self.schedule.crossed(prev, ep, rollout.prev_global_step, rollout.global_step)
            or rollout.final
            or rollout.stop_requested
        )
        saved, state = [], None
        if due:
            state = self._state(rollout)
            path = ckpt.save_checkpoint(state, self.directory / ckpt.checkpoint_name(ep, self.separate),
                                        self.separate)
            ckpt.prune(self.directory, self.keep_last)
            saved.append(self._saved(path, ep, False, rollout.mean_episode_reward))
        if rollout.best_improved:
            state = state or self._state(rollout)
            path = ckpt.save_checkpoint(state, self.directory / ckpt.best_name(self.separate),
                                        self.separate)
            other = self.directory / ckpt.best_name(not self.separate)  # of an earlier setting
            if other.is_dir():
                shutil.rmtree(other)
            else:
                other.unlink(missing_ok=True)
            saved.append(self._saved(path, ep, True, rollout.best_mean_reward, rollout.best_by))
        return saved
