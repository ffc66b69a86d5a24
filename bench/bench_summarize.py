"""Benchmark of the summarize stage (not a test). Prints its figures and ratios.

    python bench/bench_summarize.py [--rows 1000000] [--reps 3]

1. Throughput: the stage's ``summarize()`` on a synthetic run (``--rows`` steps.csv rows, 2,000
   episodes, 500 updates) against a bare ``pyarrow.csv.read_csv`` + ``pyarrow.parquet
   .write_table(compression="zstd")`` of the same steps.csv, medians of ``--reps`` interleaved
   repetitions in this process. Target: stage / bare <= 1.3. A second baseline,
   "bare typed", gives read_csv the same explicit column types (no type inference): that is the
   floor the stage's own CSV -> Parquet work can approach.
2. Memory: each variant once more in a child process; peak RSS (VmHWM) and the peak of
   Arrow's memory pool.
3. Start-up: ``python stages/summarize.py --help`` against ``python -c "import pyarrow.parquet"``,
   medians of 7 runs each. Target: <= +0.5 s.
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

import numpy as np  # noqa: E402
import pyarrow as pa  # noqa: E402
import pyarrow.csv as pacsv  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402

STEP_COLS = ["Episode", "Step", "Global Step", "Action", "Reward", "Value", "Log Prob", "Entropy",
             "Oracle Action", "Feasible", "Mean Utilization", "Max Utilization"]
EP_COLS = ["Episode", "Immediate Reward", "Cumulative Reward", "Actor Loss", "Critic Loss",
           "Policy Entropy", "Episode Length", "Mean Episode Reward", "Deployment Accuracy",
           "Acceptance Rate", "Mean Latency", "Mean Utilization", "Load Imbalance"]
UP_COLS = ["Update", "Global Step", "Episode", "Actor Loss", "Critic Loss", "Policy Entropy",
           "Approx KL", "Clip Fraction", "Explained Variance", "Learning Rate", "Actor Grad Norm",
           "Critic Grad Norm", "Skipped"]


def _write(path: Path, columns: list[str], data: dict) -> None:
    table = pa.table({c: data[c] for c in columns})
    with open(path, "wb") as f:
        f.write((",".join(columns) + "\n").encode())
        pacsv.write_csv(table, f, pacsv.WriteOptions(include_header=False, quoting_style="none"))


def generate(folder: Path, rows: int, episodes: int = 2000, updates: int = 500) -> None:
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True, exist_ok=True)
    per_ep = max(1, rows // episodes)
    i = np.arange(rows)
    _write(folder / "steps.csv", STEP_COLS, {
        "Episode": i // per_ep + 1, "Step": i % per_ep + 1, "Global Step": i + 1,
        "Action": rng.integers(0, 20, rows), "Reward": rng.normal(size=rows),
        "Value": rng.normal(size=rows), "Log Prob": -3 * rng.random(rows),
        "Entropy": 3 * rng.random(rows), "Oracle Action": rng.integers(0, 20, rows),
        "Feasible": rng.integers(0, 2, rows), "Mean Utilization": rng.random(rows),
        "Max Utilization": rng.random(rows),
    })
    e = np.arange(1, episodes + 1)
    cum = rng.normal(size=episodes) + e / 100
    _write(folder / "episodes.csv", EP_COLS, {
        "Episode": e, "Immediate Reward": cum / per_ep, "Cumulative Reward": cum,
        "Actor Loss": rng.normal(size=episodes), "Critic Loss": rng.random(episodes),
        "Policy Entropy": rng.random(episodes), "Episode Length": np.full(episodes, per_ep),
        "Mean Episode Reward": cum, "Deployment Accuracy": rng.random(episodes),
        "Acceptance Rate": rng.random(episodes), "Mean Latency": 50 * rng.random(episodes),
        "Mean Utilization": rng.random(episodes), "Load Imbalance": rng.random(episodes),
    })
    u = np.arange(1, updates + 1)
    _write(folder / "updates.csv", UP_COLS, {
        "Update": u, "Global Step": u * (rows // updates), "Episode": u * (episodes // updates),
        "Actor Loss": rng.normal(size=updates), "Critic Loss": rng.random(updates),
        "Policy Entropy": rng.random(updates), "Approx KL": rng.random(updates) / 100,
        "Clip Fraction": rng.random(updates), "Explained Variance": rng.random(updates),
        "Learning Rate": np.full(updates, 1e-3), "Actor Grad Norm": rng.random(updates),
        "Critic Grad Norm": rng.random(updates), "Skipped": np.zeros(updates, dtype=np.int64),
    })
    (folder / "run.json").write_text('{"wall_seconds": 100.0, "resumed_count": 0, '
                                     '"params_digest": "bench", "status": "finished"}')


# --------------------------------------------------------------------------- the variants
def run_stage(work: Path) -> None:
    from rlpipe.summarize.stage import summarize

    out = work / "out"
    summarize(work / "training_output", 50, 500, summary_dir=out / "data/summary",
              plots_dir=out / "data/plots", metrics_path=out / "metrics.json",
              warn=lambda m: None, note=lambda m: None)


def run_bare(work: Path) -> None:
    table = pacsv.read_csv(work / "training_output/steps.csv")
    pq.write_table(table, work / "bare.parquet", compression="zstd")


def run_bare_typed(work: Path) -> None:
    from rlpipe.summarize.tables import arrow_type

    names = (work / "training_output/steps.csv").open().readline().rstrip("\n").split(",")
    convert = pacsv.ConvertOptions(column_types={n: arrow_type(n) for n in names},
                                   null_values=[""], true_values=["1"], false_values=["0"])
    table = pacsv.read_csv(work / "training_output/steps.csv", convert_options=convert)
    pq.write_table(table, work / "bare_typed.parquet", compression="zstd")


VARIANTS = {"stage": run_stage, "bare": run_bare, "bare typed": run_bare_typed}


def _peak_rss_mib() -> float:
    """This process's peak RSS (VmHWM: per address space, so the parent's pages never count)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child_memory(work: Path, variant: str | None) -> tuple[float, float]:
    """(peak RSS MiB, peak Arrow pool MiB) of one run of ``variant`` in a fresh process
    (``None``: the imports only)."""
    run = f"b.VARIANTS[{variant!r}](Path({str(work)!r}))" if variant else "pass"
    code = (f"import sys; sys.path.insert(0, {str(ROOT / 'bench')!r}); import bench_summarize as b;"
            f" import pyarrow as pa; from pathlib import Path; {run};"
            f" print(b._peak_rss_mib(), pa.default_memory_pool().max_memory())")
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True,
                         text=True).stdout.split()
    return float(out[-2]), int(out[-1]) / 2**20


def wall(cmd: list[str], cwd: Path, n: int) -> float:
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        subprocess.run(cmd, cwd=cwd, check=True, stdout=subprocess.DEVNULL)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--reps", type=int, default=3)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench_summarize_") as tmp:
        work = Path(tmp)
        t0 = time.perf_counter()
        generate(work / "training_output", args.rows)
        size = (work / "training_output/steps.csv").stat().st_size
        print(f"machine: {os.cpu_count()} CPUs (load average {os.getloadavg()[0]:.1f}), "
              f"pyarrow {pa.__version__}, numpy {np.__version__}, Python {sys.version.split()[0]}")
        print(f"steps.csv: {args.rows:,} rows, {size / 2**20:.0f} MiB "
              f"(generated in {time.perf_counter() - t0:.1f} s)")

        times: dict[str, list[float]] = {k: [] for k in VARIANTS}
        for fn in VARIANTS.values():  # warm-up: imports, page cache
            fn(work)
        for _ in range(args.reps):
            for variant, fn in VARIANTS.items():
                t0 = time.perf_counter()
                fn(work)
                times[variant].append(time.perf_counter() - t0)
        med = {k: statistics.median(v) for k, v in times.items()}
        for k, v in times.items():
            print(f"  {k:11s} median {med[k]:.3f} s  (runs: {', '.join(f'{t:.3f}' for t in v)})")
        ratio = med["stage"] / med["bare"]
        print(f"throughput: stage / bare read_csv+write_table = {ratio:.2f}x "
              f"(target <= 1.3x: {'OK' if ratio <= 1.3 else 'MISSED'}); "
              f"stage / bare typed = {med['stage'] / med['bare typed']:.2f}x")
        pq_size = (work / "out/data/summary/steps.parquet").stat().st_size
        print(f"  steps.parquet: {pq_size / 2**20:.1f} MiB "
              f"(bare: {(work / 'bare.parquet').stat().st_size / 2**20:.1f} MiB)")

        base, _ = child_memory(work, None)
        print(f"memory (fresh process each; the same imports alone: {base:.0f} MiB peak RSS):")
        for variant in VARIANTS:
            rss, pool = child_memory(work, variant)
            print(f"  {variant:11s} peak RSS {rss:6.0f} MiB, Arrow pool peak {pool:6.0f} MiB")

        stage_help = wall([sys.executable, str(ROOT / "stages/summarize.py"), "--help"], work, 7)
        bare_import = wall([sys.executable, "-c", "import pyarrow.parquet"], work, 7)
        extra = stage_help - bare_import
        print(f"start-up: `stages/summarize.py --help` {stage_help:.3f} s, "
              f"`import pyarrow.parquet` {bare_import:.3f} s: {extra:+.3f} s "
              f"(target <= +0.5 s: {'OK' if extra <= 0.5 else 'MISSED'})")


if __name__ == "__main__":
    main()


def run(rows: int = 1_000_000, reps: int = 3, startup_runs: int = 7, memory: bool = False) -> dict:
    """The throughput and start-up measurements of :func:`main`, returned as numbers (for
    ``bench/run.py``): medians in seconds, ratios, and optionally peak memory in MiB."""
    out: dict = {"rows": rows, "reps": reps}
    with tempfile.TemporaryDirectory(prefix="bench_summarize_") as tmp:
        work = Path(tmp)
        generate(work / "training_output", rows)
        out["csv_mib"] = (work / "training_output/steps.csv").stat().st_size / 2**20
        times: dict[str, list[float]] = {k: [] for k in VARIANTS}
        for fn in VARIANTS.values():  # warm-up: imports, page cache
            fn(work)
        for _ in range(reps):
            for variant, fn in VARIANTS.items():
                t0 = time.perf_counter()
                fn(work)
                times[variant].append(time.perf_counter() - t0)
        out["times"] = times
        out["median"] = {k: statistics.median(v) for k, v in times.items()}
        out["ratio_bare"] = out["median"]["stage"] / out["median"]["bare"]
        out["ratio_bare_typed"] = out["median"]["stage"] / out["median"]["bare typed"]
        if memory:
            out["memory"] = {v: child_memory(work, v) for v in VARIANTS}
            out["memory"]["imports only"] = child_memory(work, None)
        out["startup_stage_s"] = wall([sys.executable, str(ROOT / "stages/summarize.py"), "--help"],
                                      work, startup_runs)
        out["startup_pyarrow_s"] = wall([sys.executable, "-c", "import pyarrow.parquet"], work,
                                        startup_runs)
        out["startup_extra_s"] = out["startup_stage_s"] - out["startup_pyarrow_s"]
    return out
