"""The export pipeline (deploy/dvc.yaml): plain `dvc repro` never runs it; `dvc repro
deploy/dvc.yaml` exports the trained run's best checkpoint without retraining."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.helpers import REPO, copy_repo, dvc, stages_ran, stages_skipped

pytestmark = pytest.mark.dvc
pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")


def test_export_pipeline_exports_the_best_checkpoint(dvc_trained_repo: Path, tmp_path: Path):
    repo = copy_repo(dvc_trained_repo, tmp_path / "repo")
    shutil.copytree(REPO / "deploy", repo / "deploy", ignore=shutil.ignore_patterns("dvc.lock"))
    plain = dvc(repo, "repro")
    assert stages_ran(plain.stdout) == [] and not (repo / "policy").exists(), plain.stdout
    out = dvc(repo, "repro", "deploy/dvc.yaml", timeout=300)
    assert stages_ran(out.stdout) == ["deploy/dvc.yaml:export"], out.stdout
    assert stages_skipped(out.stdout) == ["train"], out.stdout
    meta = json.loads((repo / "policy" / "metadata.json").read_text())
    assert meta["checkpoint"]["path"] == "checkpoints/best.pt"
    assert meta["parity"]["greedy_actions_differing"] == 0
    from rlpipe.inference import load_policy

    assert load_policy(repo / "policy").kind == "graph"
