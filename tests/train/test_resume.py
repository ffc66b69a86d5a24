"""Resume contract: interrupted + resumed == uninterrupted (logs byte-identical, weights bit-identical)."""
from __future__ import annotations

import shutil

import pytest
import torch

from rlpipe.errors import CheckpointError
from rlpipe.hooks import Hook
from rlpipe import checkpoints as ckpt
from rlpipe.train.run import train
from tests.helpers import LOGS, assert_same_run, newest_state, tiny as params

class Boom(Exception):
    pass


class FailAt(Hook):
    """Raises in the middle of writing a rollout's episodes (after some rows hit the files)."""

    def __init__(self, episode: int):
        self.episode = episode

    def on_episode_end(self, ep):
        if ep.episode == self.episode:
            raise Boom(f"injected failure at episode {ep.episode}")


def test_raising_episodes_continues_exactly(reference, tmp_path):
    assert train(params(train={"episodes": 8}), tmp_path, console=False) == 0
    assert newest_state(tmp_path)["episode"] == 8
    assert train(params(), tmp_path, console=False) == 0
    assert_same_run(reference, tmp_path)
    log = (tmp_path / "training_output" / "agent_training.log").read_text()
    assert "resumed from checkpoints/ckpt_ep000008.pt at episode 8" in log


@pytest.mark.parametrize("fail_at", [6, 11])
def test_crash_mid_rollout_then_resume_is_identical(reference, tmp_path, fail_at):
    with pytest.raises(Boom):
        train(params(), tmp_path, extra_hooks=[FailAt(fail_at)], console=False)
    rows = (tmp_path / "training_output" / "episodes.csv").read_text().splitlines()
    assert len(rows) - 1 >= fail_at - 1  # rows past the last checkpoint were on disk
    assert train(params(), tmp_path, console=False) == 0
    assert_same_run(reference, tmp_path)


def test_reached_target_exits_without_touching_outputs(reference, tmp_path):
    root = tmp_path / "r"
    shutil.copytree(reference, root)
    before = {p: p.read_bytes() for p in root.rglob("*") if p.is_file()}
    assert train(params(), root, console=False) == 0
    after = {p: p.read_bytes() for p in root.rglob("*") if p.is_file()}
    assert before == after


@pytest.mark.parametrize("damage", ["truncate", "zero", "random"])
def test_corrupt_newest_checkpoint_falls_back(reference, tmp_path, damage):
    root = tmp_path / "r"
    assert train(params(train={"episodes": 12}), root, console=False) == 0
    newest = ckpt.list_checkpoints(root / "checkpoints")[0][1]
    data = newest.read_bytes()
    newest.write_bytes({"truncate": data[: len(data) // 2], "zero": b"",
                        "random": bytes(range(256)) * 8}[damage])
    assert train(params(), root, console=False) == 0
    log = (root / "training_output" / "agent_training.log").read_text()
    assert "skipped checkpoint" in log and newest.name in log
    assert "resumed from checkpoints/ckpt_ep000008.pt" in log
    assert_same_run(reference, root)


def test_fingerprint_mismatch_restarts_fresh_and_says_so(tmp_path):
    assert train(params(train={"episodes": 8}), tmp_path, console=False) == 0
    assert train(params(train={"episodes": 8, "actor_lr": 0.005}), tmp_path, console=False) == 0
    log = (tmp_path / "training_output" / "agent_training.log").read_text()
    assert "not resuming" in log and "other params" in log
    rows = (tmp_path / "training_output" / "episodes.csv").read_text().splitlines()
    assert [r.split(",")[0] for r in rows[1:]] == [str(i) for i in range(1, 9)]
    archived = list((tmp_path / "checkpoints" / "archive").iterdir())
    assert len(archived) == 1 and any(archived[0].iterdir())


def test_fingerprint_mismatch_error_mode(tmp_path):
    assert train(params(train={"episodes": 8}), tmp_path, console=False) == 0
    with pytest.raises(CheckpointError, match="other params"):
        train(params(train={"episodes": 8, "actor_lr": 0.005, "on_mismatch": "error"}), tmp_path, console=False)


def test_pickled_payload_is_refused_and_never_run(tmp_path):
    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    bad = tmp_path / "checkpoints" / "ckpt_ep000099.pt"
    bad.parent.mkdir()
    torch.save({"format_version": 1, "x": Payload()}, bad)
    with pytest.raises(CheckpointError, match="refused"):
        ckpt.load_checkpoint(bad)
    assert not marker.exists()
    plan = ckpt.find_resumable(bad.parent, "whatever")
    assert plan.state is None and "refused" in plan.skipped[0]
    assert not marker.exists()


def test_store_separately_roundtrip(tmp_path, reference):
    root = tmp_path / "r"
    assert train(params(train={"episodes": 8}, checkpoint={"interval": 4, "store_separately": True}),
                 root, console=False) == 0
    folder = root / "checkpoints" / "ckpt_ep000008"
    assert folder.is_dir() and {p.name for p in folder.iterdir()} == {
        "actor.pt", "critic.pt", "actor_optim.pt", "critic_optim.pt", "state.pt"}
    assert train(params(checkpoint={"interval": 4, "store_separately": True}), root, console=False) == 0
    for name in LOGS:
        assert (root / "training_output" / name).read_bytes() == (reference / "training_output" / name).read_bytes()
