"""Schedule trials as Ray tasks, retry failed attempts, record every attempt in ``trial.json``.

Why Ray tasks and not Ray Tune: a trial here is a whole training run that resumes from its own
checkpoints and must end bit-identical to an uninterrupted run, and there is no search algorithm
or early stopping to drive (the grid is fixed). Tune would add its own trial folders, checkpoint
syncing (which since Ray 2.7 needs storage shared by all nodes) and result reporting around a
function that already does all of that; tasks keep one path for files (trials send them to the
driver) and let the driver decide retries.

Each attempt of a trial is one task (``max_retries=0``: Ray never reruns it on its own): the
driver declares the attempt to the store, packs the trial folder (empty for a new trial;
checkpoints and logs for a resumed one) and sends it with the task. The task trains in a scratch
folder and sends its changes to the store after every checkpoint and at the end. A failed attempt
(an exception, a non-zero exit, a dead worker or node) is retried from what the store holds,
``sweep.max_retries`` times; then the trial is reported failed and the others go on.
"""
from __future__ import annotations

import socket
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Protocol

from rlpipe.config import SweepConfig, fingerprint
from rlpipe.sweep import records
from rlpipe.sweep.cluster import Cluster, ClusterError
from rlpipe.sweep.files import Appends, Files, read_files
from rlpipe.sweep.grid import Trial

Say = Callable[[str], None]


@dataclass
class Outcome:
    """How a trial ended in this sweep run."""

    trial: Trial
    status: str = "pending"             # finished | failed | pruned
    attempts: list[dict] = field(default_factory=list)  # this run's attempts (also in trial.json)
    error: str | None = None            # the last attempt's error


def _trial_task(params_dict: dict, files: Files, store: Any, trial_id: str,
                attempt: int, search: dict | None = None) -> dict:
    """The Ray task: one attempt of one trial on whichever node Ray picked."""
    import ray

    from rlpipe.sweep.trial import StaleAttempt, run_trial

    node = {"node_id": ray.get_runtime_context().get_node_id(),
            "ip": ray.util.get_node_ip_address(), "hostname": socket.gethostname()}

    def send(changed: Files, listing: list, appends: Appends) -> bool:
        return ray.get(store.put.remote(trial_id, attempt, changed, listing, appends))

    def report(step: int, value: float | None) -> bool:
        answer = ray.get(store.report.remote(trial_id, attempt, step, value))
        if answer == "stale":
            raise StaleAttempt("the driver started a newer attempt of this trial")
        return answer == "go"

    if not ray.get(store.started.remote(trial_id, attempt, node)):
        raise StaleAttempt("the driver started a newer attempt of this trial")
    return run_trial(params_dict, files, send, node, report, search)


class Feed(Protocol):
    """Where a search's trials come from (:class:`rlpipe.sweep.search.Search`)."""

    search: dict                       # run_trial's ``search`` argument
    width: int                         # trials per setting (seeds): asked when that many CPUs are free

    def more(self) -> list[Trial]: ...                     # trials to queue now ([]: none)
    def on_reports(self, reports: list) -> set[str]: ...   # -> trial ids to stop (pruned)
    def on_outcome(self, outcome: "Outcome") -> None: ...  # a trial ended (not retrying)


POLL_S = 0.25  # a search's driver reads the trials' reports this often


def _first_sentence(text: str, limit: int = 200) -> str:
    line = text.strip().splitlines()[0] if text.strip() else ""
    if len(line) > limit and ". " in line:
        line = line[:line.index(". ") + 1]
    return line


def describe_error(exc: BaseException) -> str:
    """One line for a failed attempt: the trial's own exception, or what happened to its worker."""
    import ray

    if isinstance(exc, ray.exceptions.RayTaskError):
        cause = getattr(exc, "cause", None)
        if cause is not None and not isinstance(cause, ray.exceptions.RayTaskError):
            exc = cause
    return f"{type(exc).__name__}: {_first_sentence(str(exc))}".rstrip(": ")


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _node_text(node: dict | None) -> str:
    if not node:
        return "?"
    return node.get("ip") or node.get("hostname") or "?"


class Driver:
    """Runs ``trials`` on the connected Ray cluster; :meth:`run` returns their outcomes."""

    def __init__(self, trials: list[Trial], trials_dir: Path, cfg: SweepConfig, cluster: Cluster,
                 say: Say, feed: Feed | None = None):
        import ray
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        from rlpipe.sweep.store import TrialStore

        self.ray = ray
        self.trials = trials
        self.trials_dir = Path(trials_dir)
        self.cfg = cfg
        self.say = say
        self.task = ray.remote(_trial_task).options(
            num_cpus=cfg.cpus_per_trial, max_retries=0, scheduling_strategy="SPREAD")
        # on the driver's node: it writes this machine's trial folders; it reserves no CPU
        self.store = ray.remote(TrialStore).options(
            num_cpus=0, max_restarts=0, scheduling_strategy=NodeAffinitySchedulingStrategy(
                cluster.driver_node_id, soft=False)).remote(str(self.trials_dir.resolve()))
        self.feed = feed
        self.outcomes: dict[str, Outcome] = {}
        self.history: dict[str, list[dict]] = {}
        self._add(trials)
        self.done = 0

    def _add(self, trials: list[Trial]) -> None:
        for t in trials:
            self.outcomes[t.trial_id] = Outcome(t)
            self.history[t.trial_id] = records.past_attempts(self.trials_dir, t)

    def _store(self, method: str, *args: Any) -> Any:
        try:
            return self.ray.get(getattr(self.store, method).remote(*args))
        except self.ray.exceptions.RayError as e:
            raise ClusterError(f"the trial store on this machine failed: {describe_error(e)}") from None

    def _limit(self) -> int:
        """Trials in flight: sweep.max_concurrent, or (0) as many as the alive CPUs take now;
        a trial's folder is packed when it is submitted, so few wait packed in a queue."""
        if self.cfg.max_concurrent:
            return self.cfg.max_concurrent
        cpus = float(self.ray.cluster_resources().get("CPU", 0.0))
        return max(1, int(cpus // self.cfg.cpus_per_trial))

    def _submit(self, trial: Trial) -> Any:
        tid = trial.trial_id
        attempt = len(self.history[tid]) + 1
        self._store("begin", tid, attempt)  # older attempts are refused from now
        folder = records.trial_dir(self.trials_dir, trial)
        folder.mkdir(parents=True, exist_ok=True)
        files = read_files(folder, trial.params.checkpoint.directory)
        self.history[tid].append({"attempt": attempt, "outcome": "running", "started": _now()})
        records.write_meta(self.trials_dir, trial, "running", self.history[tid])
        ref = self.task.remote(trial.params.to_dict(), files, self.store, tid, attempt,
                               self.feed.search if self.feed else None)
        return ref, attempt, time.monotonic()

    def _finish_attempt(self, trial: Trial, attempt: int, started: float, result: dict | None,
                        error: str | None) -> None:
        tid = trial.trial_id
        pruned_at = (result or {}).get("pruned_at")
        if error is None and result is not None and pruned_at is None and result["exit_code"] != 0:
            error = f"train exited with status {result['exit_code']}"
        if error is None and pruned_at is None:
            run = records.read_json(records.run_json_path(self.trials_dir, trial))
            if run.get("fingerprint") != fingerprint(trial.params):
                error = (f"the run's fingerprint {run.get('fingerprint')} is not the trial's "
                         f"{fingerprint(trial.params)} (other rlpipe code on that node?)")
        node = (result or {}).get("node")
        if node is None:  # the task died: where it ran, if it got as far as saying so
            node = self._store("node", tid, attempt)
        record = {**self.history[tid][-1], "node": node,
                  "outcome": ("pruned" if pruned_at is not None else "finished")
                  if error is None else "failed", "error": error,
                  "seconds": round(time.monotonic() - started, 3)}
        if result is not None:  # seconds: since submission (queueing included); the worker's own:
            record["worker_started_at"] = round(result["started_at"], 3)
            record["worker_seconds"] = round(result["seconds"], 3)
            record.update({k: result[k] for k in ("bytes_in", "bytes_out", "sends")})
        self.history[tid][-1] = record
        outcome = self.outcomes[tid]
        outcome.attempts.append(record)
        outcome.error = error
        where = f"on {_node_text(record['node'])}" if record["node"] else ""
        total = len(self.outcomes)
        if error is None and pruned_at is not None:
            record["pruned_at"] = pruned_at
            outcome.status = "pruned"
            self.done += 1
            self.say(f"[{self.done}/{total}] trial {tid} ({trial.label}, seed {trial.seed}) "
                     f"pruned at episode {pruned_at} {where}".rstrip())
        elif error is None:
            outcome.status = "finished"
            self.done += 1
            self.say(f"[{self.done}/{total}] trial {tid} ({trial.label}, seed "
                     f"{trial.seed}) finished {where} in {record['worker_seconds']:.1f} s"
                     .replace("  ", " "))
        elif sum(1 for r in outcome.attempts if r["outcome"] == "failed") <= self.cfg.max_retries:
            outcome.status = "retrying"
            self.say(f"trial {tid}: attempt {attempt} failed {where}: {error}; "
                     "retrying from its last checkpoint".replace("  ", " "))
        else:
            outcome.status = "failed"
            self.done += 1
            self.say(f"[{self.done}/{total}] trial {tid} ({trial.label}, seed "
                     f"{trial.seed}) FAILED after {len(outcome.attempts)} attempts: {error}")
        records.write_meta(self.trials_dir, trial, outcome.status, self.history[tid])

    def _drop_queued(self, queue: deque, stop: set[str]) -> None:
        """Trials of a pruned setting that never started: recorded pruned, never run."""
        for trial in [t for t in queue if t.trial_id in stop]:
            queue.remove(trial)
            outcome = self.outcomes[trial.trial_id]
            outcome.status = "pruned"
            self.done += 1
            records.write_meta(self.trials_dir, trial, "pruned", self.history[trial.trial_id])
            self.feed.on_outcome(outcome)

    def _poll_reports(self, queue: deque) -> None:
        reports = self._store("drain")
        stop = self.feed.on_reports(reports) if reports else set()
        if stop:
            self._store("prune", sorted(stop))
            self._drop_queued(queue, stop)

    def run(self) -> dict[str, Outcome]:
        ray = self.ray
        queue = deque(self.trials)
        running: dict[Any, tuple[Trial, int, float]] = {}
        while True:
            limit = self._limit()
            free = limit - len(running)
            if self.feed is not None and not queue and (
                    free >= self.feed.width or (free > 0 and not running)):
                new = self.feed.more()  # a search asks for a setting when all its seeds can run
                self._add(new)
                queue.extend(new)
            while queue and len(running) < limit:
                trial = queue.popleft()
                ref, attempt, started = self._submit(trial)
                running[ref] = (trial, attempt, started)
            if not running:
                break
            ready, _ = ray.wait(list(running), num_returns=1,
                                timeout=POLL_S if self.feed is not None else None)
            if self.feed is not None:
                self._poll_reports(queue)
            if not ready:
                continue
            trial, attempt, started = running.pop(ready[0])
            result, error = None, None
            try:
                result = ray.get(ready[0])
            except ray.exceptions.ActorDiedError as e:  # the store (a trial's own actor: none)
                raise ClusterError(f"the trial store on this machine failed: {describe_error(e)}") from None
            except ray.exceptions.RayError as e:
                error = describe_error(e)
            if self.feed is not None:  # the last reports of this trial before its end
                self._poll_reports(queue)
            self._finish_attempt(trial, attempt, started, result, error)
            outcome = self.outcomes[trial.trial_id]
            if outcome.status == "retrying":
                queue.appendleft(trial)
            elif self.feed is not None:
                self.feed.on_outcome(outcome)
        return self.outcomes
