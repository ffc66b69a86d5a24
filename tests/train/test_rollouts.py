"""Rollouts (issue 22): fixed-length rollouts, environment workers, the stop that always works
and the episode safety limit, on the tiny environments of tests/train/rollout_envs.py."""
from __future__ import annotations

import csv
import multiprocessing
import os
import re
import signal
import subprocess
import time
from pathlib import Path

import pytest
import yaml

from rlpipe import checkpoints as ckpt
from rlpipe.config import Params
from rlpipe.errors import RlpipeError
from rlpipe.train import collect
from rlpipe.train.run import train
from tests.helpers import (
    PYTHON,
    REPO,
    TINY_PARAMS,
    deep_update,
    log_text,
    newest_state,
    same_weights,
    with_env,
)

FIXED = "tests.train.rollout_envs:Fixed-v0"
NEVER = "tests.train.rollout_envs:NeverEnding-v0"


def params(env: dict, checkpoint_interval: int = 4, **train_over) -> Params:
    return Params.from_dict(deep_update(with_env(TINY_PARAMS, env), {
        "train": train_over, "capture": {"every": 0, "last": 0},
        "checkpoint": {"interval": checkpoint_interval}}))


def episodes(root: Path) -> list[dict]:
    with open(root / "training_output" / "episodes.csv") as f:
        return list(csv.DictReader(f))


def run_json(root: Path) -> dict:
    import json

    return json.loads((root / "training_output" / "run.json").read_text())


def test_env_workers_run_their_numerical_libraries_on_one_thread_unless_the_user_chose(
        monkeypatch):
    """A worker steps its environments one after the other: a multi-threaded BLAS's idle threads
    in every worker would busy-wait on the cores the other workers need. The user's own setting
    wins, and the training process's environment is left as it was."""
    from rlpipe.train.env_workers import WorkerEnvs
    from rlpipe.train.environment import env_settings, make_env

    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    monkeypatch.delenv("OPENBLAS_NUM_THREADS", raising=False)
    monkeypatch.delenv("MKL_NUM_THREADS", raising=False)
    p = params({"id": "tests.train.rollout_envs:Threads-v0"})
    settings = env_settings(p.env)
    group = WorkerEnvs(p.env, settings, 2, 2, make_env(p.env, settings))
    try:
        infos = [info for _, info in group.reset([0, 1])]
    finally:
        group.close()
    assert infos == [{"OMP_NUM_THREADS": "3", "OPENBLAS_NUM_THREADS": "1",
                      "MKL_NUM_THREADS": "1"}] * 2
    assert os.environ["OMP_NUM_THREADS"] == "3"
    assert "OPENBLAS_NUM_THREADS" not in os.environ and "MKL_NUM_THREADS" not in os.environ


@pytest.mark.parametrize("mode", ["episodes", "steps"])
def test_two_env_workers_give_the_in_process_run(tmp_path, mode):
    roots = []
    for workers in (0, 2):
        root = tmp_path / f"w{workers}"
        p = params({"id": FIXED}, episodes=12, num_envs=3, rollout=mode, rollout_steps=5,
                   env_workers=workers)
        assert train(p, root, console=False) == 0
        roots.append(root)
    a, b = roots
    for name in ("episodes.csv", "updates.csv", "steps.csv"):
        assert (a / "training_output" / name).read_bytes() == \
            (b / "training_output" / name).read_bytes(), name
    assert same_weights(newest_state(a), newest_state(b))
    assert multiprocessing.active_children() == []          # no worker left behind


def test_steps_mode_logs_each_episode_once_with_its_true_length_and_resumes(tmp_path):
    p = params({"id": FIXED}, episodes=12, num_envs=3, rollout="steps", rollout_steps=5)
    assert train(p, tmp_path, console=False) == 0
    rows = episodes(tmp_path)
    # 7-step episodes span 5-step rollouts: each is logged once, when it ends, whole
    assert [int(r["Episode"]) for r in rows] == list(range(1, len(rows) + 1))
    assert len(rows) >= 12 and {r["Episode Length"] for r in rows} == {"7"}
    first = run_json(tmp_path)
    assert first["global_step"] == first["updates"] * 15
    # raise the budget: resume; the episodes in flight restart, and the log says so
    assert train(params({"id": FIXED}, episodes=24, num_envs=3, rollout="steps", rollout_steps=5),
                 tmp_path, console=False) == 0
    rows = episodes(tmp_path)
    assert [int(r["Episode"]) for r in rows] == list(range(1, len(rows) + 1))
    assert len(rows) >= 24 and {r["Episode Length"] for r in rows} == {"7"}
    assert "episodes were in flight at the checkpoint: they restart" in log_text(tmp_path)
    second = run_json(tmp_path)
    assert second["global_step"] == second["updates"] * 15
    assert newest_state(tmp_path)["global_step"] == second["global_step"]


def test_an_episode_without_a_limit_is_cut_at_the_safety_limit_with_one_warning(tmp_path, monkeypatch):
    monkeypatch.setattr(collect, "SAFETY_EPISODE_STEPS", 30)
    env = {"id": NEVER, "kwargs": {"step_seconds": 0.0}}
    assert train(params(env, episodes=4, num_envs=2), tmp_path / "a", console=False) == 0
    assert {r["Episode Length"] for r in episodes(tmp_path / "a")} == {"30"}
    log = log_text(tmp_path / "a")
    assert log.count("declares no episode step limit") == 1
    assert "NeverEnding-v0" in log and "safety limit of 30 steps" in log
    # a declared limit (env.max_episode_steps) truncates without a warning
    env["max_episode_steps"] = 20
    assert train(params(env, episodes=4, num_envs=2), tmp_path / "b", console=False) == 0
    assert {r["Episode Length"] for r in episodes(tmp_path / "b")} == {"20"}
    assert "declares no episode step limit" not in log_text(tmp_path / "b")


def group_members(pgid: int, wait: float = 3.0) -> list[str]:
    """Command lines of the live processes of process group ``pgid`` (after up to ``wait`` s)."""
    deadline = time.monotonic() + wait
    while True:
        found = []
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
                if int(fields[2]) == pgid and fields[0] != "Z":
                    found.append((stat.parent / "cmdline").read_text().replace("\0", " "))
            except (OSError, IndexError, ValueError):
                continue
        if not found or time.monotonic() > deadline:
            return found
        time.sleep(0.1)


@pytest.mark.parametrize("mode, workers", [("episodes", 0), ("steps", 0), ("steps", 2)])
def test_sigterm_in_a_never_ending_rollout_stops_at_once(tmp_path, mode, workers):
    """The rollout would take >= 5 s (10 000 steps of 0.5 ms at the safety limit, or
    rollout_steps 100 000); the stop must come long before it ends. With workers, the SIGTERM
    goes to the whole process group (as a service manager sends it), workers included."""
    p = deep_update(with_env(TINY_PARAMS, {"id": NEVER}),
                    {"train": {"num_envs": 2 if workers else 1, "rollout": mode,
                               "rollout_steps": 100_000, "env_workers": workers}})
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(p))
    proc = subprocess.Popen([PYTHON, str(REPO / "stages" / "train.py"), "--no-progress"],
                            cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": f"{REPO / 'src'}:{REPO}"},
                            start_new_session=True)
    log = tmp_path / "training_output" / "agent_training.log"
    deadline = time.monotonic() + 120
    while not (log.exists() and "run start" in log.read_text()) and time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.05)
    time.sleep(0.5)                                    # in the rollout by now
    os.killpg(proc.pid, signal.SIGTERM) if workers else proc.send_signal(signal.SIGTERM)
    sent = time.monotonic()
    try:
        proc.wait(timeout=30)
    finally:
        proc.kill()
    took = time.monotonic() - sent
    _, stderr = proc.communicate()
    assert proc.returncode == 143, stderr
    assert took < 3.0, took
    assert "Traceback" not in stderr, stderr
    assert "the partial rollout is dropped" in log.read_text()
    assert ckpt.list_checkpoints(tmp_path / "checkpoints") == []   # no rollout finished
    assert group_members(proc.pid) == []                            # no worker left behind


@pytest.mark.parametrize("helper", [False, True], ids=["alone", "pipe-holding-helper"])
def test_a_killed_worker_stops_the_run_in_one_line_with_its_checkpoint(tmp_path, helper):
    """With ``helper``, each worker's environment forked a process that keeps the worker's pipe
    end open after the worker dies: the death must be seen from the process itself, not from
    the pipe's end, or the run would wait for the helper (30 s)."""
    # each environment's 3rd reset (the seed's, rollout 1's, rollout 2's) kills its worker
    helpers = tmp_path / "helpers"
    helpers.mkdir()
    kwargs = {"die_at_reset": 3, **({"helper_pid_dir": str(helpers)} if helper else {})}
    p = params({"id": FIXED, "kwargs": kwargs}, checkpoint_interval=2, episodes=40,
               num_envs=2, env_workers=2)
    started = time.monotonic()
    try:
        with pytest.raises(RlpipeError) as err:
            train(p, tmp_path / "run", console=False)
        took = time.monotonic() - started
    finally:
        for pid_file in helpers.iterdir():
            try:
                os.kill(int(pid_file.name), signal.SIGKILL)
            except ProcessLookupError:
                pass
    assert len(list(helpers.iterdir())) == (2 if helper else 0)
    assert took < 15, f"the run took {took:.1f} s to see its worker die"
    tmp_path = tmp_path / "run"
    msg = str(err.value)
    assert "\n" not in msg
    # both workers die at that reset; whichever is seen first is named, with its episode
    assert re.search(r"environment (0's worker process died at episode 3|1's worker process "
                     r"died at episode 4), on reset", msg), msg
    assert "killed by SIGKILL" in msg, msg
    assert [e for e, _ in ckpt.list_checkpoints(tmp_path / "checkpoints")] == [2]
    assert newest_state(tmp_path)["episode"] == 2
    assert multiprocessing.active_children() == []
