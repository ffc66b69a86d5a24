"""Smoke test of the benchmark harness: `bench/run.py --quick` runs and prints a ratio.

Not a benchmark: tiny sizes, no target is checked, BENCHMARKS.md is never written.
"""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_bench_quick_logging_prints_a_ratio():
    md = REPO / "BENCHMARKS.md"
    before = md.read_bytes() if md.exists() else None
    proc = subprocess.run(
        [sys.executable, str(REPO / "bench" / "run.py"), "--quick", "--only", "logging", "--no-write"],
        cwd=REPO, capture_output=True, text=True, timeout=60,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert re.search(r"^logging: hooks on / off train time ratio = \d+\.\d+x", proc.stdout, re.M), proc.stdout
    assert (md.read_bytes() if md.exists() else None) == before, "--no-write touched BENCHMARKS.md"
