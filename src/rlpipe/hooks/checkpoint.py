"""The checkpoint hook: periodic checkpoints, the best model, and a final checkpoint."""
from __future__ import annotations

import json
import os
from pathlib import Path

from rlpipe.hooks.base import CheckpointInfo, Hook, RunInfo
from rlpipe.train import checkpoint as ckpt


def resolve_interval(setting: int | str, episodes: int) -> int:
    """'auto' -> 10 checkpoints per run; <= 0 -> 0 (off)."""
    if setting == "auto":
        return max(1, episodes // 10)
    return max(0, int(setting))


class CheckpointHook(Hook):
    """Saves at every ``interval`` episodes (first rollout end at or past each multiple), at the
    end of the run and when a stop is requested; keeps the newest ``keep_last``; writes
    ``best.pt`` whenever the mean episode reward improves."""

    def __init__(self, directory: Path, interval: int | str, keep_last: int, store_separately: bool):
        self.directory = Path(directory)
        self.interval_setting = interval
        self.keep_last = keep_last
        self.separate = store_separately

    def on_train_start(self, run: RunInfo) -> None:
        self.run = run
        self.root = run.root
        self.interval = resolve_interval(self.interval_setting, run.target_episodes)
        self.params_json = json.dumps(run.params.to_dict(), sort_keys=True)

    def _state(self, trainer) -> dict:
        state = trainer.state_dict()
        state["fingerprint"] = self.run.fingerprint
        state["params"] = self.params_json
        return state

    def on_rollout_end(self, trainer) -> None:
        ep, prev = trainer.episode, trainer.prev_episode
        due = self.interval > 0 and (
            prev // self.interval < ep // self.interval
            or ep >= trainer.target_episodes
            or trainer.stop_reason is not None
        )
        state = None
        if due:
            state = self._state(trainer)
            path = ckpt.save_checkpoint(state, self.directory / ckpt.checkpoint_name(ep, self.separate),
                                        self.separate)
            ckpt.prune(self.directory, self.keep_last)
            trainer.hooks.on_checkpoint(CheckpointInfo(os.path.relpath(path, self.root), ep, False, trainer.mean_episode_reward))
        if trainer.best_improved:
            state = state or self._state(trainer)
            path = ckpt.save_checkpoint(state, self.directory / ckpt.BEST)
            trainer.hooks.on_checkpoint(CheckpointInfo(os.path.relpath(path, self.root), ep, True, trainer.best_mean_reward))
