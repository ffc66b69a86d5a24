"""Benchmarks `summarize` and `visualize` for ``bench/run.py``: they call the existing
``bench/bench_summarize.py`` and ``bench/bench_visualize.py`` (their ``run()`` functions) and turn
the numbers into checks and a BENCHMARKS.md section. See those files for what is measured.
"""
from __future__ import annotations

import tempfile
from pathlib import Path

from bench_common import Result, fmt_runs, median, say

SUMMARIZE_TARGET = 1.3
STARTUP_TARGET = 0.5
VISUALIZE_TARGET = 10.0


def run_summarize(res: Result, quick: bool) -> None:
    import bench_summarize as bs

    rows, reps, startup = (20_000, 1, 2) if quick else (1_000_000, 3, 7)
    out = bs.run(rows=rows, reps=reps, startup_runs=startup, memory=not quick)
    med = out["median"]
    ratio, extra = out["ratio_bare"], out["startup_extra_s"]
    say(f"summarize: stage / bare pyarrow = {ratio:.2f}x (target <= {SUMMARIZE_TARGET}x: "
        f"{'PASS' if ratio <= SUMMARIZE_TARGET else 'MISSED'}); start-up {extra:+.3f} s "
        f"(target <= +{STARTUP_TARGET} s: {'PASS' if extra <= STARTUP_TARGET else 'MISSED'})")
    res.body += [
        f"`bench/bench_summarize.py` `run()`: synthetic run with a {rows:,}-row steps.csv "
        f"({out['csv_mib']:.0f} MiB), 2,000 episodes, 500 updates; the stage's `summarize()` against a "
        "bare `pyarrow.csv.read_csv` + `pyarrow.parquet.write_table(compression='zstd')` of the same "
        f"steps.csv (and the same with explicit column types, \"bare typed\"); {reps} interleaved "
        "repetitions after a warm-up, medians. Start-up: `python stages/summarize.py --help` vs "
        f"`python -c 'import pyarrow.parquet'`, medians of {startup} runs each.",
        "",
    ]
    for k, v in out["times"].items():
        res.body.append(f"- {k}: {fmt_runs(v, '{:.3f}')} s (median {med[k]:.3f} s)")
    res.body.append(f"- stage / bare typed: {out['ratio_bare_typed']:.2f}x")
    if "memory" in out:
        res.body.append("- peak RSS / Arrow pool peak, fresh process each: " + ", ".join(
            f"{k} {rss:.0f} / {pool:.0f} MiB" for k, (rss, pool) in out["memory"].items()))
    res.body.append(f"- start-up: stage `--help` {out['startup_stage_s']:.3f} s, `import pyarrow.parquet` "
                    f"{out['startup_pyarrow_s']:.3f} s")
    res.check("stage / bare read_csv+write_table, median", ratio, f"<= {SUMMARIZE_TARGET}x",
              ratio <= SUMMARIZE_TARGET, "{:.2f}x")
    res.check("start-up over `import pyarrow.parquet`", extra, f"<= +{STARTUP_TARGET} s",
              extra <= STARTUP_TARGET, "{:+.3f} s")


def run_visualize(res: Result, quick: bool) -> None:
    import bench_visualize as bv

    if quick:  # tiny synthetic inputs, one stage run
        from devkit import synthetic  # bench_common put the repository root on sys.path

        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp)
            synthetic.write_summary(root, episodes=200, steps_per_episode=5, num_actions=6)
            synthetic.write_captures(root, kind="graph", episodes=(200,), probe_graphs=5, num_nodes=8)
            synthetic.write_params(root, visualize={"tsne_sample": 40, "animation_max_frames": 5, "dpi": 40})
            wall, cpu, _ = bv.run_stage(root)
        out = {"walls": [wall], "cpus": [cpu], "figures": {}}
    else:
        out = bv.run(repeat=3)
    walls, cpus = out["walls"], out["cpus"]
    wall = median(walls)
    say(f"visualize: full stage {wall:.2f} s wall (median of {len(walls)}; target <= "
        f"{VISUALIZE_TARGET:.0f} s: {'PASS' if wall <= VISUALIZE_TARGET else 'MISSED'}), "
        f"CPU {median(cpus):.2f} s")
    size = "tiny synthetic inputs (--quick)" if quick else (
        "10,000 episodes, 2,500 updates, 100,000 step rows, one graph capture with 2,000 embedding "
        "points (100 probe graphs x 20 nodes), 2-layer attention, 50-step trace")
    res.body += [
        f"`bench/bench_visualize.py` `run()`: `python stages/visualize.py` (one process, imports "
        f"included, every figure incl. t-SNE and the GIF) on {size}; {len(walls)} runs.",
        "",
        f"- wall: {fmt_runs(walls)} s (median {wall:.2f} s); CPU (stage + t-SNE worker, user+sys): "
        f"{fmt_runs(cpus)} s",
    ]
    if out["figures"]:
        res.body.append("- per figure (last run, the stage's own timings): " + ", ".join(
            f"{k} {v:.2f} s" for k, v in sorted(out["figures"].items(), key=lambda kv: -kv[1])))
    res.check("whole stage wall time, median", wall, f"<= {VISUALIZE_TARGET:.0f} s",
              wall <= VISUALIZE_TARGET, "{:.2f} s")
    res.check("whole stage CPU time, median", median(cpus), "", None, "{:.2f} s")
