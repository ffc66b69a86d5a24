"""Live progress in the DVC tools (real dvc CLI): the train stage's live/ files are declared,
git-tracked and locked like metrics.json, and `dvc exp show` / `dvc metrics show` / `dvc plots
show` read a run that is still going."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
import yaml

from tests.helpers import PYTHON, copy_repo, dvc, dvc_env, edit_params, git

pytestmark = pytest.mark.dvc

LIVE = ["live/metrics.json", "live/reward.csv", "live/losses.csv"]
LIVE_PLOTS = ["Live reward", "Live actor loss", "Live critic loss"]


def live_metrics(data: dict) -> dict:
    """The live/metrics.json entry of one revision of `dvc exp show --json`."""
    return ((data.get("metrics") or {}).get("live/metrics.json") or {}).get("data") or {}


def test_live_files_are_declared_tracked_and_locked(dvc_trained_repo: Path):
    repo = dvc_trained_repo
    stage = yaml.safe_load((repo / "dvc.yaml").read_text())["stages"]["train"]
    declared = {next(iter(o)) if isinstance(o, dict) else o: o for o in stage["outs"] + stage["metrics"]}
    for path in LIVE:
        assert declared[path][path] == {"cache": False, "persist": True}, path
    locked = {o["path"] for o in yaml.safe_load((repo / "dvc.lock").read_text())["stages"]["train"]["outs"]}
    assert set(LIVE) <= locked
    assert git(repo, "ls-files", "live").stdout.split() == sorted(LIVE)  # committed with git
    shown = json.loads(dvc(repo, "metrics", "show", "--json").stdout)
    workspace = next(iter(shown.values()))["data"]
    assert workspace["live/metrics.json"]["data"]["episode"] == 16
    plots = json.loads(dvc(repo, "plots", "show", "--json").stdout)
    assert not plots.get("errors"), plots.get("errors")
    for name in LIVE_PLOTS:
        (plot,) = plots["data"][name]
        assert plot["type"] == "vega" and plot["content"]["data"]["values"], name


def test_exp_show_reads_a_running_experiment(dvc_trained_repo: Path, tmp_path: Path):
    """`dvc exp run` resumes the run to a far larger budget in the background; while it trains,
    `dvc exp show --json`, `dvc metrics show` and `dvc plots show` see its progress."""
    repo = copy_repo(dvc_trained_repo, tmp_path / "repo")
    target = 2000
    edit_params(repo, {"train": {"episodes": target}})
    env = dvc_env({"PYTHONPATH": "src"})
    exe = Path(PYTHON).parent / "dvc"
    log = open(tmp_path / "exp_run.log", "w")
    proc = subprocess.Popen([str(exe) if exe.exists() else "dvc", "exp", "run"], cwd=repo, env=env,
                            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                            start_new_session=True)
    try:
        deadline = time.monotonic() + 300
        episode = 0
        while episode < 40:  # resumed at 16; wait for a few rollouts past it
            assert proc.poll() is None, (tmp_path / "exp_run.log").read_text()
            assert time.monotonic() < deadline, "no live progress within 300 s"
            time.sleep(0.5)
            try:
                episode = json.loads((repo / "live" / "metrics.json").read_text())["episode"]
            except (OSError, ValueError, KeyError):
                pass
        shown = json.loads(dvc(repo, "exp", "show", "--json").stdout)
        metrics = json.loads(dvc(repo, "metrics", "show", "--json").stdout)
        plots = json.loads(dvc(repo, "plots", "show", "--json").stdout)
        assert proc.poll() is None, "the run ended before the DVC tools were asked"
    finally:
        if proc.poll() is None:  # stop what this test started: the whole process group
            os.killpg(proc.pid, signal.SIGINT)
            try:
                proc.wait(timeout=120)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        log.close()
    workspace = next(r for r in shown if r["rev"] == "workspace")["data"]
    live = live_metrics(workspace)
    assert episode <= live["episode"] < target and live["target_episodes"] == target
    assert 0 < live["progress"] < 1 and "mean" in live["reward"]
    (ws,) = metrics.values()
    assert ws["data"]["live/metrics.json"]["data"]["episode"] >= episode
    rows = plots["data"]["Live reward"][0]["content"]["data"]["values"]
    assert episode <= max(int(r["Episode"]) for r in rows) < target
