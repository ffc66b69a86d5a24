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


# --- running on two cores (pytest-xdist: `-n 2 --dist loadgroup` in pyproject.toml) -----------
# Each test module runs on one worker, in order (module-scoped fixtures are built once, and some
# modules' tests follow each other); modules that share a session fixture run on one worker, so
# the fixture is built once; modules that start Ray (an embedded instance or a two-node cluster on
# 127.0.0.2/3) run one after another on one worker, and hold a lock besides, so two Ray instances
# never share the 2 CPUs or the loopback addresses.
_SESSION_FIXTURES = ("dvc_trained_repo", "reference")
_RAY_MODULES = ("tests/sweep/test_search.py", "tests/sweep/test_sweep_stage.py",
                "tests/sweep/test_sweep_cluster.py", "tests/dvc/test_dvc_sweep.py",
                "tests/dvc/test_dvc_search.py")


def _module(path) -> str:
    return Path(str(path)).resolve().relative_to(Path(__file__).resolve().parents[1]).as_posix()


def _set_group(item, group: str) -> None:
    """xdist's loadgroup reads a group from a ``@group`` suffix of the test id. xdist 3.8 writes
    it to ``item._nodeid``, which pytest 9 no longer reads (ids are ``item._id``), so do it here."""
    item.add_marker(pytest.mark.xdist_group(group))
    node_id = getattr(item, "_id", None)
    if node_id is not None and "@" not in str(node_id):
        item._id = type(node_id).parse(f"{node_id}@{group}")


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config, items):
    if not getattr(config.option, "loadgroup", False):  # set in xdist workers (--dist loadgroup)
        return
    by_module: dict[str, list] = {}
    for item in items:
        by_module.setdefault(_module(item.fspath), []).append(item)
    for module, tests in by_module.items():
        used = {f for t in tests for f in getattr(t, "fixturenames", ())}
        if module in _RAY_MODULES or any(t.get_closest_marker("ray_cluster") for t in tests):
            group = "ray"
        else:
            group = next((f for f in _SESSION_FIXTURES if f in used), module)
        for t in tests:
            _set_group(t, group)


@pytest.fixture(scope="module", autouse=True)
def _one_ray_module_at_a_time(request, tmp_path_factory):
    if _module(request.fspath) not in _RAY_MODULES:
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
