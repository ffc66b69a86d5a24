"""rlpipe benchmarks, one command: each prints its figures and its ratio against a reference
measured in the same run, and (re)writes its section of BENCHMARKS.md.

    python bench/run.py                      # everything, full sizes (about 1.5 h on 2 cores)
    python bench/run.py --only logging dvc   # some of them
    python bench/run.py --quick --no-write   # tiny sizes, a smoke run (BENCHMARKS.md untouched)

Benchmarks: logging, live, throughput, dense, scaling, train_stage, summarize, visualize, dvc,
resume, learning, sweep, service_chain, ablation_graph_deploy, sb3 (see each
``bench/bench_*.py`` docstring). ``--quick`` never writes BENCHMARKS.md unless ``--write`` is
given.
Exit status: 0 when every benchmark ran (missed targets are reported, not failures), 1 when one
raised.
"""
from __future__ import annotations

import argparse
import importlib
import sys
import time
import traceback
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_common import (BENCHMARKS_MD, machine, run_benchmark, say,  # noqa: E402
                          write_section)

#: name -> (module, function); run in this order
BENCHMARKS = {
    "logging": ("bench_logging", "run"),
    "live": ("bench_live", "run"),
    "throughput": ("bench_throughput", "run"),
    "dense": ("bench_dense", "run"),
    "scaling": ("bench_scaling", "run"),
    "train_stage": ("bench_train_stage", "run"),
    "summarize": ("bench_stage_adapters", "run_summarize"),
    "visualize": ("bench_stage_adapters", "run_visualize"),
    "dvc": ("bench_dvc", "run"),
    "resume": ("bench_resume", "run"),
    "learning": ("bench_learning", "run"),
    "sweep": ("bench_sweep", "run"),
    "service_chain": ("bench_service_chain", "run"),
    "ablation_graph_deploy": ("bench_service_chain", "run_graph_deploy"),
    "sb3": ("bench_sb3", "run"),
    "export": ("bench_export", "run"),
}
TITLES = {
    "summarize": "summarize: stage vs bare pyarrow, start-up",
    "visualize": "visualize: the whole stage on 10k episodes + 2000 embeddings",
    "ablation_graph_deploy": "ablation_graph_deploy: GAT-PPO vs no message passing on "
                             "rlpipe/GraphDeploy-v0",
}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", nargs="+", choices=list(BENCHMARKS), metavar="NAME",
                    help=f"run only these ({', '.join(BENCHMARKS)})")
    ap.add_argument("--quick", action="store_true", help="tiny sizes: a smoke run")
    ap.add_argument("--no-write", action="store_true", help="do not touch BENCHMARKS.md")
    ap.add_argument("--write", action="store_true", help="write BENCHMARKS.md even with --quick")
    args = ap.parse_args(argv)
    names = [n for n in BENCHMARKS if not args.only or n in args.only]
    write = not args.no_write and (args.write or not args.quick)

    m = machine()
    say(f"machine: {m['nproc']} CPUs, {m['cpu']}, Python {m['python']}, torch {m.get('torch', '?')}"
        + ("  [quick: tiny sizes; the verdicts mean nothing at these sizes]" if args.quick else ""))
    failed = []
    for name in names:
        module, func = BENCHMARKS[name]
        mod = importlib.import_module(module)
        title = getattr(mod, "TITLE", None) if func == "run" else TITLES[name]
        say(f"== {name}: {title}")
        t0 = time.perf_counter()
        try:
            res = run_benchmark(name, title, lambda r, mod=mod, func=func: getattr(mod, func)(r, args.quick), args.quick)
        except Exception:  # noqa: BLE001 - report and go on with the others
            traceback.print_exc()
            say(f"{name}: FAILED after {time.perf_counter() - t0:.0f} s")
            failed.append(name)
            continue
        for c in res.checks:
            say(f"{name}: {c.text()}")
        say(f"{name}: done in {res.seconds:.0f} s; {res.load.describe()}")
        if write:
            write_section(res)
            say(f"{name}: section written to {BENCHMARKS_MD.name}")
    if failed:
        say(f"failed: {', '.join(failed)}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
