"""The committed baseline (the git-tracked outputs of the default run: metrics.json,
data/plots/*.csv, live/*) keeps a fresh clone's `dvc metrics show/diff` and `dvc plots diff HEAD`
working, and has the shape the current code writes."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml

from tests.helpers import REPO, dvc, git, make_dvc_repo

pytestmark = pytest.mark.dvc


def keys(doc, prefix: str = "") -> set[str]:
    """Dotted key paths of a JSON document (what `dvc metrics` shows as metric names)."""
    if not isinstance(doc, dict):
        return {prefix}
    return {k for name, value in doc.items() for k in keys(value, f"{prefix}{name}.")}


def header(path: Path) -> str:
    return path.read_text().split("\n", 1)[0]


def git_tracked_outputs() -> list[str]:
    """Every output and metrics file of dvc.yaml with `cache: false` (git-tracked)."""
    found = []
    for stage in yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"].values():
        for entry in [*stage.get("outs", []), *stage.get("metrics", [])]:
            if isinstance(entry, dict):
                (path, opts), = entry.items()
                if opts.get("cache") is False:
                    found.append(path)
    return found


def test_every_git_tracked_output_has_a_committed_baseline():
    """A fresh clone must hold each one, or `dvc metrics show` / `dvc metrics diff` print
    "failed to load some metrics" and `dvc plots diff HEAD` has no HEAD side."""
    tracked = git_tracked_outputs()
    assert {"metrics.json", "data/plots"} <= set(tracked), tracked
    for path in tracked:
        target = REPO / path
        assert target.is_file() or (target.is_dir() and any(target.iterdir())), path


def test_every_pipeline_metrics_file_has_a_committed_baseline():
    """dvc reads the metrics of every dvc.yaml of the root DVC project; sweeps/ is a DVC project
    of its own (its own .dvc/), which the root commands never read."""
    assert (REPO / "sweeps" / ".dvc" / "config").is_file()
    missing = []
    for dvc_yaml in sorted(REPO.glob("**/dvc.yaml")):
        if ".dvc" in dvc_yaml.parts or "tests" in dvc_yaml.parts:
            continue
        if any((parent / ".dvc").is_dir() for parent in dvc_yaml.parents
               if parent != REPO and REPO in parent.parents):
            continue  # a DVC subproject
        for stage in (yaml.safe_load(dvc_yaml.read_text()).get("stages") or {}).values():
            for entry in stage.get("metrics", []):
                path = next(iter(entry)) if isinstance(entry, dict) else entry
                if not (dvc_yaml.parent / path).is_file():
                    missing.append((dvc_yaml.parent / path).relative_to(REPO).as_posix())
    assert not missing, missing


def files_of(path: Path) -> list[Path]:
    return sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]


def test_baseline_is_the_default_run_in_the_current_shape(dvc_trained_repo: Path):
    """Same files, JSON keys and CSV headers as what the current code writes (a tiny run here):
    a change of summarize or of the live files must refresh the baseline."""
    for path in git_tracked_outputs():
        ours, fresh = files_of(REPO / path), files_of(dvc_trained_repo / path)
        assert [p.name for p in ours] == [p.name for p in fresh], path
        for a, b in zip(ours, fresh):
            if a.suffix == ".json":
                assert keys(json.loads(a.read_text())) == keys(json.loads(b.read_text())), a
            else:
                assert header(a) == header(b), a
    base = json.loads((REPO / "metrics.json").read_text())
    params = yaml.safe_load((REPO / "params.yaml").read_text())["train"]
    assert base["run"]["episodes"] == params["episodes"] and base["run"]["resumed_count"] == 0


def test_fresh_clone_diffs_against_the_baseline(dvc_trained_repo: Path, tmp_path: Path):
    repo = make_dvc_repo(tmp_path / "repo")
    for path in git_tracked_outputs():
        copy = shutil.copytree if (REPO / path).is_dir() else shutil.copy
        (repo / path).parent.mkdir(parents=True, exist_ok=True)
        copy(REPO / path, repo / path)
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "baseline")
    shown = dvc(repo, "metrics", "show")
    assert "failed" not in (shown.stdout + shown.stderr).lower(), shown.stdout + shown.stderr
    # a run in the workspace (here: the tiny run's files) against the committed baseline
    for path in git_tracked_outputs():
        if (repo / path).is_file():
            shutil.copy(dvc_trained_repo / path, repo / path)
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
