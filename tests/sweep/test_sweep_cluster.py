"""A sweep on a real two-node Ray cluster (head 127.0.0.2, worker 127.0.0.3, both `ray start`).

1. A sweep with ``sweep.address`` set runs its trials on both nodes, and their files reach the
   driver's folder (trials send them; no storage is shared).
2. During a second sweep the worker node is killed (SIGKILL of its whole process tree) once its
   trial has sent a checkpoint home; that trial is retried on the head, resumes from that
   checkpoint, and every trial ends identical to an uninterrupted run.

3. The same with ``sweep.search: optuna`` (a new worker node first): the study trial completes.

The fixture stops every process the cluster started, by pid, even when the test fails.
"""
from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import pytest

from tests.helpers import PYTHON, REPO, log_text
from tests.sweep.ray_cluster import HEAD_IP, WORKER_IP, TwoNodeCluster, alive
from tests.sweep.sweep_helpers import (assert_trials_match_single_runs, run_sweep,
                                       write_sweep_params)

pytestmark = [pytest.mark.slow, pytest.mark.ray_cluster]


@pytest.fixture(scope="module")
def cluster():
    c = TwoNodeCluster(cpus_per_node=1)
    try:
        c.start()
        yield c
    finally:
        pids = set().union(*(n.pids for n in c.nodes))
        c.stop()
        left = [p for p in pids if alive(p)]
        assert not left, f"processes of the test cluster still running: {left}"


def attempts(trials_dir: Path) -> dict[str, list[dict]]:
    return {p.name: json.loads((p / "trial.json").read_text())["attempts"]
            for p in sorted(trials_dir.iterdir()) if p.is_dir()}


def test_trials_run_on_both_nodes_and_their_files_come_home(cluster, tmp_path):
    write_sweep_params(tmp_path / "params.yaml", {"sweep": {"address": cluster.address}})
    proc = run_sweep(tmp_path, env=cluster.env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"joined the Ray cluster at {cluster.address} (2 nodes, 2 CPUs)" in proc.stdout
    trials_dir = tmp_path / "sweeps" / "trials"
    nodes = {a[-1]["node"]["ip"] for a in attempts(trials_dir).values()}
    assert nodes == {HEAD_IP, WORKER_IP}, proc.stdout
    # the worker's trial wrote nothing on a shared disk: its files came back through Ray
    assert all(a[-1]["bytes_out"] > 0 for a in attempts(trials_dir).values())
    assert assert_trials_match_single_runs(tmp_path / "params.yaml", trials_dir,
                                           tmp_path / "ref") == 2


def kill_worker_node_mid_sweep(cluster, cwd: Path, trials: str) -> str:
    """Run the sweep stage in ``cwd`` on ``cluster``; once two trials (``trials``: a glob under
    sweeps/trials) have sent a checkpoint home, SIGKILL the worker node; the sweep must still
    finish (exit 0). Returns its log."""
    log = cwd / "sweep.log"
    with open(log, "w") as out:
        sweep = subprocess.Popen(
            [PYTHON, str(REPO / "stages" / "sweep.py"), "--out", "sweeps"], cwd=cwd,
            env={**cluster.env}, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    trials_dir = cwd / "sweeps" / "trials"
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and sweep.poll() is None:
            running = [p for p in trials_dir.glob(trials) if (p / "trial.json").exists()]
            if len(running) == 2 and all(list(p.glob("checkpoints/ckpt_ep*")) for p in running):
                break  # both trials (one per node) have sent a checkpoint home
            time.sleep(0.05)
        assert sweep.poll() is None, log.read_text()
        cluster.worker.kill()
        assert sweep.wait(timeout=300) == 0, log.read_text()
    finally:
        if sweep.poll() is None:
            sweep.kill()
            sweep.wait()
    return log.read_text()


def test_a_killed_worker_node_resumes_its_trial_elsewhere_identically(cluster, tmp_path):
    # long enough trials (60 episodes, a checkpoint every 5) to be killed half way
    write_sweep_params(tmp_path / "params.yaml", {
        "train": {"episodes": 60, "num_envs": 1, "update_epochs": 2},
        "checkpoint": {"interval": 5, "keep_last": 3},
        "sweep": {"address": cluster.address, "seeds": [2, 3]}})
    trials_dir = tmp_path / "sweeps" / "trials"
    text = kill_worker_node_mid_sweep(cluster, tmp_path, "*")
    runs = attempts(trials_dir)
    [(victim, history)] = [(t, a) for t, a in runs.items() if len(a) > 1]
    assert history[0]["outcome"] == "failed" and history[0]["node"]["ip"] == WORKER_IP, text
    assert "NodeDiedError" in history[0]["error"] or "WorkerCrashedError" in history[0]["error"]
    assert history[1]["outcome"] == "finished" and history[1]["node"]["ip"] == HEAD_IP
    assert history[1]["bytes_in"] > 0  # the driver sent the trial's checkpoints and logs back out
    assert f"trial {victim}: attempt 1 failed on {WORKER_IP}" in text
    assert "resumed from checkpoints/ckpt_ep" in log_text(trials_dir / victim)
    assert assert_trials_match_single_runs(tmp_path / "params.yaml", trials_dir,
                                           tmp_path / "ref") == 2


def test_a_search_on_the_cluster_resumes_a_killed_workers_trial_identically(cluster, tmp_path):
    """sweep.search: optuna on the same cluster: one setting, two seeds (one per node); the
    worker node is killed once both sent a checkpoint home; the study trial still completes, the
    victim resumed on the head, every seed-run identical to an uninterrupted run."""
    from rlpipe.config import Params
    from rlpipe.sweep.grid import base_dict, trial_params
    from rlpipe.train.run import train
    from tests.helpers import assert_same_run

    if cluster.worker.proc.poll() is not None:  # the test above killed it: a new worker node
        cluster.worker = cluster.start_worker()
        cluster.wait_started(cluster.worker, 120)
    params = write_sweep_params(tmp_path / "params.yaml", {
        "train": {"episodes": 60, "num_envs": 1, "update_epochs": 2},
        "checkpoint": {"interval": 5, "keep_last": 3},
        "sweep": {"address": cluster.address, "seeds": [2, 3], "grid": {}, "search": "optuna",
                  "trials": 1, "pruner": "none", "space": {"train.actor_lr": [0.003]}}})
    trials_dir = tmp_path / "sweeps" / "trials"
    text = kill_worker_node_mid_sweep(cluster, tmp_path, "*-seed*")
    assert "trial t000 complete" in text, text
    runs = attempts(trials_dir)
    [(victim, history)] = [(t, a) for t, a in runs.items() if len(a) > 1]
    assert history[0]["outcome"] == "failed" and history[0]["node"]["ip"] == WORKER_IP, text
    assert history[1]["outcome"] == "finished" and history[1]["node"]["ip"] == HEAD_IP
    assert "resumed from checkpoints/ckpt_ep" in log_text(trials_dir / victim)
    p = Params.from_dict(params)
    for folder in sorted(trials_dir.glob("*-seed*")):
        seed = int(folder.name.rsplit("seed", 1)[1])
        ref = tmp_path / "ref" / folder.name
        assert train(trial_params(base_dict(p, p.sweep), [("train.actor_lr", 0.003)], seed),
                     ref, console=False) == 0
        assert_same_run(folder, ref)
