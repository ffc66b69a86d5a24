"""Fault suite, checkpoints: an older format version, pickled code placed as the newest
checkpoint of a real run, in a store_separately folder and in best.pt.

Already covered in tests/train/test_resume.py (not repeated here): a truncated, zero-byte or
random-bytes newest checkpoint (test_corrupt_newest_checkpoint_falls_back), a checkpoint of other
params (test_fingerprint_mismatch_*), and load_checkpoint refusing a payload file on its own
(test_pickled_payload_is_refused_and_never_run).
"""
from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import torch

from rlpipe.config import fingerprint
from rlpipe.errors import CheckpointError
from rlpipe import checkpoints as ckpt
from rlpipe.train.run import train
from tests.helpers import PYTHON, REPO, assert_same_run, log_text, tiny as params

@pytest.fixture(scope="module")
def run_to_12(tmp_path_factory) -> Path:
    """A real run folder stopped at episode 12 (checkpoints 4, 8, 12); tests work on copies."""
    root = tmp_path_factory.mktemp("run12")
    assert train(params(train={"episodes": 12}), root, console=False) == 0
    return root


@pytest.fixture
def run12(run_to_12, tmp_path) -> Path:
    root = tmp_path / "run"
    shutil.copytree(run_to_12, root)
    return root


class Payload:
    """Unpickling this runs code: it creates ``marker``."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return (exec, (f"open({self.marker!r}, 'w').close()",))


def test_older_format_version_is_skipped_with_a_warning(run12, reference):
    newest = run12 / "checkpoints" / "ckpt_ep000012.pt"
    state = ckpt.load_checkpoint(newest)
    state["format_version"] = 0
    torch.save(state, newest)
    with pytest.raises(CheckpointError, match="format version 0 is not supported"):
        ckpt.load_checkpoint(newest)
    assert train(params(), run12, console=False) == 0
    log = log_text(run12)
    assert re.search(r"WARNING rlpipe: skipped checkpoint: \S*ckpt_ep000012\.pt: checkpoint format "
                     r"version 0 is not supported \(this rlpipe reads version 1\)", log), log
    assert "resumed from checkpoints/ckpt_ep000008.pt at episode 8" in log
    assert_same_run(reference, run12)


def test_pickled_code_as_newest_checkpoint_is_refused_and_never_run(run12, reference, tmp_path):
    """A full checkpoint (the real state of episode 12, relabelled episode 16) that also carries
    a payload: refused as a whole, its code never runs, the next older checkpoint is used."""
    marker = tmp_path / "payload_ran"
    state = ckpt.load_checkpoint(run12 / "checkpoints" / "ckpt_ep000012.pt")
    state["episode"] = 16
    state["stats"]["extra"] = Payload(marker)
    bad = run12 / "checkpoints" / "ckpt_ep000016.pt"
    torch.save(state, bad)
    assert train(params(), run12, console=False) == 0
    assert not marker.exists()
    log = log_text(run12)
    assert re.search(r"skipped checkpoint: \S*ckpt_ep000016\.pt: refused: the file holds pickled "
                     r"Python objects or code", log), log
    assert "resumed from checkpoints/ckpt_ep000012.pt at episode 12" in log
    assert_same_run(reference, run12)        # the payload file was replaced by the real episode 16


def test_pickled_code_in_a_store_separately_folder_is_refused(tmp_path):
    marker = tmp_path / "payload_ran"
    p = params(train={"episodes": 8}, checkpoint={"interval": 4, "store_separately": True})
    assert train(p, tmp_path, console=False) == 0
    folder = tmp_path / "checkpoints" / "ckpt_ep000008"
    actor = torch.load(folder / "actor.pt", weights_only=True)
    torch.save({**actor, "_hook": Payload(marker)}, folder / "actor.pt")
    with pytest.raises(CheckpointError, match="actor.pt: refused"):
        ckpt.load_checkpoint(folder)
    plan = ckpt.find_resumable(tmp_path / "checkpoints", fingerprint(p))
    assert plan.path is not None and plan.path.name == "ckpt_ep000004"
    assert len(plan.skipped) == 1 and "actor.pt: refused" in plan.skipped[0]
    assert not marker.exists()


@pytest.mark.parametrize("command", ["inspect", "evaluate"])
def test_cli_refuses_pickled_best_pt(tmp_path, command):
    marker = tmp_path / "payload_ran"
    best = tmp_path / "best.pt"
    torch.save({"format_version": 1, "actor": Payload(marker)}, best)
    args = [str(best)] if command == "inspect" else ["--checkpoint", str(best), "--episodes", "1"]
    proc = subprocess.run([PYTHON, "-m", "rlpipe.cli", command, *args], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    assert "refused: the file holds pickled Python objects or code" in proc.stderr
    assert not marker.exists()


def test_no_unsafe_load_in_the_library():
    """Every torch.load in the library passes weights_only=True; np.load never allows pickle."""
    for path in (REPO / "src" / "rlpipe").rglob("*.py"):
        text = path.read_text()
        for m in re.finditer(r"torch\.load\(([^)]*)\)", text):
            assert "weights_only=True" in m.group(1), f"{path}: {m.group(0)}"
        for m in re.finditer(r"np\.load\(([^)]*)\)", text):
            assert "allow_pickle=False" in m.group(1), f"{path}: {m.group(0)}"
