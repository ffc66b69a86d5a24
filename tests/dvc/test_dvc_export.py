"""The export pipeline (deploy/, a DVC project of its own): the root project's commands never
see it; `dvc --cd deploy repro` exports the trained run's best checkpoint, and says it is up to
date afterwards."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from devkit.runs import SUBPROJECT_FILES
from tests.helpers import copy_repo, dvc, git, stages_ran

pytestmark = pytest.mark.dvc
pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

def test_export_pipeline_exports_the_best_checkpoint(dvc_trained_repo: Path, tmp_path: Path):
    repo = copy_repo(dvc_trained_repo, tmp_path / "repo")
    # make_dvc_repo lays out the deploy/ project (SUBPROJECT_FILES) and stages/ as committed
    for name in SUBPROJECT_FILES:
        assert (repo / "deploy" / name).is_file(), name
    assert (repo / "stages" / "export.py").is_file()
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
