"""Shared fixtures: tiny params, a temporary git + DVC repository for end-to-end tests."""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from tests.helpers import REPO, write_params


@pytest.fixture
def tiny_params(tmp_path: Path):
    """A temporary working folder with a tiny params.yaml; returns a writer for overrides."""

    def make(overrides: dict | None = None) -> dict:
        return write_params(tmp_path / "params.yaml", overrides)

    make()
    return make


@pytest.fixture
def dvc_repo(tmp_path: Path) -> Path:
    """A fresh git + DVC repository holding this project's pipeline files and tiny params."""
    repo = tmp_path / "repo"
    repo.mkdir()
    for name in ("dvc.yaml", ".gitignore", ".dvcignore"):
        if (REPO / name).exists():
            shutil.copy(REPO / name, repo / name)
    shutil.copytree(REPO / "stages", repo / "stages", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(REPO / "src", repo / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    if (REPO / "dvc_plots_template").exists():
        shutil.copytree(REPO / "dvc_plots_template", repo / "dvc_plots_template")
    write_params(repo / "params.yaml")
    git = lambda *a: subprocess.run(["git", *a], cwd=repo, check=True, capture_output=True)
    git("init", "-q")
    git("config", "user.email", "test@rlpipe.local")
    git("config", "user.name", "rlpipe tests")
    subprocess.run(["dvc", "init", "-q"], cwd=repo, check=True, capture_output=True)
    subprocess.run(["dvc", "config", "core.analytics", "false"], cwd=repo, check=True, capture_output=True)
    git("add", "-A")
    git("commit", "-qm", "init")
    return repo
