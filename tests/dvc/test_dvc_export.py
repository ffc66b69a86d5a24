"""The export pipeline (deploy/, a DVC project of its own): the root project's commands never
see it; `dvc --cd deploy repro` exports the trained run's best checkpoint, and says it is up to
date afterwards."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.helpers import REPO, copy_repo, dvc, git, stages_ran

pytestmark = pytest.mark.dvc
pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

#: the files of the export pipeline's DVC project (deploy/), as committed
DEPLOY_FILES = ("dvc.yaml", ".gitignore", ".dvcignore", ".dvc/config", ".dvc/.gitignore")


def test_export_pipeline_exports_the_best_checkpoint(dvc_trained_repo: Path, tmp_path: Path):
    repo = copy_repo(dvc_trained_repo, tmp_path / "repo")
    for name in DEPLOY_FILES:
        (repo / "deploy" / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(REPO / "deploy" / name, repo / "deploy" / name)
    shutil.copy(REPO / "stages" / "export.py", repo / "stages" / "export.py")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "export pipeline")
    status = dvc(repo, "status").stdout
    assert "Data and pipelines are up to date." in status and "export" not in status, status
    out = dvc(repo, "--cd", "deploy", "repro", timeout=300)
    assert stages_ran(out.stdout) == ["export"], out.stdout + out.stderr
    meta = json.loads((repo / "deploy" / "policy" / "metadata.json").read_text())
    assert meta["checkpoint"]["path"] == "../checkpoints/best.pt"
    assert meta["parity"]["greedy_actions_differing"] == 0
    assert "Data and pipelines are up to date." in dvc(repo, "--cd", "deploy", "status").stdout
    assert "policy" not in git(repo, "status", "--porcelain").stdout  # deploy/.gitignore
    from rlpipe.inference import load_policy

    assert load_policy(repo / "deploy" / "policy").kind == "graph"
