"""Evaluation during training (train.eval_interval): it never changes training, it chooses
best.pt, train.stop_at ends a run early, and a run killed with evaluation on resumes exactly."""
from __future__ import annotations

import csv
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
import torch
import yaml

from rlpipe import checkpoints as ckpt
from rlpipe.train.run import train
from tests.helpers import (LOGS, PYTHON, REPO, TINY_PARAMS, deep_update, log_text, newest_state,
                           same_weights, tiny)

EVAL = {"eval_interval": 4, "eval_episodes": 3}


def eval_rows(root: Path) -> list[dict]:
    with open(root / "training_output" / "eval.csv", newline="") as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def evaluated_run(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("eval_on")
    assert train(tiny(train=EVAL), root, console=False) == 0
    return root


def test_evaluation_never_changes_training(reference, evaluated_run):
    for name in LOGS:
        assert (reference / "training_output" / name).read_bytes() == \
            (evaluated_run / "training_output" / name).read_bytes(), name
    assert same_weights(newest_state(reference), newest_state(evaluated_run))
    assert eval_rows(reference) == []  # off: the header alone


def test_evaluations_are_logged_and_choose_best_pt(evaluated_run):
    rows = eval_rows(evaluated_run)
    assert [int(r["Episode"]) for r in rows] == [4, 8, 12, 16]
    assert all(int(r["Episodes"]) == 3 and 0 <= float(r["Reference Accuracy"]) <= 1 for r in rows)
    returns = [float(r["Mean Return"]) for r in rows]
    best_episode = int(rows[returns.index(max(returns))]["Episode"])
    assert ckpt.load_checkpoint(evaluated_run / "checkpoints" / "best.pt")["episode"] == best_episode
    assert f"new best evaluation return {max(returns):.4f} at episode {best_episode}" in \
        log_text(evaluated_run)
    assert newest_state(evaluated_run)["evaluation"] == {"played": 12, "best": max(returns)}


def test_stop_at_ends_training_early_with_a_final_checkpoint(tmp_path):
    assert train(tiny(train={**EVAL, "stop_at": -1000.0}), tmp_path, console=False) == 0
    assert [int(r["Episode"]) for r in eval_rows(tmp_path)] == [4]
    assert [e for e, _ in ckpt.list_checkpoints(tmp_path / "checkpoints")] == [4]
    assert "train.stop_at reached" in log_text(tmp_path)
    before = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    assert train(tiny(train={**EVAL, "stop_at": -1000.0}), tmp_path, console=False) == 0
    assert {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()} == before  # finished


def test_killed_with_evaluation_on_then_rerun_is_identical(tmp_path):
    """SIGKILL once evaluations are on disk; the rerun resumes from the last checkpoint and its
    logs, evaluations (eval.csv, the evaluation seeds' counter) and weights equal a run never
    killed."""
    over = {"train": {**EVAL, "episodes": 48}, "checkpoint": {"interval": 8}}
    full, victim = tmp_path / "full", tmp_path / "victim"
    for root in (full, victim):
        root.mkdir()
        (root / "params.yaml").write_text(yaml.safe_dump(deep_update(TINY_PARAMS, over)))
    subprocess.run([PYTHON, str(REPO / "stages" / "train.py")], cwd=full, check=True,
                   capture_output=True)
    proc = subprocess.Popen([PYTHON, str(REPO / "stages" / "train.py")], cwd=victim,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    evals = victim / "training_output" / "eval.csv"
    deadline = time.monotonic() + 120
    while proc.poll() is None and time.monotonic() < deadline:
        if evals.exists() and len(evals.read_text().splitlines()) >= 4:  # 3 evaluations
            os.kill(proc.pid, signal.SIGKILL)
            break
        time.sleep(0.005)
    assert proc.wait(timeout=60) == -signal.SIGKILL, "the run ended before the kill"
    assert newest_state(victim)["episode"] < 48
    subprocess.run([PYTHON, str(REPO / "stages" / "train.py")], cwd=victim, check=True,
                   capture_output=True)
    assert "resumed from" in log_text(victim)
    for name in (*LOGS, "eval.csv"):
        assert (full / "training_output" / name).read_bytes() == \
            (victim / "training_output" / name).read_bytes(), name
    a, b = newest_state(full), newest_state(victim)
    assert same_weights(a, b) and a["evaluation"] == b["evaluation"]
    best = [ckpt.load_checkpoint(r / "checkpoints" / "best.pt") for r in (full, victim)]
    assert all(torch.equal(best[0]["actor"][k], best[1]["actor"][k]) for k in best[0]["actor"])


def test_auto_interval_with_a_step_budget_counts_steps(tmp_path):
    """eval_interval auto = about 20 evaluations per run, in the budget's unit: with 60 steps
    every 3 steps, so after every rollout (each takes more than 3 steps)."""
    p = tiny(train={"episodes": None, "total_steps": 60, "eval_interval": "auto", "eval_episodes": 2})
    assert train(p, tmp_path, console=False) == 0
    with open(tmp_path / "training_output" / "updates.csv", newline="") as f:
        updates = [int(r["Episode"]) for r in csv.DictReader(f)]
    assert [int(r["Episode"]) for r in eval_rows(tmp_path)] == updates
