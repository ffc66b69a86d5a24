"""Stage deps from the code: the repository files each DVC stage imports, and the deps that cover them.

A stage is stale when a file it runs changes, so its ``deps`` in ``dvc.yaml`` must cover the
transitive imports of its entry script inside the repository, and nothing more (an extra dep
reruns the stage for nothing: editing ``plots/`` must never retrain). This module computes that
set statically (``ast``), so the test that keeps ``dvc.yaml`` honest and the baseline digest read
one answer:

- ``import a.b``, ``from a.b import c`` (``c`` a submodule or a name), relative imports, and
  imports inside functions (lazy imports run too) all count;
- a string ``"rlpipe.x.y"`` or ``"rlpipe.x.y:name"`` counts: the stage runner, gymnasium's
  ``entry_point`` and ``importlib`` load modules by such strings;
- importing ``a.b.c`` runs ``a/__init__.py`` and ``a/b/__init__.py`` too.

Usage (from the repository root)::

    python tools/stage_deps.py            # each stage: its closure and the deps that cover it
    python tools/stage_deps.py --check    # exit 1 naming every missing or extra dep
    python tools/stage_deps.py --write    # rewrite the code deps of every stage to its cover
"""
from __future__ import annotations

import ast
import re
import sys
from dataclasses import dataclass
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
#: where importable code lives: the library under src/, a user's env module at the root
SOURCE_ROOTS = ("src", ".")
#: the pipelines whose stages are checked (paths in a dvc.yaml are relative to its folder)
PIPELINES = ("dvc.yaml", "sweeps/dvc.yaml", "deploy/dvc.yaml")
_MODULE_STRING = re.compile(r"rlpipe(\.\w+)+(:\w*)?")  # "module:name", or its "module:" prefix


def _module_file(name: str, root: Path) -> Path | None:
    """The file that defines module ``name`` (``a.b`` -> ``a/b.py`` or ``a/b/__init__.py``)."""
    for src in SOURCE_ROOTS:
        base = root / src / Path(*name.split("."))
        for candidate in (base / "__init__.py", base.with_suffix(".py")):
            if candidate.is_file():
                return candidate
    return None


def _package_of(path: Path, root: Path) -> list[str]:
    """The dotted package a file belongs to (``src/rlpipe/hooks/x.py`` -> ``rlpipe.hooks``)."""
    for src in SOURCE_ROOTS:
        try:
            rel = path.resolve().relative_to((root / src).resolve())
        except ValueError:
            continue
        parts = list(rel.parts[:-1])
        if parts and all((root / src / Path(*parts[:i + 1]) / "__init__.py").is_file()
                         for i in range(len(parts))):
            return parts
    return []


def imported_names(path: Path, root: Path = ROOT) -> set[str]:
    """Dotted module names (and ``module.name`` candidates) that ``path`` imports."""
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                package = _package_of(path, root)
                base = package[:len(package) - (node.level - 1)] if node.level > 1 else package
                module = ".".join([*base, *([node.module] if node.module else [])])
            else:
                module = node.module or ""
            if module:
                names.add(module)
                names.update(f"{module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) \
                and _MODULE_STRING.fullmatch(node.value):
            names.add(node.value.split(":")[0])
    return names


def import_closure(entry: Path, root: Path = ROOT) -> set[Path]:
    """Every repository file that running ``entry`` may execute (``entry`` included)."""
    seen: set[Path] = {entry.resolve()}
    todo = [entry.resolve()]
    while todo:
        for name in imported_names(todo.pop(), root):
            parts = name.split(".")
            for i in range(1, len(parts) + 1):      # a module's packages run their __init__ too
                found = _module_file(".".join(parts[:i]), root)
                if found is not None and found.resolve() not in seen:
                    seen.add(found.resolve())
                    todo.append(found.resolve())
    return seen


@dataclass(frozen=True)
class StageDeps:
    pipeline: str          # dvc.yaml path, relative to the repository root
    stage: str
    closure: frozenset     # files (repository-relative posix paths) the stage runs
    listed: tuple          # its code deps in dvc.yaml (repository-relative posix paths)

    @property
    def missing(self) -> list[str]:
        """Files the stage runs that no listed dep covers (editing them would not rerun it)."""
        return sorted(f for f in self.closure
                      if not any(f == d or f.startswith(d + "/") for d in self.listed))

    def extra(self, root: Path = ROOT) -> list[str]:
        """Listed code deps holding a Python file the stage never runs (editing it reruns the
        stage for nothing)."""
        out = []
        for d in self.listed:
            p = root / d
            files = [f.relative_to(root).as_posix() for f in sorted(p.rglob("*.py"))] \
                if p.is_dir() else [d]
            if any(f not in self.closure for f in files):
                out.append(d)
        return out

    def cover(self, root: Path = ROOT) -> list[str]:
        """The smallest deps list naming the closure: a folder where the stage runs all of its
        Python files, else the files."""
        chosen: list[str] = []
        for f in sorted(self.closure):
            if any(f.startswith(c + "/") for c in chosen):
                continue
            best = f
            parent = Path(f).parent
            while parent != Path(".") and parent.as_posix() not in ("src", "stages"):
                files = {g.relative_to(root).as_posix() for g in (root / parent).rglob("*.py")}
                if not files <= self.closure:
                    break
                best = parent.as_posix()
                parent = parent.parent
            chosen.append(best)
        return sorted(set(chosen))


def _is_code(dep: str) -> bool:
    return dep.endswith(".py") or dep.startswith(("src/", "stages/")) or dep in ("src", "stages")


def stage_deps(root: Path = ROOT) -> list[StageDeps]:
    """Each stage of :data:`PIPELINES` whose command runs a Python script of the repository."""
    found = []
    for pipeline in PIPELINES:
        path = root / pipeline
        if not path.is_file():
            continue
        folder = path.parent
        for name, stage in (yaml.safe_load(path.read_text()).get("stages") or {}).items():
            wdir = folder / stage.get("wdir", ".")
            scripts = [w for w in str(stage.get("cmd", "")).split() if w.endswith(".py")]
            if not scripts:
                continue
            entry = (wdir / scripts[0]).resolve()
            closure = frozenset(p.relative_to(root.resolve()).as_posix()
                                for p in import_closure(entry, root))
            listed = []
            for dep in stage.get("deps") or []:
                rel = (wdir / str(dep)).resolve().relative_to(root.resolve()).as_posix()
                if _is_code(rel):
                    listed.append(rel.rstrip("/"))
            found.append(StageDeps(pipeline, name, closure, tuple(listed)))
    return found


def _relative(dep: str, pipeline: str) -> str:
    """A repository-relative path as written in ``pipeline`` (its folder is the stage's wdir)."""
    depth = len(Path(pipeline).parent.parts)
    return "../" * depth + dep


_CODE_LINE = re.compile(r"^(\s+)- (\.\./)*(src|stages)(/\S*)?\s*(#.*)?$")


def write_covers(root: Path = ROOT) -> list[str]:
    """Replace the code deps of each stage in its dvc.yaml by :meth:`StageDeps.cover` (other
    deps and comments stay); returns the pipelines it changed."""
    changed = []
    by_pipeline: dict[str, dict[str, list[str]]] = {}
    for s in stage_deps(root):
        by_pipeline.setdefault(s.pipeline, {})[s.stage] = [_relative(d, s.pipeline)
                                                           for d in s.cover(root)]
    for pipeline, covers in by_pipeline.items():
        path = root / pipeline
        lines = path.read_text().split("\n")
        out, stage, in_deps, written = [], None, False, False
        for line in lines:
            stage_match = re.match(r"^  (\w[\w-]*):\s*$", line)
            if stage_match:
                stage, in_deps, written = stage_match.group(1), False, False
            elif re.match(r"^    \w", line):
                in_deps = line.strip() == "deps:"
            code = _CODE_LINE.match(line)
            if in_deps and stage in covers and code:
                if not written:
                    out += [f"{code.group(1)}- {d}" for d in covers[stage]]
                    written = True
                continue
            out.append(line)
        text = "\n".join(out)
        if text != path.read_text():
            path.write_text(text)
            changed.append(pipeline)
    return changed


def main(argv: list[str]) -> int:
    if "--write" in argv:
        for pipeline in write_covers():
            print(f"rewrote the code deps of {pipeline}")
        return 0
    bad = 0
    for s in stage_deps():
        missing, extra = s.missing, s.extra()
        if "--check" in argv:
            for f in missing:
                print(f"{s.pipeline}: stage {s.stage} runs {f}, which its deps do not cover")
            for d in extra:
                print(f"{s.pipeline}: stage {s.stage} lists {d}, which holds files it never runs")
            bad += len(missing) + len(extra)
            continue
        print(f"{s.pipeline} {s.stage}: runs {len(s.closure)} files; deps that cover them:")
        for d in s.cover():
            print(f"      - {_relative(d, s.pipeline)}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
