"""Shared fixtures: tiny params, a temporary git + DVC repository for end-to-end tests."""
from __future__ import annotations

import fcntl
import os
from pathlib import Path

# One intra-op thread, as train's default (train.torch_threads: 1): the tests' tiny batches run
# several times slower, and burn several times the CPU, with a thread per core on a busy machine
# (measured 27 s against 6 s of CPU for tests/agents/test_algorithms.py on 2 shared cores).
# Set before anything imports torch; subprocesses (stages, dvc) inherit it.
os.environ.setdefault("OMP_NUM_THREADS", "1")

import pytest

from tests.helpers import dvc, git, make_dvc_repo, tiny, write_params


@pytest.fixture
def tiny_params(tmp_path: Path):
    """A temporary working folder with a tiny params.yaml; returns a writer for overrides."""

    def make(overrides: dict | None = None) -> dict:
        return write_params(tmp_path / "params.yaml", overrides)

    make()
    return make


@pytest.fixture
def dvc_repo(tmp_path: Path) -> Path:
    """A fresh git + DVC repository holding this project's pipeline files and tiny params
    (the project's params.yaml with TINY_PARAMS on top) and the project's .dvc/config."""
    return make_dvc_repo(tmp_path / "repo")


@pytest.fixture(scope="session")
def dvc_trained_repo(tmp_path_factory) -> Path:
    """A git + DVC repository after one tiny `dvc repro`, everything committed ("run 1").

    Shared by the whole session: never change it. Tests that change files work on a copy
    (`tests.helpers.copy_repo`).
    """
    repo = make_dvc_repo(tmp_path_factory.mktemp("dvc_trained") / "repo")
    out = dvc(repo, "repro", timeout=600)
    (repo.parent / "repro_run1.log").write_text(out.stdout + out.stderr)
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "run 1")
    return repo


@pytest.fixture(scope="session")
def reference(tmp_path_factory) -> Path:
    """One uninterrupted tiny run (16 episodes, 4 envs, checkpoints every 4), shared read-only by
    every test that compares an interrupted-and-resumed run with it."""
    from rlpipe.train.run import train

    root = tmp_path_factory.mktemp("reference")
    assert train(tiny(), root, console=False) == 0
    return root


# --- running on two cores (pytest-xdist: `-n 2 --dist loadfile` in pyproject.toml) ------------
# Each test module runs on one worker, in order (module-scoped fixtures are built once, and some
# modules' tests follow each other). Modules that start Ray (an embedded instance or a two-node
# cluster on 127.0.0.2/3) hold one lock for the whole module, so two Ray instances never share the
# 2 CPUs or the loopback addresses. (xdist's `loadgroup` would be the finer tool, but with pytest 9
# xdist 3.8 cannot rename the tests it groups, and groups nothing.)
_RAY_MODULES = ("tests/sweep/test_search.py", "tests/sweep/test_sweep_stage.py",
                "tests/sweep/test_sweep_cluster.py", "tests/dvc/test_dvc_sweep.py",
                "tests/dvc/test_dvc_search.py")


@pytest.fixture(scope="module", autouse=True)
def _one_ray_module_at_a_time(request, tmp_path_factory):
    module = Path(str(request.fspath)).resolve().relative_to(Path(__file__).resolve().parents[1])
    if module.as_posix() not in _RAY_MODULES:
        yield
        return
    base = tmp_path_factory.getbasetemp()
    shared = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base
    with open(shared / "ray-tests.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
