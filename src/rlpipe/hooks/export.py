"""The rollout export hook: every N-th update's transitions to a file (``experiment.export_rollouts``).

Format and loader: :mod:`rlpipe.exports` (contract in docs/FILES.md). Files are written at the
rollout end (``RECORD``, before a checkpoint can cover them) and removed past the resumed
checkpoint at the start, like the logs. With the export off (0) the trainer never builds the
rollout's arrays; the hook still removes the exports past the start of a fresh or resumed run.
"""
from __future__ import annotations

import logging
from pathlib import Path

from rlpipe import exports
from rlpipe.events import RolloutEnd, RunInfo
from rlpipe.hooks.base import Hook


class RolloutExportHook(Hook):
    """Writes ``rollout_epXXXXXX.{parquet,npz}`` after every ``every``-th policy update (0: never)."""

    def __init__(self, directory: Path, every: int):
        self.directory = Path(directory)
        self.every = every

    def on_train_start(self, run: RunInfo) -> None:
        removed = exports.trim_rollouts(self.directory, run.start_episode)
        if removed:
            logging.getLogger("rlpipe").info("resume: removed %d rollout exports past episode %d",
                                             removed, run.start_episode)

    def on_rollout_end(self, rollout: RolloutEnd) -> None:
        if self.every > 0 and rollout.data is not None and rollout.update % self.every == 0:
            exports.write_rollout(self.directory, rollout.data(), rollout.episode)
