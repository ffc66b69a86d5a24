"""The committed baseline (metrics.json and data/plots/*.csv of the default run) keeps a fresh
clone's `dvc metrics diff` / `dvc plots diff HEAD` working, and has the shape summarize writes."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml

from rlpipe.summarize.series import SERIES_FILES
from tests.helpers import REPO, dvc, git, make_dvc_repo

pytestmark = pytest.mark.dvc


def keys(doc: dict) -> set[str]:
    return {f"{group}.{key}" for group, values in doc.items() for key in values}


def header(path: Path) -> str:
    return path.read_text().split("\n", 1)[0]


def test_baseline_is_the_default_run_in_the_current_shape(dvc_trained_repo: Path):
    base = json.loads((REPO / "metrics.json").read_text())
    fresh = json.loads((dvc_trained_repo / "metrics.json").read_text())
    assert keys(base) == keys(fresh)  # a summarize change must refresh the baseline
    params = yaml.safe_load((REPO / "params.yaml").read_text())["train"]
    assert base["run"]["episodes"] == params["episodes"] and base["run"]["resumed_count"] == 0
    for name in SERIES_FILES:
        assert header(REPO / "data" / "plots" / name) == \
            header(dvc_trained_repo / "data" / "plots" / name), name


def test_fresh_clone_diffs_against_the_baseline(dvc_trained_repo: Path, tmp_path: Path):
    repo = make_dvc_repo(tmp_path / "repo")
    shutil.copy(REPO / "metrics.json", repo / "metrics.json")
    shutil.copytree(REPO / "data" / "plots", repo / "data" / "plots")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "baseline")
    shown = dvc(repo, "metrics", "show", "--json").stdout
    assert "error" not in shown.lower(), shown
    # a run in the workspace (here: the tiny run's files) against the committed baseline
    shutil.copy(dvc_trained_repo / "metrics.json", repo / "metrics.json")
    out = dvc(repo, "metrics", "diff", "HEAD", "--json")
    assert "failed" not in (out.stdout + out.stderr).lower(), out.stderr
    diff = json.loads(out.stdout)["metrics.json"]
    assert diff["run.episodes"]["old"] == json.loads((REPO / "metrics.json").read_text())["run"]["episodes"]
    # the vega plots read the committed series (the images are DVC outputs: not in a fresh clone)
    shutil.rmtree(repo / "data" / "plots")
    shutil.copytree(dvc_trained_repo / "data" / "plots", repo / "data" / "plots")
    plots = json.loads(dvc(repo, "plots", "diff", "HEAD", "--json").stdout)
    errors = [e for e in plots.get("errors", []) if e["source"].startswith("data/plots")]
    assert not errors, errors
    data = plots.get("data", plots)
    series = [name for e in yaml.safe_load((repo / "dvc.yaml").read_text())["plots"]
              if isinstance(e, dict) for name, cfg in e.items()
              if all(src.startswith("data/plots/") for src in cfg["y"])]
    assert len(series) >= 5, series
    for name in series:  # every plot of the summarize series has both revisions' lines
        revs = {v["rev"] for v in data[name][0]["content"]["data"]["values"]}
        assert revs == {"HEAD", "workspace"}, (name, revs)
