"""The code's shape: one-way dependencies, the environment's domain inside envs/, docs in the repo
that agree with the code (figure registry, links)."""
from __future__ import annotations

import ast
import re
from pathlib import Path

import yaml

from rlpipe.plots.registry import FIGURES, docs_table
from tests.helpers import REPO

SRC = REPO / "src" / "rlpipe"


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            out.add(node.module)
            out.update(f"{node.module}.{a.name}" for a in node.names)
    return out


def _modules(folder: str) -> list[Path]:
    return sorted((SRC / folder).rglob("*.py"))


def test_hooks_never_import_the_trainer_package():
    for path in _modules("hooks"):
        bad = [m for m in _imports(path) if m == "rlpipe.train" or m.startswith("rlpipe.train.")]
        assert not bad, f"{path.relative_to(REPO)} imports {bad}"


def test_train_imports_hook_implementations_only_where_the_run_is_assembled():
    for path in _modules("train"):
        hooks = [m for m in _imports(path) if m.startswith("rlpipe.hooks")]
        if path.name == "run.py":
            continue
        assert not hooks, f"{path.relative_to(REPO)} imports {hooks}"


def test_envs_and_agents_know_nothing_of_hooks_or_the_trainer():
    for folder in ("envs", "agents"):
        for path in _modules(folder):
            bad = [m for m in _imports(path)
                   if m.startswith(("rlpipe.hooks", "rlpipe.train", "rlpipe.events"))]
            assert not bad, f"{path.relative_to(REPO)} imports {bad}"


# names of the built-in environment's domain: its id, module, feature names, oracle, node kinds
DOMAIN = re.compile(r"GraphDeploy|graph_deploy|is_cloud|oracle_action|oracle_best|make_probe|"
                    r"latency_ratio|util_after|cloud_node|edge_node")


def test_no_module_outside_envs_names_the_built_in_environment():
    for path in SRC.rglob("*.py"):
        if "envs" in path.relative_to(SRC).parts:
            continue
        hits = DOMAIN.findall(path.read_text())
        assert not hits, f"{path.relative_to(REPO)} names {sorted(set(hits))}"


def test_source_modules_stay_small():
    big = {p.relative_to(REPO).as_posix(): n for p in SRC.rglob("*.py")
           if (n := len(p.read_text().splitlines())) > 450}
    assert not big, big


def _module_name(path: Path) -> str:
    parts = path.relative_to(SRC.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _module_imports(path: Path, modules: set[str]) -> set[str]:
    """The package's modules ``path`` imports (``from pkg import sub``: ``pkg.sub``, and ``pkg``
    only for names that are not modules)."""
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names if a.name in modules)
        elif isinstance(node, ast.ImportFrom) and node.module in modules:
            subs = {f"{node.module}.{a.name}" for a in node.names}
            out |= subs & modules
            if subs - modules:
                out.add(node.module)
    return out


def import_circle(src: Path) -> list[str] | None:
    """One circle of imports among the modules under ``src`` (function-level imports count)."""
    files = {_module_name(p): p for p in src.rglob("*.py")}
    graph = {name: sorted(_module_imports(p, set(files)) - {name}) for name, p in files.items()}
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(name: str, path: list[str]) -> list[str] | None:
        state[name] = 1
        for m in graph[name]:
            if state.get(m) == 1:
                here = path + [name]
                return here[here.index(m):] + [m]
            if m not in state and (found := visit(m, path + [name])):
                return found
        state[name] = 2
        return None

    for name in sorted(graph):
        if name not in state and (found := visit(name, [])):
            return found
    return None


def test_no_import_circles():
    circle = import_circle(SRC)
    assert circle is None, "import circle: " + " -> ".join(circle)


def test_bench_holds_benchmarks_only_and_imports_no_tests():
    """bench/: the harness (run.py, bench_common.py), bench_*.py and their params files; what is
    run by hand but measures nothing lives in scripts/; shared helpers in devkit/."""
    bench = REPO / "bench"
    for path in bench.iterdir():
        if path.name == "__pycache__":
            continue
        assert re.fullmatch(r"run\.py|bench_\w+\.py|params_\w+\.yaml", path.name), \
            f"bench/{path.name} is not a benchmark (scripts/ holds the rest)"
    for folder in ("bench", "scripts", "devkit"):
        for path in sorted((REPO / folder).rglob("*.py")):
            bad = [m for m in _imports(path) if m == "tests" or m.startswith("tests.")]
            assert not bad, f"{path.relative_to(REPO)} imports {bad}"


def test_figure_docs_are_generated_from_the_registry():
    text = (REPO / "docs" / "FIGURES.md").read_text()
    assert docs_table() in text


def test_dvc_yaml_declares_every_registered_figure_file():
    doc = yaml.safe_load((REPO / "dvc.yaml").read_text())
    declared = set()
    for entry in doc["plots"]:
        declared.update([entry] if isinstance(entry, str) else entry)
    for spec in FIGURES:
        for out in spec.outputs:
            assert f"plots/{out}" in declared, out


def test_docs_link_only_inside_the_repository():
    for md in [REPO / "README.md", *(REPO / "docs").glob("*.md")]:
        for target in re.findall(r"\]\(([^)#\s]+)", md.read_text()):
            if target.startswith(("http://", "https://")):
                continue
            resolved = (md.parent / target).resolve()
            assert resolved.is_relative_to(REPO.resolve()), f"{md.name} links outside: {target}"
            assert resolved.exists(), f"{md.name} links to a missing file: {target}"
