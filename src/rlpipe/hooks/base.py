"""The hook interface: hooks receive the typed events of :mod:`rlpipe.events`, never the trainer.

Order: hooks run in ascending :attr:`Hook.order`, stable among equals. The one ordering that
matters is declared here, once: at a rollout end every hook that *records* (logs, metrics,
captures; ``RECORD``) finishes before the checkpoint hook *persists* (``PERSIST``), because a
checkpoint must never cover rows or captures that are not yet on disk - a resume trims every log
to the checkpoint's episode and could not restore what was never written. Display hooks
(``DISPLAY``) run last so that the progress bar reflects what was recorded.
"""
from __future__ import annotations

from typing import Any, Iterable, Sequence

from rlpipe.events import (CheckpointSaved, EpisodeRecord, EvalRecord, RolloutEnd, RunInfo,
                           RunResult, UpdateRecord)

RECORD, PERSIST, DISPLAY = 0, 100, 200


class Hook:
    """Base class: every event is a no-op; override what you need.

    ``on_rollout_end`` may return follow-up events (``CheckpointSaved``); the hook list sends
    them to every hook's ``on_checkpoint``.
    """

    order = RECORD

    def on_train_start(self, run: RunInfo) -> None: ...
    def on_episode_end(self, episode: EpisodeRecord) -> None: ...
    def on_update(self, update: UpdateRecord) -> None: ...
    def on_evaluation(self, evaluation: EvalRecord) -> None: ...
    def on_rollout_end(self, rollout: RolloutEnd) -> Iterable[CheckpointSaved] | None: ...
    def on_checkpoint(self, saved: CheckpointSaved) -> None: ...
    def on_warning(self, message: str) -> None: ...
    def on_interrupt(self, run: RunInfo, reason: str) -> None: ...
    def on_train_end(self, run: RunInfo, result: RunResult) -> None: ...
    def close(self) -> None: ...


class HookList(Hook):
    """Dispatches each event to its hooks in :attr:`Hook.order`; the trainer holds one."""

    def __init__(self, hooks: Sequence[Hook] = ()):
        self.hooks = list(hooks)

    @property
    def hooks(self) -> list[Hook]:
        return self._hooks

    @hooks.setter
    def hooks(self, hooks: Sequence[Hook]) -> None:
        self._hooks = sorted(hooks, key=lambda h: h.order)

    def _call(self, hook: Hook, name: str, *args: Any) -> Any:
        """One hook's handler for one event (the one place a handler is called)."""
        return getattr(hook, name)(*args)

    def _emit(self, name: str, *args: Any) -> None:
        for h in self._hooks:
            self._call(h, name, *args)

    def on_train_start(self, run): self._emit("on_train_start", run)
    def on_episode_end(self, episode): self._emit("on_episode_end", episode)
    def on_update(self, update): self._emit("on_update", update)
    def on_evaluation(self, evaluation): self._emit("on_evaluation", evaluation)
    def on_checkpoint(self, saved): self._emit("on_checkpoint", saved)
    def on_warning(self, message): self._emit("on_warning", message)
    def on_interrupt(self, run, reason): self._emit("on_interrupt", run, reason)
    def on_train_end(self, run, result): self._emit("on_train_end", run, result)

    def on_rollout_end(self, rollout: RolloutEnd) -> None:
        for h in self._hooks:
            for saved in self._call(h, "on_rollout_end", rollout) or ():
                self.on_checkpoint(saved)

    def close(self) -> None:
        for h in self._hooks:
            h.close()
