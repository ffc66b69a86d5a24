"""The text log hook: timestamped events in ``agent_training.log`` and on the console."""
from __future__ import annotations

import logging
import sys
import time
from pathlib import Path

from rlpipe.events import CheckpointSaved, EvalRecord, RunInfo, RunResult
from rlpipe.hooks.base import Hook

LOGGER_NAME = "rlpipe"
FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class _LogFile(logging.FileHandler):
    """The log file: a failed write (a full disk) is reported once, in one line, not as the
    traceback that ``logging`` prints for every record."""

    failed = False

    def handleError(self, record: logging.LogRecord) -> None:
        if not self.failed:
            self.failed = True
            sys.stderr.write(f"warning: cannot write {self.baseFilename}: {sys.exc_info()[1]}\n")


class _Console(logging.StreamHandler):
    """Console lines written through tqdm: an open progress bar is cleared first and redrawn below
    the line, so that a log line never lands on the end of the bar's line."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            from tqdm import tqdm

            tqdm.write(self.format(record), file=self.stream)
            self.flush()
        except Exception:  # noqa: BLE001 - logging's own policy: report, never raise
            self.handleError(record)


class TextLogHook(Hook):
    """Appends events (start, resume, checkpoint, new best, warnings, stop, finish) via ``logging``."""

    def __init__(self, path: Path, console: bool = True):
        self.path = Path(path)
        self.logger = logging.getLogger(LOGGER_NAME)
        self.logger.setLevel(logging.INFO)
        self.logger.propagate = False
        self.handlers: list[logging.Handler] = []
        self.console = console

    def on_train_start(self, run: RunInfo) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fh = _LogFile(self.path, mode="a", encoding="utf-8")
        fh.setFormatter(logging.Formatter(FORMAT))
        self.handlers.append(fh)
        if self.console:
            ch = _Console(sys.stderr)
            ch.setFormatter(logging.Formatter("%(levelname)s: %(message)s"))
            self.handlers.append(ch)
        for h in self.handlers:
            self.logger.addHandler(h)
        self.started = time.monotonic()
        p = run.params
        for note in run.notes:
            self.logger.warning(note)
        if run.restart_reason:
            self.logger.warning("not resuming: %s; starting a fresh run", run.restart_reason)
        if run.resumed_from:
            self.logger.info("resumed from %s at episode %d (target %s)",
                             run.resumed_from, run.start_episode, run.run_budget.describe())
        else:
            self.logger.info("run start: %s on %s, %s, %d envs, seed %d; params digest %s, "
                             "fingerprint %s", p.train.algo.upper(), p.env.id, run.run_budget.describe(),
                             p.train.num_envs, p.train.seed, run.params_digest, run.fingerprint)
        self.logger.info("device: %s (train.device: %s); observation normalization %s", run.device,
                         p.train.device, "on" if run.normalize_observations else "off")

    def note(self, message: str) -> None:
        self.logger.info(message)

    def on_evaluation(self, ev: EvalRecord) -> None:
        acc = "" if ev.accuracy is None else f", reference accuracy {ev.accuracy:.3f}"
        self.logger.info("evaluation at episode %d: mean return %.4f ± %.3g over %d greedy "
                         "episodes%s; best %.4f%s", ev.episode, ev.mean_return, ev.sd_return,
                         ev.episodes, acc, ev.best_return,
                         "; train.stop_at reached, stopping" if ev.stop else "")

    def on_checkpoint(self, info: CheckpointSaved) -> None:
        if info.is_best:
            self.logger.info("new best %s %.4f at episode %d (%s)",
                             info.best_by, info.mean_reward, info.episode, info.path)
        else:
            self.logger.info("checkpoint saved: %s (episode %d)", info.path, info.episode)

    def on_warning(self, message: str) -> None:
        self.logger.warning(message)

    def on_interrupt(self, run: RunInfo, reason: str) -> None:
        self.logger.warning("training stopped early (%s); resume by running the train stage again", reason)

    def on_train_end(self, run: RunInfo, result: RunResult) -> None:
        self.logger.info("finished: %d episodes, %d steps, %d updates, best mean reward %.4f, %.1f s",
                         result.episodes, result.global_step, result.updates,
                         result.best_mean_reward, time.monotonic() - self.started)

    def close(self) -> None:
        for h in self.handlers:
            self.logger.removeHandler(h)
            h.close()
        self.handlers = []
