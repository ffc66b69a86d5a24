"""Fault suite, train: NaN/inf losses, environments that raise, a full disk, leftovers of a kill.

In-process (``rlpipe.train.run.train``) where monkeypatching injects the fault; the real stage
(``python stages/train.py``) where the exit code and the stderr message are the point. Signals
are in test_fault_signals.py, damaged checkpoints in test_fault_checkpoints.py.
"""
from __future__ import annotations

import errno
import json
import os
import subprocess
from pathlib import Path

import pytest
import yaml

import rlpipe.io_utils as io_utils
import rlpipe.checkpoints as ckpt_mod
from rlpipe.agents.algorithms import PPO
from rlpipe.errors import RlpipeError
from rlpipe.hooks import writers
from rlpipe.hooks import Hook
from rlpipe import checkpoints as ckpt
from rlpipe.train.run import train
from tests.helpers import (PYTHON, REPO, TINY_PARAMS, assert_same_run, deep_update, log_text,
                           same_weights, tiny as params, with_env)

ENOSPC = OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def state_at(root: Path, episode: int) -> dict:
    return ckpt.load_checkpoint(root / "checkpoints" / f"ckpt_ep{episode:06d}.pt")


def temp_files(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob(".*") if p.name.endswith(".tmp")
                  or p.name.startswith(".ckpt_ep"))


# --------------------------------------------------------------------------- NaN / inf losses
class LastEpisode(Hook):
    """Remembers the last finished episode; the update that follows rollout ``episode`` is poisoned."""

    def __init__(self, episode: int):
        self.episode, self.last = episode, 0

    def on_episode_end(self, ep):
        self.last = ep.episode


@pytest.fixture
def nan_at_episode_12(monkeypatch):
    hook = LastEpisode(12)
    real = PPO.policy_loss

    def policy_loss(self, new_log_probs, old_log_probs, advantages):
        loss, extra = real(self, new_log_probs, old_log_probs, advantages)
        if hook.last == hook.episode:
            loss = loss * float("nan")
        return loss, extra

    monkeypatch.setattr(PPO, "policy_loss", policy_loss)
    return hook


@pytest.fixture(scope="module")
def skip_reference(tmp_path_factory):
    """An uninterrupted run whose 3rd update (after episode 12) has a NaN loss, on_nan: skip."""
    mp = pytest.MonkeyPatch()
    hook = LastEpisode(12)
    real = PPO.policy_loss

    def policy_loss(self, *args):
        loss, extra = real(self, *args)
        return (loss * float("nan") if hook.last == 12 else loss), extra

    mp.setattr(PPO, "policy_loss", policy_loss)
    try:
        root = tmp_path_factory.mktemp("skip_reference")
        assert train(params(train={"on_nan": "skip"}), root, [hook], console=False) == 0
    finally:
        mp.undo()
    return root


def test_nan_skip_continues_and_marks_the_update(skip_reference):
    root = skip_reference
    rows = (root / "training_output" / "updates.csv").read_text().splitlines()
    header = rows[0].split(",")
    skipped = [r.split(",")[header.index("Skipped")] for r in rows[1:]]
    assert skipped == ["0", "0", "1", "0"]
    bad = rows[3].split(",")
    assert bad[header.index("Actor Loss")] == "nan" and bad[header.index("Episode")] == "12"
    assert len((root / "training_output" / "episodes.csv").read_text().splitlines()) == 1 + 16
    assert "NaN/inf loss at update 3 (episode 12): update skipped (train.on_nan=skip)" in log_text(root)
    # the skipped update changed nothing; the next one trained again
    assert same_weights(state_at(root, 12), state_at(root, 8))
    assert not same_weights(state_at(root, 16), state_at(root, 12))


def test_nan_stop_checkpoints_last_good_state_then_resumes_exactly(tmp_path, nan_at_episode_12,
                                                                  skip_reference, monkeypatch):
    root = tmp_path
    assert train(params(), root, [nan_at_episode_12], console=False) == 3
    log = log_text(root)
    assert "WARNING rlpipe: NaN/inf loss at update 3 (episode 12): update undone, stopping " \
           "(train.on_nan=stop)" in log
    assert "training stopped early (nan)" in log
    assert ckpt.list_checkpoints(root / "checkpoints")[0][0] == 12
    assert same_weights(state_at(root, 12), state_at(root, 8))   # the last good weights
    assert json.loads((root / "training_output" / "run.json").read_text())["status"] == \
        "stopped: NaN/inf loss"
    # Resuming with on_nan: skip continues as the run that skipped that update did.
    monkeypatch.undo()
    assert train(params(train={"on_nan": "skip"}), root, console=False) == 0
    assert_same_run(skip_reference, root)


# --------------------------------------------------------------------------- a full disk
def test_disk_full_while_writing_a_checkpoint(tmp_path, reference, monkeypatch):
    real = ckpt_mod.atomic_write_bytes

    def full_disk(path, data):
        if Path(path).name == "ckpt_ep000012.pt":
            with io_utils.atomic_open(path) as f:       # half the bytes reach the temp file
                f.write(data[: len(data) // 2])
                raise ENOSPC
        return real(path, data)

    monkeypatch.setattr(ckpt_mod, "atomic_write_bytes", full_disk)
    with pytest.raises(RlpipeError) as info:
        train(params(), tmp_path, console=False)
    msg = str(info.value)
    assert "write failed" in msg and "No space left on device" in msg and "ckpt_ep000012.pt" in msg
    assert temp_files(tmp_path) == []
    assert [e for e, _ in ckpt.list_checkpoints(tmp_path / "checkpoints")] == [8, 4]
    assert state_at(tmp_path, 8)["episode"] == 8                   # the previous one still loads
    assert "the previous checkpoint stays valid" in log_text(tmp_path)
    monkeypatch.undo()
    assert train(params(), tmp_path, console=False) == 0
    assert_same_run(reference, tmp_path)


class FullFile:
    """A file object on a disk that fills up when ``full`` is set: every later write fails."""

    def __init__(self, f, state: dict):
        self.f, self.state = f, state

    def write(self, s):
        if self.state["full"]:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return self.f.write(s)

    def flush(self):
        if self.state["full"]:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        self.f.flush()

    def close(self):
        self.f.close()
        if self.state["full"]:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    def __getattr__(self, name):
        return getattr(self.f, name)


class FillDiskAt(Hook):
    """From episode ``episode`` on, every append to the CSV logs and to the text log fails."""

    def __init__(self, episode: int, state: dict):
        self.episode, self.state = episode, state

    def on_episode_end(self, ep):
        if ep.episode == self.episode:
            import logging

            for h in logging.getLogger("rlpipe").handlers:
                if isinstance(h, logging.FileHandler) and not isinstance(h.stream, FullFile):
                    h.stream = FullFile(h.stream, self.state)
            self.state["full"] = True


def test_disk_stays_full_while_appending_logs(tmp_path, reference, monkeypatch, capsys):
    """Every write fails once the disk is full (the CSV rows, the text log, the final flushes):
    one clear error naming the file, no traceback, the last checkpoint intact, and the rerun
    (disk freed) identical to the uninterrupted run."""
    state = {"full": False}

    def fake_open(path, *args, **kw):
        return FullFile(open(path, *args, **kw), state)

    monkeypatch.setattr(writers, "open", fake_open, raising=False)
    with pytest.raises(RlpipeError) as info:
        train(params(), tmp_path, [FillDiskAt(10, state)], console=False)
    msg = str(info.value)
    assert "No space left on device" in msg and "episodes.csv" in msg
    err = capsys.readouterr().err
    assert "Traceback" not in err, err
    assert temp_files(tmp_path) == []
    assert state_at(tmp_path, 8)["episode"] == 8
    monkeypatch.undo()
    state["full"] = False
    assert train(params(), tmp_path, console=False) == 0
    assert_same_run(reference, tmp_path)


def test_disk_full_while_writing_run_json(tmp_path, monkeypatch):
    import rlpipe.train.run as run_mod

    def full_disk(path, text):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))

    monkeypatch.setattr(run_mod, "atomic_write_text", full_disk)
    with pytest.raises(RlpipeError, match=r"write failed: .*No space left on device.*run\.json"):
        train(params(train={"episodes": 4}), tmp_path, console=False)
    assert state_at(tmp_path, 4)["episode"] == 4


# --------------------------------------------------------------------------- leftovers of a kill
def test_temp_files_left_by_a_kill_are_removed(tmp_path, reference):
    """A SIGKILL during an atomic write leaves its temporary file; the next run removes them (they
    would otherwise be cached and pushed by DVC as part of the persist outputs)."""
    root = tmp_path
    assert train(params(train={"episodes": 8}), root, console=False) == 0
    stale = [root / "checkpoints" / ".ckpt_ep000012.pt.k1ll3d00.tmp",
             root / "checkpoints" / ".best.pt.abcdefgh.tmp",
             root / "training_output" / ".episodes.csv.x1y2z3w4.tmp",
             root / "training_output" / "captures" / ".ep000012_trace.json.qwertyui.tmp",
             root / "live" / ".metrics.json.zxcvbnm1.tmp"]
    for p in stale:
        p.write_bytes(b"partial")
    for name in (".ckpt_ep000012.a1b2c3d4", ".best.e5f6g7h8"):          # store_separately temps
        folder = root / "checkpoints" / name
        folder.mkdir()
        (folder / "actor.pt").write_bytes(b"partial")
    assert train(params(), root, console=False) == 0
    assert temp_files(root) == [] and not list((root / "live").glob(".*"))
    assert not (root / "checkpoints" / ".best.e5f6g7h8").exists()
    assert "removed 7 temporary files left by an interrupted run" in log_text(root)
    assert_same_run(reference, root)


# --------------------------------------------------------------------------- failing environments
FAULTY_ENVS = '''
"""Test environments that fail on purpose (imported by gymnasium through 'faulty_envs:<id>')."""
import math

import gymnasium as gym
import numpy as np


class Faulty(gym.Env):
    """Five-step episodes; the first instance fails at its third episode (= episode 5 of a run
    with 2 envs) in the way ``mode`` says."""

    instances = 0
    observation_space = gym.spaces.Box(-1.0, 1.0, (3,), np.float32)
    action_space = gym.spaces.Discrete(2)

    def __init__(self, mode):
        self.index, Faulty.instances = Faulty.instances, Faulty.instances + 1
        self.mode, self.episodes, self.t = mode, 0, 0

    def _failing(self):
        return self.index == 0 and self.episodes == 3

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        if seed is None:
            self.episodes += 1
        self.t = 0
        if self.mode == "reset" and self._failing():
            raise RuntimeError("simulator licence expired")
        return self.np_random.uniform(-1, 1, 3).astype(np.float32), {}

    def step(self, action):
        self.t += 1
        if self.mode == "step" and self._failing() and self.t == 2:
            raise RuntimeError("sensor failure")
        reward = float(action)
        if self.mode == "nan" and self._failing():
            reward = math.nan
        obs = self.np_random.uniform(-1, 1, 3).astype(np.float32)
        return obs, reward, self.t >= 5, False, {}


for _mode in ("step", "reset", "nan"):
    gym.register(f"Faulty{_mode.title()}-v0", entry_point=Faulty, kwargs={"mode": _mode})
'''

ENV_CASES = ("step", "reset", "nan")


@pytest.fixture(scope="module")
def env_runs(tmp_path_factory) -> dict[str, tuple[Path, subprocess.CompletedProcess]]:
    """``python stages/train.py`` on each faulty environment, run side by side."""
    procs = {}
    for mode in ENV_CASES:
        root = tmp_path_factory.mktemp(f"env_{mode}")
        (root / "faulty_envs.py").write_text(FAULTY_ENVS)
        p = with_env(deep_update(TINY_PARAMS, {
            "agent": {"mlp_hidden": [16]},
            "train": {"episodes": 12, "num_envs": 2}, "checkpoint": {"interval": 2},
            "capture": {"every": 0, "last": 0}}), {"id": f"faulty_envs:Faulty{mode.title()}-v0"})
        (root / "params.yaml").write_text(yaml.safe_dump(p))
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(root), os.environ.get("PYTHONPATH")]))}
        procs[mode] = (root, subprocess.Popen([PYTHON, str(REPO / "stages" / "train.py")], cwd=root,
                                              env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                              text=True))
    out = {}
    for mode, (root, proc) in procs.items():
        stdout, stderr = proc.communicate(timeout=300)
        out[mode] = (root, subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr))
    return out


@pytest.mark.parametrize("mode, where", [("step", "step 2: RuntimeError: sensor failure"),
                                         ("reset", "on reset: RuntimeError: simulator licence expired")])
def test_environment_that_raises_names_the_episode(env_runs, mode, where):
    root, proc = env_runs[mode]
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr
    error = [line for line in proc.stderr.splitlines() if line.startswith("train: error:")]
    assert error == [f"train: error: environment 0 raised at episode 5, {where}"], proc.stderr
    # episodes 1-4 were checkpointed; that checkpoint is kept and loads
    assert [e for e, _ in ckpt.list_checkpoints(root / "checkpoints")] == [4, 2]
    assert state_at(root, 4)["episode"] == 4
    assert f"environment 0 raised at episode 5, {where}; the last checkpoint is kept" in log_text(root)
    assert temp_files(root) == []


def test_nan_reward_stops_the_stage_with_exit_3(env_runs):
    root, proc = env_runs["nan"]
    assert proc.returncode == 3, proc.stderr
    assert "Traceback" not in proc.stderr
    assert "train: stopped because a loss became NaN/inf" in proc.stderr
    assert "NaN/inf loss at update 3 (episode 6): update undone, stopping" in proc.stderr
    assert ckpt.list_checkpoints(root / "checkpoints")[0][0] == 6
    assert same_weights(state_at(root, 6), state_at(root, 4))
