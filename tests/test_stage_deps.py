"""Only stale stages rerun, and every stale stage does: each stage's code deps in dvc.yaml (and
sweeps/dvc.yaml) are exactly the repository files its script imports (tools/stage_deps.py)."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import PYTHON, REPO, copy_repo, dvc, git
from tools.stage_deps import StageDeps, import_closure, imported_names, stage_deps, write_covers

STAGES = {(s.pipeline, s.stage): s for s in stage_deps()}


def test_every_pipeline_stage_is_checked():
    assert {("dvc.yaml", "train"), ("dvc.yaml", "summarize"), ("dvc.yaml", "visualize"),
            ("sweeps/dvc.yaml", "sweep"), ("deploy/dvc.yaml", "export")} <= set(STAGES)


@pytest.mark.parametrize("key", sorted(STAGES), ids=lambda k: f"{k[0]}:{k[1]}")
def test_stage_deps_cover_exactly_what_the_stage_imports(key):
    s = STAGES[key]
    assert not s.missing, (f"{s.pipeline}: stage {s.stage} runs {s.missing}, which its deps do "
                           "not cover; run `python tools/stage_deps.py --write`")
    assert not s.extra(), (f"{s.pipeline}: stage {s.stage} lists {s.extra()}, which hold files "
                           "it never runs; run `python tools/stage_deps.py --write`")


def test_train_never_runs_the_figures_or_the_summaries():
    train = STAGES[("dvc.yaml", "train")].closure
    assert not [f for f in train if f.startswith(("src/rlpipe/plots/", "src/rlpipe/summarize/"))]


def test_the_closure_follows_every_kind_of_import(tmp_path: Path):
    """Lazy imports inside functions, relative imports, ``from a import submodule`` and
    ``"module:function"`` strings all count; a package's ``__init__`` runs with its modules."""
    pkg = tmp_path / "src" / "rlpipe"
    (pkg / "sub").mkdir(parents=True)
    for rel, text in {
        "__init__.py": "",
        "sub/__init__.py": "",
        "sub/a.py": "from . import b\n",
        "sub/b.py": "def f():\n    import rlpipe.lazy\n",
        "lazy.py": "RUN = 'rlpipe.by_string:main'\n",
        "by_string.py": "PREFIX = 'rlpipe.prefix:'\n",
        "prefix.py": "",
        "never.py": "",
    }.items():
        (pkg / rel).write_text(text)
    entry = tmp_path / "entry.py"
    entry.write_text("from rlpipe.sub import a\n")
    found = {p.relative_to(tmp_path.resolve()).as_posix() for p in import_closure(entry, tmp_path)}
    assert found == {"entry.py", *(f"src/rlpipe/{f}" for f in (
        "__init__.py", "sub/__init__.py", "sub/a.py", "sub/b.py", "lazy.py", "by_string.py",
        "prefix.py"))}
    assert "rlpipe.sub.a" in imported_names(entry, tmp_path)


def test_missing_and_extra_deps_are_named():
    s = StageDeps("dvc.yaml", "x", frozenset({"src/rlpipe/a.py", "src/rlpipe/hooks/b.py"}),
                  ("src/rlpipe/a.py", "src/rlpipe/plots"))
    assert s.missing == ["src/rlpipe/hooks/b.py"]
    assert s.extra() == ["src/rlpipe/plots"]


def test_write_covers_keeps_other_deps_and_comments(tmp_path: Path):
    shutil.copytree(REPO / "src", tmp_path / "src", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(REPO / "stages", tmp_path / "stages")
    (tmp_path / "dvc.yaml").write_text(
        "stages:\n  summarize:\n    cmd: python stages/summarize.py\n    deps:\n"
        "      - src/rlpipe   # too much\n      - training_output   # the CSVs\n"
        "    params:\n      - summarize\n")
    assert write_covers(tmp_path) == ["dvc.yaml"]
    text = (tmp_path / "dvc.yaml").read_text()
    assert "      - training_output   # the CSVs\n" in text and "src/rlpipe   #" not in text
    (s,) = stage_deps(tmp_path)
    assert not s.missing and not s.extra(tmp_path)


def test_check_command_exits_zero_on_this_checkout():
    p = subprocess.run([PYTHON, str(REPO / "tools" / "stage_deps.py"), "--check"], cwd=REPO,
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stdout + p.stderr


def _changed_deps(repo: Path) -> dict[str, set[str]]:
    """{stage: deps that `dvc status` reports as changed}."""
    out = json.loads(dvc(repo, "status", "--json").stdout or "{}")
    changed: dict[str, set[str]] = {}
    for stage, entries in out.items():
        name = stage.split(":")[-1]
        for entry in entries:
            if isinstance(entry, dict) and "changed deps" in entry:
                changed.setdefault(name, set()).update(entry["changed deps"])
    return changed


@pytest.mark.dvc
def test_real_dvc_reruns_a_stage_for_every_file_it_imports(dvc_trained_repo, tmp_path: Path):
    """Append a comment to every file any stage of dvc.yaml runs: `dvc status` reports each stage
    changed through deps that cover each of its files. Then edit only the modules that visualize
    alone runs: only visualize is stale."""
    repo = copy_repo(dvc_trained_repo, tmp_path / "repo")
    stages = {s.stage: s for s in stage_deps(repo) if s.pipeline == "dvc.yaml"}
    assert set(stages) >= {"train", "summarize", "visualize"}
    for f in sorted(set().union(*(s.closure for s in stages.values()))):
        with open(repo / f, "a") as fh:
            fh.write("\n# edited\n")
    changed = _changed_deps(repo)
    for name, s in stages.items():
        uncovered = [f for f in s.closure if not any(
            f == d or f.startswith(d.rstrip("/") + "/") for d in changed.get(name, ()))]
        assert not uncovered, f"dvc status does not report {name} changed for {uncovered}"

    git(repo, "checkout", "--", "src", "stages")
    assert _changed_deps(repo) == {}
    others = stages["train"].closure | stages["summarize"].closure
    plots_only = sorted(stages["visualize"].closure - others)
    assert any(f.startswith("src/rlpipe/plots/") for f in plots_only)
    for f in plots_only:
        with open(repo / f, "a") as fh:
            fh.write("\n# edited\n")
    assert set(_changed_deps(repo)) == {"visualize"}


if __name__ == "__main__":  # pragma: no cover
    sys.exit(pytest.main([__file__, "-q"]))
