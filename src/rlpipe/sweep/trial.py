"""One trial on a worker: unpack its folder, train, send changed files home after each checkpoint.

This is the body of the Ray task (see :mod:`rlpipe.sweep.driver`) but imports no Ray: the task
passes ``send(files, listing, appends) -> bool``, which delivers a snapshot to the driver's store
and returns False when the driver has moved on to a newer attempt of this trial.
"""
from __future__ import annotations

import os
import socket
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Mapping

from rlpipe.config import Params
from rlpipe.events import CheckpointSaved, RolloutEnd
from rlpipe.hooks.base import PERSIST, Hook
from rlpipe.sweep.files import Appends, ChangeTracker, Files, list_files, remove_tree, unpack
from rlpipe.sweep.objective import metric
from rlpipe.sweep.report import Report, ReportHook, TrialPruned

Send = Callable[[Files, list, Appends], bool]


SCRATCH_PREFIX = "rlpipe-trial-"  # <tmp>/rlpipe-trial-<pid>-<random>: a worker's copy of a trial


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale_scratch(tmp: str | os.PathLike | None = None) -> list[str]:
    """Delete scratch folders whose worker process is gone (a killed node or worker leaves its
    copy behind; the next trial on that machine clears it). Returns the names removed."""
    gone = []
    for p in Path(tmp or tempfile.gettempdir()).glob(SCRATCH_PREFIX + "*"):
        pid = p.name[len(SCRATCH_PREFIX):].split("-")[0]
        if pid.isdigit() and not _alive(int(pid)) and p.is_dir():
            remove_tree(p)
            gone.append(p.name)
    return gone


def scratch_folder() -> Path:
    remove_stale_scratch()
    return Path(tempfile.mkdtemp(prefix=f"{SCRATCH_PREFIX}{os.getpid()}-"))


class StaleAttempt(RuntimeError):
    """The driver no longer waits for this attempt (it started a newer one): stop training."""


class SyncHook(Hook):
    """After a rollout that saved a checkpoint, send the trial folder's changes to the driver.

    It runs after the checkpoint hook (``order``), itself after every recording hook, so what it
    sends holds the logs and captures up to the checkpoint's episode: a resume from it is exact.
    """

    order = PERSIST + 1

    def __init__(self, push: Callable[[], None]):
        self.push = push
        self.pending = False

    def on_checkpoint(self, saved: CheckpointSaved) -> None:
        self.pending = True

    def on_rollout_end(self, rollout: RolloutEnd) -> None:
        if self.pending:
            self.pending = False
            self.push()


class Uploader:
    """Sends what changed in ``root`` since the last send (the new bytes of a grown log, whole
    files otherwise); counts bytes and sends."""

    def __init__(self, root: Path, checkpoint_dir: str, send: Send):
        self.tracker = ChangeTracker(root, checkpoint_dir)
        self.send = send
        self.bytes_sent = 0
        self.sends = 0

    def push(self) -> None:
        files, listing, appends = self.tracker.changes()
        if not self.send(files, listing, appends):
            raise StaleAttempt("the driver started a newer attempt of this trial")
        self.bytes_sent += sum(len(d) for _, d in files) + sum(len(d) for _, _, d in appends)
        self.sends += 1


def run_trial(params_dict: Mapping[str, Any], files: Files, send: Send,
              node: Mapping[str, str] | None = None, report: Report | None = None,
              search: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Train one trial in a scratch folder seeded with ``files``; return how it went.

    ``search`` (``{"metric", "window", "every"}``, with ``report``) adds the hook of a search
    trial (:mod:`rlpipe.sweep.report`): a pruned trial ends early, ``exit_code`` None.

    Returns ``{"exit_code", "pruned_at", "node", "started_at" (epoch), "seconds", "bytes_in",
    "bytes_out", "sends"}``. Exceptions
    (a failed environment, a stale attempt) propagate: the driver counts them as a failed attempt.
    """
    from rlpipe.train.run import train

    started, started_at = time.monotonic(), time.time()
    params = Params.from_dict(dict(params_dict))
    root = scratch_folder()
    code, pruned_at = None, None
    try:
        unpack(root, files)
        uploader = Uploader(root, params.checkpoint.directory, send)
        uploader.tracker.mark_sent(list_files(root))
        hooks: list[Hook] = [SyncHook(uploader.push)]
        if search is not None and report is not None:
            hooks.append(ReportHook(metric(search["metric"]), int(search["window"]),
                                    int(search["every"]), report, uploader.push))
        try:
            code = int(train(params, root, extra_hooks=tuple(hooks), console=False))
        except TrialPruned as e:
            pruned_at = e.step
        uploader.push()  # the end of the run: last logs, run.json, final checkpoint
    finally:
        remove_tree(root)
    return {
        "exit_code": code, "pruned_at": pruned_at,
        "node": dict(node or {"hostname": socket.gethostname()}),
        "started_at": started_at, "seconds": time.monotonic() - started, "bytes_in": sum(len(d) for _, d in files),
        "bytes_out": uploader.bytes_sent, "sends": uploader.sends,
    }
