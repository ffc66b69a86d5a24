"""Benchmark of the visualize stage (not a test).

1. The whole stage, as DVC runs it (``python stages/visualize.py``, one process, imports included),
   on synthetic inputs: 10 000 episodes, 2 500 updates, 100 000 step rows, and one capture of a
   graph agent with 2 000 embedding points (100 probe graphs x 20 nodes), attention of a 2-layer
   GAT (4 and 1 heads) on 20 nodes, and a 50-step episode trace. Target: <= 10 s on 2 cores.
2. t-SNE alone on the same 2 000 points: scikit-learn (as the stage runs it: one OpenMP thread,
   and with its default threads) against openTSNE when it is installed; prints the ratios.

    python bench/bench_visualize.py [--repeat 1] [--keep DIR]

Prints lines ``name: value``; copy them into BENCHMARKS.md.
"""
from __future__ import annotations

import argparse
import os
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
STAGE = REPO / "stages" / "visualize.py"
for _p in (str(REPO / "src"), str(REPO)):  # this checkout's library, and devkit/synthetic.py
    if _p not in sys.path:
        sys.path.insert(0, _p)


def make_inputs(root: Path) -> np.ndarray:
    from devkit import synthetic

    synthetic.write_summary(root, episodes=10_000, steps_per_episode=10, updates_every=4,
                            num_actions=20)
    synthetic.write_captures(root, kind="graph", episodes=(10_000,), probe_graphs=100,
                             num_nodes=20, heads=(4, 1), trace_steps=50)
    synthetic.write_params(root)
    return synthetic.graph_embeddings(100, 20, dim=64)["embeddings"]


def run_stage(root: Path) -> tuple[float, float, str]:
    """(wall seconds, CPU seconds of the stage and its t-SNE worker, stdout)."""
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    p = subprocess.run([sys.executable, str(STAGE), "--params", "params.yaml"], cwd=root,
                       capture_output=True, text=True)
    wall = time.perf_counter() - t0
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
    if p.returncode != 0:
        sys.exit(f"stage failed ({p.returncode}):\n{p.stdout}\n{p.stderr}")
    return wall, cpu, p.stdout


def _import_seconds(module: str) -> float:
    t = time.perf_counter()
    subprocess.run([sys.executable, "-c", f"import {module}"], check=True)
    return time.perf_counter() - t


def time_tsne(X: np.ndarray) -> None:
    """Both backends as the stage runs them (projection.tsne_fit: PCA init, seed 0, perplexity 30),
    with one thread (as in the stage) and with all threads."""
    import importlib.util

    from rlpipe.plots.projection import tsne_fit

    backends = ["scikit-learn"]
    if importlib.util.find_spec("openTSNE"):
        backends.append("openTSNE")
    else:
        print("tsne_opentsne: not installed (pip install openTSNE to compare)")
    times: dict[tuple[str, str], float] = {}
    for backend in backends:
        for label, threads in (("1_thread", 1), ("all_threads", None)):
            t = time.perf_counter()
            tsne_fit(X, 30.0, threads=threads, backend=backend)
            times[backend, label] = time.perf_counter() - t
            print(f"tsne_{backend}_{label}_s: {times[backend, label]:.2f}")
    print(f"import_s: sklearn.manifold {_import_seconds('sklearn.manifold'):.2f}" +
          (f", openTSNE {_import_seconds('openTSNE'):.2f}" if len(backends) > 1 else "") +
          "  (fresh interpreter, python startup included)")
    if len(backends) > 1:
        for label in ("1_thread", "all_threads"):
            print(f"tsne_ratio_sklearn_over_openTSNE_{label}: "
                  f"{times['scikit-learn', label] / times['openTSNE', label]:.2f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=1, help="stage runs (the best and all are printed)")
    ap.add_argument("--keep", type=Path, help="keep the synthetic inputs and plots in this folder")
    ap.add_argument("--no-tsne-compare", action="store_true")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = args.keep or Path(tmp)
        root.mkdir(parents=True, exist_ok=True)
        t = time.perf_counter()
        X = make_inputs(root)
        print(f"inputs_written_s: {time.perf_counter() - t:.2f}  "
              "(10000 episodes, 2500 updates, 100000 steps, 2000 embedding points)")
        print(f"cores: {os.cpu_count()}  load_average_before: {os.getloadavg()[0]:.2f}")
        walls, cpus = [], []
        for _ in range(args.repeat):
            wall, cpu, out = run_stage(root)
            walls.append(wall)
            cpus.append(cpu)
        for line in out.splitlines():
            m = re.match(r"visualize: wrote plots/(\S+) \(([\d.]+) s\)", line)
            if m:
                print(f"  {m.group(1)}: {m.group(2)} s")
            elif "note" in line:
                print(f"  {line}")
        print(f"stage_wall_s: {min(walls):.2f}  (runs: {', '.join(f'{w:.2f}' for w in walls)}; "
              "target <= 10 s on 2 cores)")
        print(f"stage_cpu_s: {min(cpus):.2f}  (stage + t-SNE worker, user + system; "
              f"{min(cpus) / 2:.2f} s if both cores were free)")
        print(f"load_average_after: {os.getloadavg()[0]:.2f}  (other processes slow the wall time)")
        if not args.no_tsne_compare:
            time_tsne(np.asarray(X, dtype=np.float64))


if __name__ == "__main__":
    main()


def run(repeat: int = 3, tsne_compare: bool = False) -> dict:
    """The whole-stage measurement of :func:`main`, returned as numbers (for ``bench/run.py``):
    wall and CPU seconds of each stage run, and the stage's own per-figure seconds of the last."""
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        X = make_inputs(root)
        walls, cpus, figures = [], [], {}
        for _ in range(repeat):
            wall, cpu, out = run_stage(root)
            walls.append(wall)
            cpus.append(cpu)
            figures = {}
            for line in out.splitlines():
                m = re.match(r"visualize: wrote plots/(\S+) \(([\d.]+) s\)", line)
                if m:
                    figures[m.group(1)] = float(m.group(2))
        if tsne_compare:
            time_tsne(np.asarray(X, dtype=np.float64))
    return {"walls": walls, "cpus": cpus, "figures": figures}
