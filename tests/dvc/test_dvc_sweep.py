"""The sweep pipeline end to end with the real dvc CLI: `dvc --cd sweeps repro` in a temporary
git repository (tiny CartPole trials on an embedded Ray), its metrics, push/pull of its outputs,
and a sweep killed half way (dvc, the stage, Ray: the whole process group, SIGKILL) then rerun:
the finished trial is skipped, the unfinished one resumes, both identical to uninterrupted runs.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest
import yaml

from tests.helpers import (dvc, edit_params, git, make_dvc_repo, stages_ran,
                           stages_skipped, tree_hashes)
from tests.sweep.ray_cluster import kill_tree
from tests.sweep.sweep_helpers import start_dvc, assert_trials_match_single_runs, write_sweep_params

pytestmark = [pytest.mark.dvc, pytest.mark.slow]

SWEEP_STAGE = "sweep"
OUTPUTS = ("sweeps/trials", "sweeps/results", "sweeps/figures")
SWEEP = ("--cd", "sweeps")  # the sweep pipeline is a DVC project of its own in sweeps/


@pytest.fixture(scope="module")
def repo(tmp_path_factory) -> Path:
    """A project repository with the sweeps pipeline and a 2 x 2 tiny sweep, committed."""
    root = tmp_path_factory.mktemp("sweep_dvc")
    repo = make_dvc_repo(root / "repo")
    write_sweep_params(repo / "params.yaml", {"sweep": {"grid": {"train.actor_lr": [0.001, 0.01]}}})
    assert (repo / "sweeps" / ".dvc" / "config").is_file()  # make_dvc_repo copies the pipeline
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "sweep pipeline")
    return repo


def repro_sweep(repo: Path) -> str:
    out = dvc(repo, *SWEEP, "repro", timeout=600)
    return out.stdout + out.stderr


def test_repro_runs_the_sweep_and_only_the_sweep(repo):
    text = repro_sweep(repo)
    assert stages_ran(text) == [SWEEP_STAGE], text
    assert "4 trials = 2 settings x 2 seeds" in text
    assert len(list((repo / "sweeps" / "trials").glob("*-seed*/checkpoints/ckpt_ep*"))) >= 4
    # plain `dvc repro` at the root is the single-run pipeline; it never runs the sweep
    # (a dry run stops at summarize, whose input train has not written: enough to see the plan)
    dry = dvc(repo, "repro", "--dry", check=False)
    assert stages_ran(dry.stdout)[:1] == ["train"], dry.stdout + dry.stderr
    assert "sweep" not in stages_ran(dry.stdout)
    # the root project never reads the sweep's metrics; the sweep's project does
    root_metrics = dvc(repo, "metrics", "show", "--json").stdout
    assert "sweeps/metrics.json" not in root_metrics
    shown = json.loads(dvc(repo, *SWEEP, "metrics", "show", "--json").stdout)
    data = next(iter(shown.values()))["data"]["metrics.json"]["data"]
    assert data["trials"] == {"total": 4, "finished": 4}
    assert set(data["settings"]) == {"train.actor_lr=0.001", "train.actor_lr=0.01"}
    assert data["settings"]["train.actor_lr=0.01"]["final_reward"].keys() == {"mean", "sd"}
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "sweep 1")
    assert "sweeps/metrics.json" in git(repo, "ls-files").stdout  # git-tracked (cache: false)
    again = repro_sweep(repo)
    assert stages_skipped(again) == [SWEEP_STAGE], again


def test_outputs_travel_with_push_and_pull(repo):
    before = {name: tree_hashes(repo / name) for name in OUTPUTS}
    assert any("/checkpoints/ckpt_ep" in k for k in before["sweeps/trials"])
    dvc(repo, *SWEEP, "push")
    shutil.rmtree(repo / "sweeps" / ".dvc" / "cache")
    for name in OUTPUTS:
        shutil.rmtree(repo / name)
    dvc(repo, *SWEEP, "pull")
    assert {name: tree_hashes(repo / name) for name in OUTPUTS} == before
    assert "Data and pipelines are up to date." in dvc(repo, *SWEEP, "status").stdout


def _kill_group(proc: subprocess.Popen) -> None:
    """SIGKILL dvc, the stage and the Ray it started (one process group), leaving none behind."""
    kill_tree({proc.pid})
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait(timeout=60)


def test_killed_sweep_reruns_skipping_finished_and_resuming_unfinished(repo, tmp_path):
    params = edit_params(repo, {"train": {"episodes": 40, "num_envs": 1, "update_epochs": 2},
                                "checkpoint": {"interval": 5, "keep_last": 3},
                                "sweep": {"seeds": [0, 1], "max_concurrent": 1}})
    params["sweep"]["grid"] = {}  # seeds only (edit_params merges; this replaces)
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    trials_dir = repo / "sweeps" / "trials"
    log = tmp_path / "killed.log"
    proc = start_dvc(repo, [*SWEEP, "repro"], log)
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and proc.poll() is None:
            metas = [json.loads(p.read_text()) for p in trials_dir.glob("base-seed*/trial.json")]
            done = [m for m in metas if m["status"] == "finished"]
            running = [m for m in metas if m["status"] == "running"
                       and list((trials_dir / m["trial_id"]).glob("checkpoints/ckpt_ep*"))]
            if done and running:
                break  # one trial finished, the other has sent a checkpoint home
            time.sleep(0.05)
        assert proc.poll() is None, log.read_text()
    finally:
        _kill_group(proc)
    [victim] = [m["trial_id"] for m in running]

    text = repro_sweep(repo)
    assert stages_ran(text) == [SWEEP_STAGE], text
    assert "2 trials = 1 setting x 2 seeds, 40 episodes each; 1 finished already, 1 to run" in text
    assert "resumed from checkpoints/ckpt_ep" in (
        trials_dir / victim / "training_output" / "agent_training.log").read_text()
    meta = json.loads((trials_dir / victim / "trial.json").read_text())
    assert [a["outcome"] for a in meta["attempts"]] == ["interrupted", "finished"]
    assert assert_trials_match_single_runs(repo / "params.yaml", trials_dir, tmp_path / "ref") == 2
