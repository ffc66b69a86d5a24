"""Fault suite, signals: SIGTERM, SIGINT (once and twice) and SIGKILL to a running
``python stages/train.py``, then a rerun that must continue exactly where the run stopped.

The victims train towards 400 episodes (the budget is not part of the run's fingerprint) and are
signalled once episodes.csv holds a few rows; the reruns then ask for 48 episodes and must equal
an uninterrupted 48-episode run: the CSV logs byte for byte, the weights bit for bit. The four
victims run side by side (one module fixture) to keep the suite fast.
"""
from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import time
from pathlib import Path

import pytest
import torch
import yaml

from rlpipe.config import Params
from rlpipe.hooks import Hook
from rlpipe import checkpoints as ckpt
from rlpipe.train.run import train
from tests.helpers import PYTHON, REPO, TINY_PARAMS, deep_update

LOGS = ("episodes.csv", "updates.csv", "steps.csv")
TARGET = 48            # the reruns and the reference
VICTIM_BUDGET = 400    # what the interrupted runs aim for
SIGNAL_AFTER_ROWS = 6  # episodes.csv rows before the signal


def params(**over) -> Params:
    return Params.from_dict(deep_update(TINY_PARAMS, over))


def rows(path: Path) -> int:
    try:
        text = path.read_text()
    except FileNotFoundError:
        return 0
    return max(0, text.count("\n") - 1)


def newest(root: Path) -> tuple[int, Path]:
    return ckpt.list_checkpoints(root / "checkpoints")[0]


def assert_same_run(a: Path, b: Path) -> None:
    for name in LOGS:
        assert (a / "training_output" / name).read_bytes() == \
            (b / "training_output" / name).read_bytes(), name
    sa, sb = ckpt.load_checkpoint(newest(a)[1]), ckpt.load_checkpoint(newest(b)[1])
    assert sa["episode"] == sb["episode"] == TARGET
    for net in ("actor", "critic"):
        for k in sa[net]:
            assert torch.equal(sa[net][k], sb[net][k]), f"{net}.{k}"


def leftovers(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob(".*")
                  if p.name.endswith(".tmp") or p.name.startswith(".ckpt_ep"))


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("reference")
    assert train(params(train={"episodes": TARGET}), root, console=False) == 0
    return root


# name: (signals, delay before the first in s, checkpoint settings)
VICTIMS = {
    # interval 100: no periodic checkpoint before the stop, so the one found was made by the stop
    "SIGTERM": ([signal.SIGTERM], 0.0, {"interval": 100}),
    "SIGINT": ([signal.SIGINT], 0.0, {"interval": 100}),
    # at most ~0.25 s: a few rollouts of the tiny run (the dense GAT path made 0.8 s enough to finish)
    "SIGKILL": ([signal.SIGKILL], random.Random().uniform(0.0, 0.25), {"interval": 4}),
}
KILL_DELAY = VICTIMS["SIGKILL"][1]


@pytest.fixture(scope="module")
def victims(tmp_path_factory) -> dict[str, tuple[Path, subprocess.CompletedProcess]]:
    started = {}
    for name, (_, _, checkpoint) in VICTIMS.items():
        root = tmp_path_factory.mktemp(name)
        p = deep_update(TINY_PARAMS, {"train": {"episodes": VICTIM_BUDGET}, "checkpoint": checkpoint})
        (root / "params.yaml").write_text(yaml.safe_dump(p))
        proc = subprocess.Popen([PYTHON, str(REPO / "stages" / "train.py")], cwd=root,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                env={**os.environ, "PYTHONUNBUFFERED": "1"})
        started[name] = (root, proc)
    pending = dict(started)
    deadline = time.monotonic() + 240
    due: dict[str, float] = {}
    while pending and time.monotonic() < deadline:
        for name, (root, proc) in list(pending.items()):
            sigs, delay, _ = VICTIMS[name]
            if proc.poll() is not None:       # ended before its signal: the test reports it
                del pending[name]
            elif name not in due and rows(root / "training_output" / "episodes.csv") >= SIGNAL_AFTER_ROWS:
                due[name] = time.monotonic() + delay
            elif name in due and time.monotonic() >= due[name]:
                for s in sigs:
                    proc.send_signal(s)
                    time.sleep(0.01)
                del pending[name]
        time.sleep(0.01)
    out = {}
    for name, (root, proc) in started.items():
        if name in pending:
            proc.kill()
        stdout, stderr = proc.communicate(timeout=120)
        out[name] = (root, subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr))
    return out


@pytest.mark.parametrize("name, code", [("SIGTERM", 143), ("SIGINT", 130)])
def test_first_signal_checkpoints_the_last_rollout_and_resumes_exactly(victims, reference, name, code):
    root, proc = victims[name]
    out = root / "training_output"
    assert proc.returncode == code, proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr
    assert f"training stopped early ({name})" in proc.stderr
    log = (out / "agent_training.log").read_text()
    assert f"training stopped early ({name}); resume by running the train stage again" in log
    # the one checkpoint is the stop's, at the last finished rollout; every log row is on disk
    ckpts = ckpt.list_checkpoints(root / "checkpoints")
    assert len(ckpts) == 1, ckpts
    episode = ckpts[0][0]
    assert SIGNAL_AFTER_ROWS <= episode < TARGET and episode % 4 == 0, episode
    assert f"checkpoint saved: checkpoints/ckpt_ep{episode:06d}.pt (episode {episode})" in log
    assert ckpt.load_checkpoint(ckpts[0][1])["episode"] == episode
    assert rows(out / "episodes.csv") == episode and rows(out / "updates.csv") == episode // 4
    assert (out / "steps.csv").read_text().splitlines()[-1].split(",")[0] == str(episode)
    run = json.loads((out / "run.json").read_text())
    assert run["status"] == f"interrupted ({name})" and run["episodes"] == episode
    assert leftovers(root) == []
    # rerun: resumes from that checkpoint and ends as the uninterrupted run did
    assert train(params(train={"episodes": TARGET}), root, console=False) == 0
    assert f"resumed from checkpoints/ckpt_ep{episode:06d}.pt at episode {episode}" in \
        (out / "agent_training.log").read_text()
    assert_same_run(reference, root)


class CtrlC(Hook):
    """Presses Ctrl-C (SIGINT to this process) when the given episodes finish."""

    def __init__(self, *episodes: int):
        self.episodes = episodes

    def on_episode_end(self, ep):
        if ep.episode in self.episodes:
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.05)  # the handler runs here, in the main thread


def test_second_sigint_aborts_at_once_and_the_rerun_recovers(tmp_path, reference):
    """In-process, so that the two signals are handled one by one (two SIGINTs that arrive
    before Python runs its handler count as one)."""
    root = tmp_path
    with pytest.raises(KeyboardInterrupt):
        train(params(train={"episodes": VICTIM_BUDGET}), root, [CtrlC(6, 7)], console=False)
    assert "training stopped early" not in (root / "training_output" / "agent_training.log").read_text()
    assert newest(root)[0] == 4          # aborted inside the rollout of episodes 5-8
    assert train(params(train={"episodes": TARGET}), root, console=False) == 0
    assert leftovers(root) == []
    assert_same_run(reference, root)


def test_sigkill_at_a_random_moment_then_rerun_is_identical(victims, reference):
    root, proc = victims["SIGKILL"]
    assert proc.returncode == -signal.SIGKILL, (proc.returncode, KILL_DELAY, proc.stderr)
    assert newest(root)[0] < TARGET, KILL_DELAY
    assert train(params(train={"episodes": TARGET}), root, console=False) == 0
    assert leftovers(root) == []
    assert_same_run(reference, root)


def test_stage_reports_an_abort_in_one_line(capsys):
    from rlpipe.stage_runner import run_stage

    def ctrl_c():
        raise KeyboardInterrupt

    assert run_stage("train", ctrl_c) == 130
    assert capsys.readouterr().err == "train: interrupted\n"
