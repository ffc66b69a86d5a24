"""Shared pieces of the benchmark harness (``python bench/run.py``): results, machine and load
description, medians, params, and the BENCHMARKS.md section writer.

Not a test and not part of the library: nothing in ``src/`` imports it.
"""
from __future__ import annotations

import datetime as _dt
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "bench"
for _p in (str(ROOT / "src"), str(BENCH), str(ROOT)):
    if _p not in sys.path:
        sys.path.insert(0, _p)

from devkit.runs import deep_update  # noqa: E402  (one merge rule for tests and benchmarks)

PYTHON = sys.executable
BENCHMARKS_MD = ROOT / "BENCHMARKS.md"


# --------------------------------------------------------------------------- results
@dataclass
class Check:
    """One figure against its target. ``ok`` None = informational (no target)."""

    name: str
    value: float
    target: str          # e.g. "<= 1.03x"
    ok: bool | None
    fmt: str = "{:.3f}"

    def text(self) -> str:
        v = self.fmt.format(self.value) if isinstance(self.value, (int, float)) else str(self.value)
        verdict = "" if self.ok is None else (" PASS" if self.ok else " MISSED")
        tgt = f" (target {self.target})" if self.target else ""
        return f"{self.name} = {v}{tgt}{verdict}"


@dataclass
class Result:
    name: str
    title: str
    body: list[str] = field(default_factory=list)      # markdown lines of the section
    checks: list[Check] = field(default_factory=list)
    load: "LoadMonitor | None" = None
    seconds: float = 0.0
    quick: bool = False

    def check(self, name: str, value: float, target: str = "", ok: bool | None = None,
              fmt: str = "{:.3f}") -> Check:
        c = Check(name, value, target, ok, fmt)
        self.checks.append(c)
        return c


def median(xs) -> float:
    return float(statistics.median(list(xs)))


def fmt_runs(xs, f: str = "{:.2f}") -> str:
    return ", ".join(f.format(x) for x in xs)


# --------------------------------------------------------------------------- machine and load
def machine() -> dict[str, str]:
    def sh(cmd: list[str]) -> str:
        try:
            return subprocess.run(cmd, capture_output=True, text=True, timeout=10).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return ""

    model = ""
    for line in sh(["lscpu"]).splitlines():
        if line.startswith("Model name:"):
            model = line.split(":", 1)[1].strip()
            break
    import platform

    info = {"nproc": sh(["nproc"]) or str(os.cpu_count()), "cpu": model or platform.processor(),
            "python": sys.version.split()[0]}
    try:
        import torch

        info["torch"] = torch.__version__
    except ImportError:  # pragma: no cover
        pass
    return info


def busy_processes(min_cpu: float = 20.0) -> list[str]:
    """Other processes using a lot of CPU right now (two /proc samples 0.5 s apart)."""
    def sample() -> dict[int, tuple[int, str]]:
        out = {}
        for d in Path("/proc").iterdir():
            if not d.name.isdigit():
                continue
            try:
                stat = (d / "stat").read_text()
                rest = stat[stat.rindex(")") + 2:].split()
                ticks = int(rest[11]) + int(rest[12])
                cmd = " ".join((d / "cmdline").read_bytes().replace(b"\0", b" ")
                               .decode(errors="replace").split())  # one line, for the tables
                out[int(d.name)] = (ticks, cmd)
            except (OSError, ValueError, IndexError):
                continue
        return out

    hz = os.sysconf("SC_CLK_TCK")
    a = sample()
    time.sleep(0.5)
    b = sample()
    me = os.getpid()
    busy = []
    for pid, (t1, cmd) in b.items():
        if pid == me or pid not in a:
            continue
        pct = 100.0 * (t1 - a[pid][0]) / hz / 0.5
        if pct >= min_cpu:
            short = cmd if len(cmd) < 70 else cmd[:67] + "..."
            busy.append(f"{short} ({pct:.0f}% CPU)")
    return busy


class LoadMonitor:
    """Samples the 1-minute load average every ``every`` seconds while a benchmark runs."""

    def __init__(self, every: float = 2.0):
        self.every = every
        self.samples: list[float] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.before = self.after = 0.0
        self.others_before: list[str] = []
        self.started = ""

    def __enter__(self) -> "LoadMonitor":
        self.started = _dt.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
        self.others_before = busy_processes()
        self.before = os.getloadavg()[0]
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()
        return self

    def _loop(self) -> None:
        while not self._stop.wait(self.every):
            self.samples.append(os.getloadavg()[0])

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self.after = os.getloadavg()[0]

    def describe(self) -> str:
        during = self.samples or [self.before, self.after]
        others = "; ".join(self.others_before) if self.others_before else "none above 20% CPU"
        return (f"load average (1 min) {self.before:.2f} before, {statistics.mean(during):.2f} mean / "
                f"{max(during):.2f} max during, {self.after:.2f} after; other busy processes at "
                f"the start: {others}")


def machine_line(load: LoadMonitor | None) -> str:
    m = machine()
    text = (f"Machine: {m['nproc']} CPUs (`nproc`), {m['cpu']} (`lscpu`), Python {m['python']}"
            + (f", torch {m['torch']}" if "torch" in m else ""))
    if load is not None:
        text += f". Run {load.started}; {load.describe()}."
    return text


# --------------------------------------------------------------------------- params
def load_yaml(path: Path) -> dict:
    import yaml

    return yaml.safe_load(Path(path).read_text()) or {}


def project_params_dict(overrides: dict | None = None) -> dict:
    """The project's params.yaml with ``overrides`` on top (a plain dict)."""
    return deep_update(load_yaml(ROOT / "params.yaml"), overrides or {})


def params_from_dict(data: dict):
    from rlpipe.config import Params

    return Params.from_dict(data)


def write_yaml(path: Path, data: dict) -> None:
    import yaml

    Path(path).write_text(yaml.safe_dump(data, sort_keys=False))


#: tiny graph-env settings for --quick smoke runs
QUICK_ENV = {"kwargs": {"num_nodes": 8, "num_cloud": 1, "requests_per_episode": 12, "max_rejections": 4}}
QUICK_AGENT = {"hidden_dim": 16, "heads": 2, "gat_layers": 2}


# --------------------------------------------------------------------------- subprocess helpers
def tool_env(extra: dict | None = None) -> dict:
    """Environment for child processes: this interpreter's bin/ first on PATH."""
    env = {**os.environ, "DVC_NO_ANALYTICS": "1", "PYTHONUNBUFFERED": "1"}
    env["PATH"] = os.pathsep.join([str(Path(PYTHON).parent), env.get("PATH", "")])
    env.update(extra or {})
    return env


def tool(name: str) -> str:
    exe = Path(PYTHON).parent / name
    return str(exe) if exe.exists() else (shutil.which(name) or name)


def timed_run(args: list[str], cwd: Path, timeout: float = 600) -> tuple[float, subprocess.CompletedProcess]:
    t0 = time.perf_counter()
    p = subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=timeout, env=tool_env())
    dt = time.perf_counter() - t0
    if p.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed ({p.returncode}) in {cwd}:\n{p.stdout}\n{p.stderr}")
    return dt, p


# --------------------------------------------------------------------------- BENCHMARKS.md
HEADER = """# Benchmarks

Measured with `python bench/run.py` (all) or `python bench/run.py --only NAME ...`; each
benchmark rewrites its own section below (between its `bench:NAME` markers) and the summary;
anything else in this file is kept. `--quick` runs tiny sizes (a smoke run; it never writes
here unless asked). The machine is shared (2 cores, other tests and trainings often running),
so every ratio compares runs made side by side in the same process run (interleaved
repetitions, medians), and each section says what the load was.
"""

_SECTION_RE = re.compile(r"<!-- bench:(?P<name>[\w-]+):start -->\n(?P<body>.*?)<!-- bench:(?P=name):end -->\n?",
                         re.S)
_CHECKS_RE = re.compile(r"<!-- bench-checks (?P<json>.*?) -->")
ORDER = ("summary", "logging", "throughput", "dense", "scaling", "train_stage", "summarize",
         "visualize", "dvc", "resume", "learning", "sweep", "service_chain", "ablation_graph_deploy",
         "sb3", "export")


def render_section(res: Result) -> str:
    lines = [f"## {res.title}", ""]
    lines.append(machine_line(res.load) + f" Benchmark wall time {res.seconds:.0f} s.")
    lines.append("")
    lines += res.body
    lines.append("")
    lines.append("| figure | measured | target | verdict |")
    lines.append("|---|---|---|---|")
    for c in res.checks:
        v = c.fmt.format(c.value) if isinstance(c.value, (int, float)) else str(c.value)
        verdict = "" if c.ok is None else ("pass" if c.ok else "**MISSED**")
        lines.append(f"| {c.name} | {v} | {c.target or '-'} | {verdict} |")
    checks = [{"name": c.name, "value": c.fmt.format(c.value) if isinstance(c.value, (int, float))
               else str(c.value), "target": c.target, "ok": c.ok} for c in res.checks]
    lines.append("")
    lines.append(f"<!-- bench-checks {json.dumps(checks)} -->")
    return "\n".join(lines) + "\n"


def _wrap(name: str, text: str) -> str:
    return f"<!-- bench:{name}:start -->\n{text}<!-- bench:{name}:end -->\n"


def _summary(sections: dict[str, str]) -> str:
    rows = ["## Summary", "",
            "Every figure with a target, from the sections below (each section says when and under "
            "what load it was measured).", "",
            "| benchmark | figure | measured | target | verdict |", "|---|---|---|---|---|"]
    for name in [n for n in ORDER if n in sections] + sorted(set(sections) - set(ORDER)):
        if name == "summary":
            continue
        m = _CHECKS_RE.search(sections[name])
        if not m:
            continue
        for c in json.loads(m.group("json")):
            if c["ok"] is None:
                continue
            rows.append(f"| {name} | {c['name']} | {c['value']} | {c['target']} | "
                        f"{'pass' if c['ok'] else '**MISSED**'} |")
    return "\n".join(rows) + "\n"


def write_section(res: Result, path: Path = BENCHMARKS_MD) -> None:
    """(Re)write ``res``'s section and the summary in BENCHMARKS.md; keep everything else."""
    text = path.read_text() if path.exists() else HEADER
    found = {m.group("name"): m.group("body") for m in _SECTION_RE.finditer(text)}
    new_body = render_section(res)
    if res.name in found:
        text = _SECTION_RE.sub(lambda m: _wrap(res.name, new_body) if m.group("name") == res.name
                               else m.group(0), text)
    else:
        # insert before the first existing section that comes later in ORDER, else append
        later = [n for n in ORDER[ORDER.index(res.name) + 1:] if n in found] if res.name in ORDER else []
        block = _wrap(res.name, new_body) + "\n"
        marker = f"<!-- bench:{later[0]}:start -->" if later else None
        if marker and marker in text:
            text = text.replace(marker, block + marker, 1)
        else:
            text = text.rstrip("\n") + "\n\n" + block
    found = {m.group("name"): m.group("body") for m in _SECTION_RE.finditer(text)}
    summary = _summary(found)
    if "summary" in found:
        text = _SECTION_RE.sub(lambda m: _wrap("summary", summary) if m.group("name") == "summary"
                               else m.group(0), text)
    else:
        first = next((f"<!-- bench:{n}:start -->" for n in ORDER if n in found), None)
        block = _wrap("summary", summary) + "\n"
        text = text.replace(first, block + first, 1) if first else text + "\n" + block
    path.write_text(text.rstrip("\n") + "\n")


def run_benchmark(name: str, title: str, fn: Callable[[Result], None], quick: bool) -> Result:
    res = Result(name=name, title=title, quick=quick)
    t0 = time.perf_counter()
    with LoadMonitor() as load:
        fn(res)
    res.seconds = time.perf_counter() - t0
    res.load = load
    return res


def say(msg: str) -> None:
    print(msg, flush=True)


def poll_until(cond: Callable[[], Any], timeout: float, every: float = 0.01) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = cond()
        if v:
            return v
        time.sleep(every)
    return None
