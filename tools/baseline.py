"""The committed default-run baseline, and a record of what produced it (``baseline.json``).

A fresh clone carries the git-tracked outputs of the default run (every ``cache: false`` output
and metrics file of ``dvc.yaml``: ``metrics.json``, ``data/plots/``, ``live/`` ...), so that
``dvc metrics diff HEAD`` and ``dvc plots diff HEAD`` have a baseline from the first run on.
A baseline made by other code or other params is wrong without looking wrong, so
``baseline.json`` records what made it: for every stage that writes a baseline file (and the
stages upstream of it) a digest of each file the stage runs (its import closure,
tools/stage_deps.py) and of the params it reads, and the machine (CPU model, the vector
instructions torch used, library versions). tests/test_baseline.py fails when the code or the
default params changed since, naming what changed and this command:

    python tools/baseline.py regenerate   # the default run in a scratch copy; copies back its
                                          # baseline files and writes baseline.json
    python tools/baseline.py check        # exit 1 naming every stage, file or param that changed

``regenerate`` never touches this checkout's own ``checkpoints/`` or ``training_output/``: it runs
``dvc repro`` in a temporary copy of the working tree (tracked and untracked, not ignored files).
"""
from __future__ import annotations

import hashlib
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
from importlib import metadata
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tools.stage_deps import stage_deps  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
RECORD = "baseline.json"
REGENERATE = "python tools/baseline.py regenerate"
LIBRARIES = ("torch", "torch_geometric", "numpy", "gymnasium", "dvc")


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:16]


def _pipeline(root: Path) -> dict:
    return yaml.safe_load((root / "dvc.yaml").read_text())["stages"]


def _out_path(entry) -> str:
    return next(iter(entry)) if isinstance(entry, dict) else str(entry)


def baseline_files(root: Path = ROOT) -> list[str]:
    """Every git-tracked output of ``dvc.yaml`` (``cache: false`` outs and metrics)."""
    found = []
    for stage in _pipeline(root).values():
        for entry in [*stage.get("outs", []), *stage.get("metrics", []), *stage.get("plots", [])]:
            if isinstance(entry, dict) and next(iter(entry.values())).get("cache") is False:
                found.append(_out_path(entry))
    return sorted(found)


def baseline_stages(root: Path = ROOT) -> list[str]:
    """The stages that write a baseline file, and every stage upstream of them."""
    stages = _pipeline(root)
    outs = {name: [_out_path(e) for e in [*s.get("outs", []), *s.get("metrics", []),
                                           *s.get("plots", [])]] for name, s in stages.items()}
    tracked = set(baseline_files(root))
    todo = [name for name, paths in outs.items() if tracked & set(paths)]
    chosen: set[str] = set()
    while todo:
        name = todo.pop()
        if name in chosen:
            continue
        chosen.add(name)
        for dep in stages[name].get("deps") or []:
            dep = str(dep).rstrip("/")
            for other, paths in outs.items():
                if any(dep == p or dep.startswith(p.rstrip("/") + "/") or p.startswith(dep + "/")
                       for p in paths):
                    todo.append(other)
    return sorted(chosen)


def _param_values(params: dict, names: list) -> dict:
    values = {}
    for entry in names:
        for name in (entry if isinstance(entry, dict) else {entry: None}):
            if isinstance(entry, dict):     # a params file of its own: {file: [keys]}
                continue
            section, _, key = str(name).partition(".")
            values[name] = params.get(section, {}).get(key) if key else params.get(section)
    return values


def describe(root: Path = ROOT) -> dict:
    """What the baseline of ``root`` would be made by: per stage, its files' and params' digests."""
    params = yaml.safe_load((root / "params.yaml").read_text())
    closures = {s.stage: s.closure for s in stage_deps(root) if s.pipeline == "dvc.yaml"}
    pipeline = _pipeline(root)
    stages = {}
    for name in baseline_stages(root):
        files = {f: _sha((root / f).read_bytes()) for f in sorted(closures.get(name, ()))}
        values = _param_values(params, pipeline[name].get("params") or [])
        stages[name] = {"files": files, "params": _sha(json.dumps(values, sort_keys=True).encode())}
    return {"stages": stages, "outputs": baseline_files(root)}


def machine() -> dict:
    """The CPU and the libraries a run computed with (float kernels differ between CPU models)."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    info = {"cpu": cpu, "python": platform.python_version()}
    try:
        import torch

        info["torch_cpu_capability"] = torch.backends.cpu.get_cpu_capability()
    except ImportError:  # pragma: no cover - torch is a dependency
        pass
    for lib in LIBRARIES:
        try:
            info[lib] = metadata.version(lib.replace("_", "-"))
        except metadata.PackageNotFoundError:
            info[lib] = None
    return info


def differences(root: Path = ROOT) -> list[str]:
    """What changed since ``baseline.json`` was written: one line per stage, file or params."""
    path = root / RECORD
    if not path.is_file():
        return [f"{RECORD} is missing"]
    old, new = json.loads(path.read_text()), describe(root)
    lines = []
    if old.get("outputs") != new["outputs"]:
        lines.append(f"the baseline files are now {new['outputs']} (recorded: {old.get('outputs')})")
    for name in sorted(set(old.get("stages", {})) | set(new["stages"])):
        a, b = old.get("stages", {}).get(name), new["stages"].get(name)
        if a is None or b is None:
            lines.append(f"stage {name}: {'new' if a is None else 'gone'} since the baseline")
            continue
        changed = sorted(f for f in set(a["files"]) | set(b["files"])
                         if a["files"].get(f) != b["files"].get(f))
        if changed:
            lines.append(f"stage {name}: code changed: {', '.join(changed)}")
        if a["params"] != b["params"]:
            lines.append(f"stage {name}: its params in params.yaml changed")
    return lines


def record(root: Path = ROOT) -> dict:
    doc = {"command": REGENERATE, **describe(root), "machine": machine()}
    (root / RECORD).write_text(json.dumps(doc, indent=2, sort_keys=True) + "\n")
    return doc


def _working_tree(root: Path) -> list[str]:
    out = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=root,
                         capture_output=True, text=True, check=True).stdout
    return [f for f in out.split("\0") if f and (root / f).is_file()]


def regenerate(root: Path = ROOT) -> int:
    """Run the default pipeline in a scratch copy of the working tree; copy back its baseline
    files and record what made them."""
    with tempfile.TemporaryDirectory(prefix="rlpipe-baseline-") as tmp:
        work = Path(tmp) / "repo"
        for f in _working_tree(root):
            (work / f).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(root / f, work / f)
        env = {**os.environ, "DVC_NO_ANALYTICS": "1"}
        for cmd in (["git", "init", "-q"], ["git", "add", "-A"],
                    ["git", "-c", "user.name=baseline", "-c", "user.email=baseline@rlpipe.local",
                     "commit", "-qm", "baseline"], ["dvc", "repro"]):
            if subprocess.run(cmd, cwd=work, env=env).returncode != 0:
                print(f"baseline: `{' '.join(cmd)}` failed; the committed baseline is unchanged",
                      file=sys.stderr)
                return 1
        for rel in baseline_files(work):
            src, dst = work / rel, root / rel
            if dst.is_dir():
                shutil.rmtree(dst)
            if src.is_dir():
                shutil.copytree(src, dst)
            elif src.is_file():
                dst.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(src, dst)
    record(root)
    print(f"baseline: wrote {', '.join(baseline_files(root))} and {RECORD}")
    return 0


def main(argv: list[str]) -> int:
    cmd = argv[0] if argv else "check"
    if cmd == "record":
        record()
        return 0
    if cmd == "regenerate":
        return regenerate()
    if cmd == "check":
        lines = differences()
        for line in lines:
            print(f"baseline: {line}")
        if lines:
            print(f"baseline: the committed baseline is stale; regenerate it with: {REGENERATE}")
        return 1 if lines else 0
    print("usage: python tools/baseline.py [check | regenerate | record]", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
