"""Benchmark `sweep`: trials in parallel on Ray vs the same trials one after another, and what
Ray costs per trial.

The trials: 6 training runs of the default params (rlpipe/GraphDeploy-v0, 20 nodes, PPO, 8
envs), 96 episodes each (``sweep.episodes``), seeds 0..5, ``torch_threads`` 1. Six, as in the
smallest study the sweep is for (issue 23's: 6 trials). A sweep pays once for its first worker
process (about 5 s: a new Ray worker imports torch and torch_geometric) whether its trials run
one or two at a time, so with T s per trial one at a time, T' two at a time and S for the start,
the ratio is (n T + S) / (n/2 T' + S): it grows with n towards 2 T / T'.

- plain sequential: one process trains the trials one after another with
  ``rlpipe.train.run.train(params, dir, console=False)``, no Ray; the sum of the ``train`` calls
  (imports done before, untimed) is the ideal one-core time;
- Ray, 1 at a time: ``python stages/sweep.py`` with ``max_concurrent: 1`` on an embedded Ray
  with 1 CPU; the stage's "N trials ran in X s" line (scheduling, worker start, file transfer
  and training; Ray start and aggregation excluded);
- Ray, 2 at a time: the same with ``max_concurrent: 2`` on 2 CPUs.

Throughput ratios (target >= 1.7x on the 2-core machine): Ray 1-at-a-time / Ray 2-at-a-time
trial time (the same stage, only the concurrency differs), and plain sequential / Ray
2-at-a-time (Ray against no Ray at all). Ray's overhead per trial = (Ray 1-at-a-time - plain sequential) / trials, split
into the first trial (a new worker process imports torch) and the later ones (the worker is
reused), from each attempt's driver-side seconds minus the run's own wall_seconds (run.json).
Also reported: Ray start-up and the bytes each trial sent home. Repetitions are interleaved.

Optuna's overhead (``sweep.search: optuna``): the first 4 trials as a study of 4 settings
(one seed each, one choice of ``train.actor_lr``, median pruner, a report at every checkpoint),
1 at a time; the stage's own count of the time its driver spent in Optuna (ask, report,
should_prune, tell, each a journal write + fsync) per trial, the study's opening, and the trial
phase per trial against the grid's 1-at-a-time run.

    python bench/run.py --only sweep [--quick]
"""
from __future__ import annotations

import json
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from bench_common import (PYTHON, QUICK_AGENT, QUICK_ENV, ROOT, Result, fmt_runs, median,
                          project_params_dict, say, tool_env, write_yaml)

NAME = "sweep"
TITLE = "sweep: 2 trials at a time on Ray vs one after another; Ray's cost per trial"
TARGET = 1.7
EPISODES = 96  # trials of ~10 s: Ray's ~1 s per trial is amortised as in a real sweep
STAGE = str(ROOT / "stages" / "sweep.py")

PLAIN = """
import json, sys, time
from pathlib import Path
sys.path.insert(0, {src!r})
from rlpipe.config import TRAIN_SECTIONS, Params, load_sections
from rlpipe.sweep.grid import expand
from rlpipe.train.run import train
import rlpipe.agents.algorithms, rlpipe.agents.policy  # untimed: what train() imports lazily
from dataclasses import replace
sections = load_sections({params!r}, (*TRAIN_SECTIONS, "sweep"))
params = replace(Params.from_dict({{}}), **sections)
times = []
for trial in expand(params, params.sweep):
    t0 = time.perf_counter()
    assert train(trial.params, Path({out!r}) / trial.trial_id, console=False) == 0
    times.append(time.perf_counter() - t0)
print(json.dumps(times))
"""


def params_dict(quick: bool, trials: int, concurrent: int) -> dict:
    over = {"train": {"progress_bar": False}}
    if quick:
        over = {"train": {"progress_bar": False, "num_envs": 2}, "env": QUICK_ENV,
                "agent": QUICK_AGENT}
    params = project_params_dict(over)
    params["sweep"] = {"seeds": list(range(trials)), "grid": {}, "episodes": 8 if quick else EPISODES,
                       "max_concurrent": concurrent, "address": "local", "max_retries": 0}
    return params


def plain_sequential(work: Path, params: dict) -> list[float]:
    write_yaml(work / "params.yaml", params)
    code = PLAIN.format(src=str(ROOT / "src"), params=str(work / "params.yaml"),
                        out=str(work / "plain"))
    p = subprocess.run([PYTHON, "-c", code], cwd=work, capture_output=True, text=True,
                       timeout=3600, env=tool_env())
    if p.returncode != 0:
        raise RuntimeError(f"plain run failed:\n{p.stdout}\n{p.stderr}")
    return json.loads(p.stdout.strip().splitlines()[-1])


def ray_sweep(work: Path, params: dict) -> dict:
    """Run the stage; its own timings and each attempt's driver-side and training seconds."""
    write_yaml(work / "params.yaml", params)
    t0 = time.perf_counter()
    p = subprocess.run([PYTHON, STAGE, "--params", "params.yaml", "--out", "out"], cwd=work,
                       capture_output=True, text=True, timeout=3600, env=tool_env())
    wall = time.perf_counter() - t0
    if p.returncode != 0:
        raise RuntimeError(f"sweep failed ({p.returncode}):\n{p.stdout}\n{p.stderr}")
    start = float(re.search(r"Ray instance \(\d+ CPUs?\) in ([\d.]+) s", p.stdout).group(1))
    trials_s = float(re.search(r"trials? ran in ([\d.]+) s", p.stdout).group(1))
    attempts = []
    for folder in sorted((work / "out" / "trials").iterdir()):
        [attempt] = json.loads((folder / "trial.json").read_text())["attempts"]
        run = json.loads((folder / "training_output" / "run.json").read_text())
        attempts.append({"driver_s": attempt["seconds"], "train_s": run["wall_seconds"],
                         "worker_s": attempt["worker_seconds"],
                         "started": attempt["worker_started_at"], "bytes_out": attempt["bytes_out"]})
    return {"wall": wall, "start": start, "trials": trials_s, "attempts": attempts}


def search_params(quick: bool, trials: int) -> dict:
    params = params_dict(quick, trials, 1)
    params["sweep"].update({"search": "optuna", "trials": trials, "seeds": [0],
                            "space": {"train.actor_lr": [0.0003]}, "pruner": "median"})
    return params


def search_sweep(work: Path, params: dict) -> dict:
    write_yaml(work / "params.yaml", params)
    p = subprocess.run([PYTHON, STAGE, "--params", "params.yaml", "--out", "out"], cwd=work,
                       capture_output=True, text=True, timeout=3600, env=tool_env())
    if p.returncode != 0:
        raise RuntimeError(f"search failed ({p.returncode}):\n{p.stdout}\n{p.stderr}")
    m = re.search(r"optuna: opening the study ([\d.]+) s; (\d+) ask/report/tell calls ([\d.]+) s",
                  p.stdout)
    trials_s = float(re.search(r"trials? ran in ([\d.]+) s", p.stdout).group(1))
    return {"open": float(m.group(1)), "calls": int(m.group(2)), "optuna": float(m.group(3)),
            "trials": trials_s}


def concurrency(r: dict) -> float:
    """Mean number of trials running at once: their summed worker time over the time from the
    first start to the last end (2.0 = always two at once)."""
    a = r["attempts"]
    span = max(x["started"] + x["worker_s"] for x in a) - min(x["started"] for x in a)
    return sum(x["worker_s"] for x in a) / span


def run(res: Result, quick: bool) -> None:
    n = 2 if quick else 6
    n_search = 2 if quick else 4
    reps = 1 if quick else 2
    plain, seq, par = [], [], []
    for rep in range(reps):
        order = ("plain", "seq", "par") if rep % 2 == 0 else ("par", "seq", "plain")
        for kind in order:
            work = Path(tempfile.mkdtemp(prefix=f"bench-sweep-{kind}-"))
            try:
                if kind == "plain":
                    times = plain_sequential(work, params_dict(quick, n, 1))
                    plain.append(times)
                    say(f"sweep: plain sequential {sum(times):.1f} s ({fmt_runs(times)})")
                else:
                    r = ray_sweep(work, params_dict(quick, n, 1 if kind == "seq" else 2))
                    (seq if kind == "seq" else par).append(r)
                    say(f"sweep: Ray {1 if kind == 'seq' else 2} at a time: trials {r['trials']:.1f} s, "
                        f"Ray start {r['start']:.1f} s, stage {r['wall']:.1f} s")
            finally:
                shutil.rmtree(work, ignore_errors=True)

    searches = []
    for _ in range(reps):
        work = Path(tempfile.mkdtemp(prefix="bench-sweep-search-"))
        try:
            searches.append(search_sweep(work, search_params(quick, n_search)))
            say(f"sweep: optuna study, 1 at a time: trials {searches[-1]['trials']:.1f} s, "
                f"in Optuna {searches[-1]['optuna']:.2f} s")
        finally:
            shutil.rmtree(work, ignore_errors=True)

    plain_s = [sum(t) for t in plain]
    seq_s = [r["trials"] for r in seq]
    par_s = [r["trials"] for r in par]
    ratio = median(plain_s) / median(par_s)
    vs_ray_seq = median(seq_s) / median(par_s)
    overhead = (median(seq_s) - median(plain_s)) / n
    # per attempt in the 1-at-a-time runs: driver-side seconds minus the run's own training time
    firsts, laters = [], []
    for r in seq:
        by_start = sorted(r["attempts"], key=lambda a: a["started"])
        gaps = [a["driver_s"] - a["train_s"] for a in by_start]
        firsts.append(gaps[0])
        laters.extend(gaps[1:])
    bytes_out = [a["bytes_out"] for r in seq + par for a in r["attempts"]]
    conc = [concurrency(r) for r in par]
    slow = [median([a["worker_s"] for a in r["attempts"]]) for r in par]
    fast = [median([a["worker_s"] for a in r["attempts"]]) for r in seq]
    train_each = [x for t in plain for x in t]

    res.body += [
        f"Trials: {n} runs of the default params (rlpipe/GraphDeploy-v0, 20 nodes, PPO, 8 envs), "
        f"{params_dict(quick, n, 1)['sweep']['episodes']} episodes each, seeds 0..{n - 1}, "
        "`torch_threads` 1; an embedded Ray (`sweep.address: local`) with as many CPUs as trials "
        f"at a time. {reps} interleaved repetition(s) of each way.",
        "",
        f"- plain sequential (`train()` calls in one process, no Ray): {fmt_runs(plain_s, '{:.1f}')} s "
        f"(median {median(plain_s):.1f} s; one trial {median(train_each):.1f} s)",
        f"- Ray, 1 trial at a time (1 CPU): trials {fmt_runs(seq_s, '{:.1f}')} s "
        f"(median {median(seq_s):.1f} s)",
        f"- Ray, 2 trials at a time (2 CPUs): trials {fmt_runs(par_s, '{:.1f}')} s "
        f"(median {median(par_s):.1f} s)",
        f"- Ray start-up (`ray.init`, local, before the first trial): "
        f"{fmt_runs([r['start'] for r in seq + par], '{:.1f}')} s; whole stage wall "
        f"(start-up, trials, aggregation, figures): {fmt_runs([r['wall'] for r in seq + par], '{:.1f}')} s",
        f"- trials running at once in the 2-at-a-time runs (summed worker time / span): "
        f"{fmt_runs(conc)}; median worker time of a trial: {fmt_runs(fast, '{:.1f}')} s one at a "
        f"time, {fmt_runs(slow, '{:.1f}')} s two at a time",
        f"- two at a time, a trial took {median(slow) / median(fast):.2f}x as long as one at a "
        f"time (1.0x = a free core for each, 2.0x = the two shared one core's worth of CPU)",
        f"- per-trial overhead in the 1-at-a-time runs (driver-side attempt seconds minus the "
        f"run's wall_seconds): first trial {fmt_runs(firsts, '{:.2f}')} s (a new worker imports "
        f"torch), later trials median {median(laters) if laters else float('nan'):.2f} s",
        f"- bytes each trial sent home (checkpoints + logs, every checkpoint): median "
        f"{median(bytes_out) / 1e6:.2f} MB",
        f"- optuna study of {n_search} of these trials (1 seed each, median pruner, a report per "
        f"checkpoint), 1 at a time: trials {fmt_runs([r['trials'] for r in searches], '{:.1f}')} s; "
        f"time in Optuna (ask/report/should_prune/tell, journal writes) "
        f"{fmt_runs([r['optuna'] for r in searches], '{:.2f}')} s over "
        f"{fmt_runs([r['calls'] for r in searches], '{:d}')} calls; opening the study "
        f"{fmt_runs([r['open'] for r in searches], '{:.2f}')} s",
        "",
        "The ratios compare the trial phase only: Ray's start-up (a few seconds, once per sweep) "
        "and the aggregation are listed above and not in them. Two trials at a time can only be "
        "twice as fast when two cores are free for them: when each trial takes as long two at a "
        "time as one at a time, the speed-up is ~2x; when it takes twice as long, the cores were "
        "busy with other work (see the load line).",
    ]
    res.check("Ray 1-at-a-time / Ray 2-at-a-time trial time (same stage, throughput)",
              vs_ray_seq, f">= {TARGET}x", vs_ray_seq >= TARGET, fmt="{:.2f}x")
    res.check("plain sequential (no Ray) / Ray 2-at-a-time trial time", ratio,
              f">= {TARGET}x", ratio >= TARGET, fmt="{:.2f}x")
    res.check("Ray overhead per trial, 1 at a time vs plain", overhead, "", None, fmt="{:.2f} s")
    res.check("trials running at once, 2 at a time (median)", median(conc), "", None, fmt="{:.2f}")
    res.check("Optuna's overhead per trial (driver time in Optuna / trials), median",
              median([r["optuna"] / n_search for r in searches]), "", None, fmt="{:.3f} s")
    res.check("optuna study vs grid, trial phase per trial, 1 at a time (difference)",
              median([r["trials"] for r in searches]) / n_search - median(seq_s) / n, "", None,
              fmt="{:.2f} s")
    res.check("Ray overhead of a later trial (worker reused), median",
              median(laters) if laters else float("nan"), "", None, fmt="{:.2f} s")
