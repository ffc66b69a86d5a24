"""Parallel experiments: `dvc exp run --queue` x2, `dvc queue start -j 2`, results in `dvc exp show`.

Queued experiments run in temporary copies of the repository, where dvc checks out the outputs
recorded in dvc.lock: train resumes from the baseline's checkpoint even though the workspace's
checkpoints/ folder was deleted (the persist caveat, the other way round from workspace runs).
"""
from __future__ import annotations

import re
import shutil
import time
from pathlib import Path

import pytest
import yaml

from tests.helpers import copy_repo, dvc, exp_rows

pytestmark = pytest.mark.dvc

RUNS = {"q-ep20": 20, "q-ep24": 24}
TIMEOUT_S = 420


@pytest.fixture(scope="module")
def repo(dvc_trained_repo: Path, tmp_path_factory) -> Path:
    return copy_repo(dvc_trained_repo, tmp_path_factory.mktemp("queue") / "repo")


def queue_states(repo: Path) -> dict[str, str]:
    """{experiment name: Queued|Running|Success|Failed|...} from `dvc queue status`."""
    out = dvc(repo, "queue", "status").stdout
    states = {}
    for line in out.splitlines():
        m = re.match(r"^([0-9a-f]{7,})\s+(\S+)\s+.*?\s(Queued|Running|Success|Failed|Stopped|Unknown)\s*$",
                     line)
        if m:
            states[m.group(2)] = m.group(3)
    return states


def test_queued_experiments_run_in_parallel_from_the_locked_checkpoint(repo: Path):
    base_episodes = yaml.safe_load((repo / "params.yaml").read_text())["train"]["episodes"]
    assert all(n > base_episodes for n in RUNS.values())
    shutil.rmtree(repo / "checkpoints")  # the workspace copy is not what a queued run starts from

    for name, episodes in RUNS.items():
        out = dvc(repo, "exp", "run", "--queue", "-n", name, "-S", f"train.episodes={episodes}")
        assert f"Queued experiment '{name}' for future execution." in out.stdout, out.stdout
    assert queue_states(repo) == {name: "Queued" for name in RUNS}

    # workers run in the background: their output goes to a file, not to pipes we would wait on
    started = dvc(repo, "queue", "start", "-j", "2", output_file=repo.parent / "queue_start.log")
    assert "Started '2' new experiments task queue workers." in started.stdout, started.stdout
    seen_running_together = False
    history = []
    deadline = time.monotonic() + TIMEOUT_S
    try:
        while True:
            states = queue_states(repo)
            history.append((round(time.monotonic() - deadline + TIMEOUT_S, 1), states))
            running = [n for n in RUNS if states.get(n) == "Running"]
            seen_running_together |= len(running) == len(RUNS)
            if all(states.get(n) in ("Success", "Failed", "Stopped") for n in RUNS):
                break
            assert time.monotonic() < deadline, f"queue not done after {TIMEOUT_S} s: {states}"
            time.sleep(1)
    finally:
        if any(s in ("Queued", "Running") for s in queue_states(repo).values()):
            dvc(repo, "queue", "kill", *RUNS, check=False)
            dvc(repo, "queue", "stop", check=False)
    logs = {n: dvc(repo, "queue", "logs", n, check=False).stdout for n in RUNS}
    assert states == {n: "Success" for n in RUNS}, (states, logs)
    assert seen_running_together, f"the two queued experiments never ran at the same time: {history}"

    for text in logs.values():
        assert re.findall(r"Running stage '(\w+)'", text) == [
            "train", "evaluate", "summarize", "visualize"]
        assert (f"resumed from checkpoints/ckpt_ep{base_episodes:06d}.pt at episode {base_episodes}"
                in text), text

    rows = exp_rows(repo)
    for name, episodes in RUNS.items():
        assert name in rows, sorted(rows)
        assert rows[name]["params"]["train"]["episodes"] == episodes
        run = rows[name]["metrics"]["run"]
        assert run["episodes"] == episodes and run["resumed_count"] == 1, run
    # the workspace itself was left alone
    assert not (repo / "checkpoints").exists()
    assert yaml.safe_load((repo / "params.yaml").read_text())["train"]["episodes"] == base_episodes
