"""Benchmark `dvc`: a no-op ``dvc repro`` of rlpipe vs of a trivial three-stage pipeline.

Two temporary git + DVC repositories:

- rlpipe: this project's dvc.yaml, stages/, src/, .gitignore/.dvcignore and .dvc/config, with the
  project's params.yaml plus the tests' tiny params on top (``devkit.runs.TINY_PARAMS``, as
  the ``dvc_repo`` fixture does); one real ``dvc repro`` (train, summarize, visualize), committed;
- trivial: three ``echo`` stages chained by file deps (in.txt -> a.txt -> b.txt -> c.txt),
  reproduced once, committed.

Then ``dvc repro`` in each, interleaved, ``--reps`` times (5); each must report that nothing
changed. Ratio of the median wall times; target <= 1.3x.

    python bench/run.py --only dvc [--quick]
"""
from __future__ import annotations

import re
import shutil
import tempfile
import time
from pathlib import Path

from bench_common import (ROOT, Result, deep_update, fmt_runs, load_yaml, median, say,
                          timed_run, tool, write_yaml)

NAME = "dvc"
TITLE = "dvc: no-op `dvc repro` of rlpipe vs a trivial three-stage pipeline"
TARGET = 1.3

TRIVIAL_DVC_YAML = """stages:
  a:
    cmd: echo a > a.txt
    deps: [in.txt]
    outs: [a.txt]
  b:
    cmd: echo b > b.txt
    deps: [a.txt]
    outs: [b.txt]
  c:
    cmd: echo c > c.txt
    deps: [b.txt]
    outs: [c.txt]
"""


def tiny_params() -> dict:
    from devkit.runs import TINY_PARAMS

    return deep_update(load_yaml(ROOT / "params.yaml"), TINY_PARAMS)


def git(repo: Path, *args: str) -> None:
    timed_run(["git", *args], repo)


def dvc(repo: Path, *args: str, timeout: float = 900) -> tuple[float, str]:
    dt, p = timed_run([tool("dvc"), *args], repo, timeout=timeout)
    return dt, p.stdout + p.stderr


def _init(repo: Path) -> None:
    git(repo, "init", "-q")
    git(repo, "config", "user.email", "bench@rlpipe.local")
    git(repo, "config", "user.name", "rlpipe bench")
    dvc(repo, "init", "-q")
    dvc(repo, "config", "core.analytics", "false")


def make_rlpipe_repo(repo: Path, quick: bool) -> float:
    """Copy the pipeline, run one real repro, commit; returns the repro's seconds."""
    repo.mkdir(parents=True)
    for name in ("dvc.yaml", ".gitignore", ".dvcignore"):
        if (ROOT / name).exists():
            shutil.copy(ROOT / name, repo / name)
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info")
    shutil.copytree(ROOT / "stages", repo / "stages", ignore=ignore)
    shutil.copytree(ROOT / "src", repo / "src", ignore=ignore)
    if (ROOT / "dvc_plots_template").exists():
        shutil.copytree(ROOT / "dvc_plots_template", repo / "dvc_plots_template")
    params = tiny_params()
    if quick:
        params = deep_update(params, {"train": {"episodes": 4}, "capture": {"every": 0}})
    write_yaml(repo / "params.yaml", params)
    _init(repo)
    if (ROOT / ".dvc" / "config").is_file():
        shutil.copy(ROOT / ".dvc" / "config", repo / ".dvc" / "config")
        dvc(repo, "config", "core.analytics", "false")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "init")
    dt, out = dvc(repo, "repro")
    ran = re.findall(r"^Running stage '([^']+)'", out, re.M)
    if ran != ["train", "summarize", "visualize"]:
        raise RuntimeError(f"first dvc repro ran {ran}:\n{out}")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "run 1")
    return dt


def make_trivial_repo(repo: Path) -> None:
    repo.mkdir(parents=True)
    (repo / "dvc.yaml").write_text(TRIVIAL_DVC_YAML)
    (repo / "in.txt").write_text("in\n")
    _init(repo)
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "init")
    dvc(repo, "repro")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "run 1")


def noop(repo: Path) -> float:
    dt, out = dvc(repo, "repro")
    if re.search(r"^Running stage", out, re.M):
        raise RuntimeError(f"`dvc repro` in {repo} was not a no-op:\n{out}")
    return dt


def run(res: Result, quick: bool) -> None:
    reps = 1 if quick else 5
    with tempfile.TemporaryDirectory(prefix="bench_dvc_") as tmp:
        tmp = Path(tmp)
        first = make_rlpipe_repo(tmp / "rlpipe", quick)
        say(f"  [dvc] first (real) dvc repro of rlpipe: {first:.1f} s")
        make_trivial_repo(tmp / "trivial")
        noop(tmp / "rlpipe"), noop(tmp / "trivial")  # warm-up: dvc's state db, page cache
        rl, tv = [], []
        for r in range(reps):
            for which in (("rlpipe", "trivial") if r % 2 == 0 else ("trivial", "rlpipe")):
                dt = noop(tmp / which)
                (rl if which == "rlpipe" else tv).append(dt)
                say(f"  [dvc] rep {r + 1} {which}: {dt:.2f} s")
        _, status = dvc(tmp / "rlpipe", "status")
        n_files = sum(1 for p in (tmp / "rlpipe").rglob("*") if p.is_file() and ".git" not in p.parts
                      and ".dvc" not in p.parts)
        t0 = time.perf_counter()
        timed_run([tool("dvc"), "--version"], tmp)
        version_s = time.perf_counter() - t0
    ratio = median(rl) / median(tv)
    say(f"dvc: no-op repro rlpipe / trivial = {ratio:.2f}x (target <= {TARGET}x: "
        f"{'PASS' if ratio <= TARGET else 'MISSED'}); rlpipe {median(rl):.2f} s, trivial {median(tv):.2f} s")
    import subprocess

    version = subprocess.run([tool("dvc"), "--version"], capture_output=True, text=True).stdout.strip()
    res.body += [
        f"DVC {version}. rlpipe repo: this project's pipeline with tiny params (the tests' `TINY_PARAMS`, `devkit/runs.py`), "
        f"after one real `dvc repro` ({first:.0f} s) and a commit; {n_files} workspace files "
        "(src/ and stages/ are deps, training_output/, checkpoints/, data/summary/, plots/ are "
        "outs). Trivial repo: three `echo` stages chained by file deps. One untimed warm-up no-op "
        f"each, then {reps} interleaved no-op `dvc repro` runs each (each checked: no stage ran). "
        f"`dvc status` afterwards: `{status.strip().splitlines()[-1] if status.strip() else ''}`.",
        "",
        f"- rlpipe: {fmt_runs(rl)} s (median {median(rl):.2f} s)",
        f"- trivial: {fmt_runs(tv)} s (median {median(tv):.2f} s)",
        f"- for scale: `dvc --version` alone {version_s:.2f} s (Python + DVC import)",
    ]
    res.check("no-op repro rlpipe / trivial, median", ratio, f"<= {TARGET}x", ratio <= TARGET, "{:.2f}x")
    res.check("no-op repro of rlpipe, median", median(rl), "", None, "{:.2f} s")
