"""One trial without Ray: what it sends home resumes exactly, wherever the next attempt runs."""
from __future__ import annotations

from pathlib import Path

import pytest

from rlpipe.sweep.files import apply_snapshot, read_files
from rlpipe.sweep.trial import StaleAttempt, run_trial
from tests.helpers import assert_same_run, log_text, tiny


class Home:
    """The driver's side of a trial: applies snapshots; can die after ``fail_after`` sends."""

    def __init__(self, root: Path, fail_after: int | None = None):
        self.root = root
        self.fail_after = fail_after
        self.sends = 0

    def send(self, files, listing, appends) -> bool:
        if self.fail_after is not None and self.sends >= self.fail_after:
            raise RuntimeError("the worker's node died")
        apply_snapshot(self.root, files, listing, appends)
        self.sends += 1
        return True


def test_a_trial_killed_midway_resumes_elsewhere_identical_to_one_run(tmp_path, reference):
    params = tiny().to_dict()
    home = Home(tmp_path / "home", fail_after=2)  # two checkpoints arrive, then the node dies
    with pytest.raises(RuntimeError, match="node died"):
        run_trial(params, [], home.send)
    assert sorted(p.name for p in (home.root / "checkpoints").glob("ckpt_ep*")) == [
        "ckpt_ep000004.pt", "ckpt_ep000008.pt"]

    home.fail_after = None  # the next attempt, given what the driver holds
    result = run_trial(params, read_files(home.root, "checkpoints"), home.send,
                       {"ip": "127.0.0.3"})
    assert result["exit_code"] == 0 and result["node"] == {"ip": "127.0.0.3"}
    assert result["bytes_in"] > 0 and result["sends"] >= 1
    assert "resumed from checkpoints/ckpt_ep000008.pt at episode 8" in log_text(home.root)
    assert_same_run(home.root, reference)


def test_a_stale_attempt_stops_training(tmp_path):
    with pytest.raises(StaleAttempt):
        run_trial(tiny(train={"episodes": 4}).to_dict(), [], lambda files, listing, appends: False)


def test_scratch_folders_of_dead_workers_are_removed(tmp_path):
    import os
    import subprocess
    import sys

    from rlpipe.sweep.trial import SCRATCH_PREFIX, remove_stale_scratch

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True).stdout.strip()
    (tmp_path / f"{SCRATCH_PREFIX}{dead}-abc").mkdir()
    (tmp_path / f"{SCRATCH_PREFIX}{os.getpid()}-def").mkdir()
    (tmp_path / "other").mkdir()
    assert remove_stale_scratch(tmp_path) == [f"{SCRATCH_PREFIX}{dead}-abc"]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([f"{SCRATCH_PREFIX}{os.getpid()}-def", "other"])
