"""The trial store: the one writer of trial folders on the driver's machine while a sweep runs.

The driver starts it as a Ray actor pinned to its own node (no CPU reserved); trials anywhere in
the cluster send it their snapshots. Each trial has a current attempt: the driver declares it
(:meth:`TrialStore.begin`) before it reads the folder to send it out again, and a snapshot from
any other attempt is refused, so a worker that was given up on (a node declared dead that is not)
can never overwrite what a newer attempt wrote. Calls run one at a time (a plain actor).

In a search, trials also report intermediate values here (:meth:`report`); the driver collects
them (:meth:`drain`), asks the study, and marks pruned trials (:meth:`prune`), which each learns
in the answer to its next report. The study itself stays in the driver's process.
"""
from __future__ import annotations

from pathlib import Path

from rlpipe.sweep.files import Appends, Files, apply_snapshot


class TrialStore:
    def __init__(self, trials_dir: str):
        self.trials_dir = Path(trials_dir)
        self.attempts: dict[str, int] = {}
        self.nodes: dict[tuple[str, int], dict] = {}
        self.reports: list[tuple[str, int, float | None]] = []
        self.pruned: set[str] = set()

    def begin(self, trial_id: str, attempt: int) -> bool:
        """From now on accept snapshots of ``trial_id`` from ``attempt`` only."""
        self.attempts[trial_id] = attempt
        return True

    def started(self, trial_id: str, attempt: int, node: dict) -> bool:
        """A task reports where it runs (the driver learns it even if the node dies later)."""
        self.nodes[(trial_id, attempt)] = node
        return self.attempts.get(trial_id) == attempt

    def node(self, trial_id: str, attempt: int) -> dict | None:
        return self.nodes.get((trial_id, attempt))

    def put(self, trial_id: str, attempt: int, files: Files, listing: list[str],
            appends: Appends = ()) -> bool:
        """Apply a snapshot of the current attempt; False (nothing written) for any other. An
        append that does not fit the file here raises (the attempt fails and is retried from
        what the folder holds)."""
        if self.attempts.get(trial_id) != attempt:
            return False
        apply_snapshot(self.trials_dir / trial_id, files, listing, appends)
        return True

    def report(self, trial_id: str, attempt: int, step: int, value: float | None) -> str:
        """A search trial's intermediate value: "go" on, "prune" (stop), or "stale" attempt."""
        if self.attempts.get(trial_id) != attempt:
            return "stale"
        self.reports.append((trial_id, step, value))
        return "prune" if trial_id in self.pruned else "go"

    def drain(self) -> list[tuple[str, int, float | None]]:
        out, self.reports = self.reports, []
        return out

    def prune(self, trial_ids: list[str]) -> bool:
        self.pruned.update(trial_ids)
        return True
