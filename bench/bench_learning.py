"""Benchmark `learning`: does the agent learn, against a random policy and the oracle.

1. GAT-PPO and GAT-A2C on the default deployment task (the project's params.yaml, its
   ``train.episodes``) over seeds 0, 1, 2: ``python stages/train.py --no-progress`` in temporary
   folders, at most 2 processes at a time. Final deployment accuracy = mean of the last 50 rows
   of episodes.csv, mean +- sd over seeds; against a random policy and the oracle on the same
   seeds (``rlpipe.evaluation.runner.evaluate(params, None, policy, 50, seed)``).
2. Zero-shot: each run's final checkpoint, greedy, on graphs twice as large
   (``evaluate_checkpoint(path, policy='greedy', env_overrides={'num_nodes': 2 n})``, 50 episodes,
   evaluation seed 10000); target >= 0.80. Same-size greedy accuracy shown beside it.
3. MLP-PPO on CartPole-v1 with ``bench/params_cartpole.yaml`` over the same seeds: mean return of
   the last 100 episodes when 50k / 100k / 150k env steps are reached (a run is stopped with
   SIGTERM once its updates.csv passes 150k steps); target >= 475 by 150k.

    python bench/run.py --only learning [--quick]
"""
from __future__ import annotations

import csv
import math
import signal
import statistics
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from bench_common import (BENCH, PYTHON, QUICK_AGENT, QUICK_ENV, ROOT, Result, deep_update,
                          load_yaml, params_from_dict, project_params_dict, say, tool_env,
                          write_yaml)

NAME = "learning"
TITLE = "learning: GAT-PPO / GAT-A2C deployment accuracy, zero-shot on 2x graphs, MLP-PPO CartPole"
ZERO_SHOT_TARGET = 0.80
CARTPOLE_TARGET = 475.0
CARTPOLE_MARKS = (50_000, 100_000, 150_000)
STAGE = str(ROOT / "stages" / "train.py")
PARALLEL = 2


@dataclass
class Job:
    name: str
    folder: Path
    params: dict
    stop_steps: int | None = None     # SIGTERM once updates.csv passes this global step
    proc: subprocess.Popen | None = None
    started: float = 0.0
    seconds: float = 0.0
    returncode: int | None = None
    log: list = field(default_factory=list)


def last_global_step(path: Path) -> int:
    try:
        with open(path, "rb") as f:
            f.seek(0, 2)
            f.seek(max(0, f.tell() - 4096))
            lines = f.read().decode(errors="replace").split("\n")[:-1]
    except OSError:
        return 0
    for line in reversed(lines):
        cells = line.split(",")
        if len(cells) > 1 and cells[1].isdigit():
            return int(cells[1])
    return 0


def run_jobs(jobs: list[Job], parallel: int = PARALLEL, timeout: float = 3600) -> None:
    pending, running = list(jobs), []
    deadline = time.monotonic() + timeout
    while pending or running:
        while pending and len(running) < parallel:
            job = pending.pop(0)
            job.folder.mkdir(parents=True, exist_ok=True)
            write_yaml(job.folder / "params.yaml", job.params)
            job.started = time.perf_counter()
            job.proc = subprocess.Popen([PYTHON, STAGE, "--no-progress"], cwd=job.folder,
                                        env=tool_env(), stdout=subprocess.DEVNULL,
                                        stderr=open(job.folder / "stderr.txt", "w"))
            running.append(job)
            say(f"  [learning] started {job.name}")
        time.sleep(1.0)
        for job in list(running):
            if job.stop_steps and job.proc.poll() is None and \
                    last_global_step(job.folder / "training_output" / "updates.csv") >= job.stop_steps:
                job.proc.send_signal(signal.SIGTERM)   # finishes the rollout, checkpoints, exits 143
                job.stop_steps = None
            if job.proc.poll() is not None:
                job.seconds = time.perf_counter() - job.started
                job.returncode = job.proc.returncode
                running.remove(job)
                say(f"  [learning] {job.name} finished (exit {job.returncode}) in {job.seconds:.0f} s")
                if job.returncode not in (0, 143):
                    raise RuntimeError(f"{job.name} failed ({job.returncode}):\n"
                                       f"{(job.folder / 'stderr.txt').read_text()[-3000:]}")
        if time.monotonic() > deadline:
            for job in running:
                job.proc.kill()
            raise RuntimeError("learning runs took too long")


def read_episodes(folder: Path) -> list[dict]:
    with open(folder / "training_output" / "episodes.csv", newline="") as f:
        return list(csv.DictReader(f))


def mean_sd(xs: list[float]) -> tuple[float, float]:
    return statistics.mean(xs), (statistics.stdev(xs) if len(xs) > 1 else 0.0)


def pm(xs: list[float], f: str = "{:.3f}") -> str:
    m, s = mean_sd(xs)
    return f"{f.format(m)} ± {f.format(s)}"


def cartpole_marks(rows: list[dict]) -> dict:
    out, total, returns = {}, 0, []
    marks = list(CARTPOLE_MARKS)
    first_475 = None
    for r in rows:
        total += int(r["Episode Length"])
        returns.append(float(r["Cumulative Reward"]))
        window = returns[-100:]
        m = sum(window) / len(window)
        if first_475 is None and len(window) == 100 and m >= CARTPOLE_TARGET:
            first_475 = total
        while marks and total >= marks[0]:
            out[marks.pop(0)] = m
    return {"at": out, "steps": total, "episodes": len(rows), "first_475": first_475}


def run(res: Result, quick: bool) -> None:
    from rlpipe.checkpoints import list_checkpoints
    from rlpipe.evaluation.report import summarize
    from rlpipe.evaluation.runner import evaluate as play, evaluate_checkpoint

    def evaluate(params, state, episodes, seed, policy, overrides=None):
        return summarize(play(params, state, policy, episodes, seed, overrides))

    seeds = (0,) if quick else (0, 1, 2)
    eval_episodes = 5 if quick else 50
    cp_stop = 3_000 if quick else max(CARTPOLE_MARKS)
    gat_over = {"train": {"progress_bar": False}}
    if quick:
        gat_over = {"train": {"progress_bar": False, "episodes": 16, "num_envs": 4},
                    "env": QUICK_ENV, "agent": QUICK_AGENT}
    base = project_params_dict(gat_over)
    cart = load_yaml(BENCH / "params_cartpole.yaml")
    t_all = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench_learning_") as tmp:
        tmp = Path(tmp)
        jobs: list[Job] = []
        for seed in seeds:
            for algo in ("ppo", "a2c"):
                p = deep_update(base, {"train": {"algo": algo, "seed": seed}})
                jobs.append(Job(f"gat-{algo}-s{seed}", tmp / f"gat-{algo}-s{seed}", p))
            jobs.append(Job(f"cartpole-s{seed}", tmp / f"cartpole-s{seed}",
                            deep_update(cart, {"train": {"seed": seed}}), stop_steps=cp_stop))
        run_jobs(jobs)
        train_seconds = time.perf_counter() - t_all
        by = {j.name: j for j in jobs}

        params = params_from_dict(base)
        n = params.env.kwargs["num_nodes"]
        acc: dict[str, list[float]] = {"ppo": [], "a2c": []}
        ret: dict[str, list[float]] = {"ppo": [], "a2c": []}
        zs: dict[str, list[float]] = {"ppo": [], "a2c": []}
        same: dict[str, list[float]] = {"ppo": [], "a2c": []}
        secs: dict[str, list[float]] = {"ppo": [], "a2c": []}
        for seed in seeds:
            for algo in ("ppo", "a2c"):
                job = by[f"gat-{algo}-s{seed}"]
                rows = read_episodes(job.folder)[-50:]
                acc[algo].append(statistics.mean(float(r["Deployment Accuracy"]) for r in rows))
                ret[algo].append(statistics.mean(float(r["Cumulative Reward"]) for r in rows))
                secs[algo].append(job.seconds)
                ck = list_checkpoints(job.folder / "checkpoints")[0][1]
                z = evaluate_checkpoint(ck, eval_episodes, 10_000, "greedy", {"num_nodes": 2 * n})
                s = evaluate_checkpoint(ck, eval_episodes, 10_000, "greedy")
                zs[algo].append(z["reference_accuracy"]["mean"])
                same[algo].append(s["reference_accuracy"]["mean"])
                say(f"  [learning] gat-{algo} seed {seed}: final accuracy {acc[algo][-1]:.3f}, greedy "
                    f"{s['reference_accuracy']['mean']:.3f} on {n} nodes, {z['reference_accuracy']['mean']:.3f} on {2 * n}")
        base_acc = {"random": [], "oracle": []}
        base_ret = {"random": [], "oracle": []}
        for seed in seeds:
            for pol in ("random", "oracle"):
                e = evaluate(params, None, eval_episodes, seed, "reference" if pol == "oracle" else pol)
                base_acc[pol].append(e["reference_accuracy"]["mean"])
                base_ret[pol].append(e["return"]["mean"])
        big = {pol: evaluate(params, None, eval_episodes, 10_000, "reference" if pol == "oracle" else pol,
                            {"num_nodes": 2 * n})
               for pol in ("random", "oracle")}
        cps = {seed: cartpole_marks(read_episodes(by[f"cartpole-s{seed}"].folder)) for seed in seeds}
        cp_secs = [by[f"cartpole-s{seed}"].seconds for seed in seeds]

    say(f"learning: final deployment accuracy GAT-PPO {pm(acc['ppo'])}, GAT-A2C {pm(acc['a2c'])}, "
        f"random {pm(base_acc['random'])}, oracle {pm(base_acc['oracle'])}")
    for algo in ("ppo", "a2c"):
        m = statistics.mean(zs[algo])
        say(f"learning: zero-shot greedy accuracy on {2 * n} nodes GAT-{algo.upper()} {pm(zs[algo])} "
            f"(target >= {ZERO_SHOT_TARGET}: {'PASS' if m >= ZERO_SHOT_TARGET else 'MISSED'})")
    at150 = [cps[s]["at"].get(max(CARTPOLE_MARKS), float("nan")) for s in seeds]
    say("learning: CartPole MLP-PPO return at " + ", ".join(
        f"{k // 1000}k {pm([cps[s]['at'].get(k, float('nan')) for s in seeds], '{:.1f}')}"
        for k in CARTPOLE_MARKS) + f" (target >= {CARTPOLE_TARGET:.0f} by 150k)")

    episodes = params.train.episodes
    res.body += [
        f"GAT runs: the project's params.yaml ({params.env.id}, {n} nodes, {params.env.kwargs['num_cloud']} cloud, "
        f"{params.env.kwargs['requests_per_episode']} requests/episode, {episodes} episodes, {params.train.num_envs} "
        f"envs, lr {params.train.actor_lr:g}, gamma {params.train.gamma:g}), `train.algo` ppo or a2c, seeds "
        f"{', '.join(map(str, seeds))}; `python stages/train.py --no-progress`, {PARALLEL} at a time "
        f"(all training {train_seconds / 60:.1f} min wall). Accuracy = share of decisions in the oracle's "
        "best set. Final = mean of the last 50 episodes of episodes.csv (training policy, sampled); "
        f"baselines: `evaluate(params, None, {eval_episodes}, seed, 'random'|'reference')` on the same seeds. "
        f"Greedy: the run's final checkpoint, `evaluate_checkpoint(..., {eval_episodes} episodes, seed 10000, "
        f"'greedy')` on {n}-node graphs and zero-shot on {2 * n}-node graphs. Mean ± sd over seeds.",
        "",
        "| policy | final accuracy (last 50 ep.) | final return (last 50 ep.) | greedy accuracy, "
        f"{n} nodes | zero-shot greedy accuracy, {2 * n} nodes | train time per run |",
        "|---|---|---|---|---|---|",
    ]
    for algo in ("ppo", "a2c"):
        res.body.append(f"| GAT-{algo.upper()} | {pm(acc[algo])} | {pm(ret[algo], '{:.2f}')} | "
                        f"{pm(same[algo])} | {pm(zs[algo])} | {statistics.mean(secs[algo]):.0f} s |")
    for pol in ("random", "oracle"):
        res.body.append(f"| {pol} | {pm(base_acc[pol])} | {pm(base_ret[pol], '{:.2f}')} | - | "
                        f"{big[pol]['reference_accuracy']['mean']:.3f} | - |")
    res.body += [
        "",
        "Per seed, final accuracy: " + "; ".join(
            f"GAT-{a.upper()} " + ", ".join(f"{x:.3f}" for x in acc[a]) for a in ("ppo", "a2c")) +
        ". Zero-shot: " + "; ".join(
            f"GAT-{a.upper()} " + ", ".join(f"{x:.3f}" for x in zs[a]) for a in ("ppo", "a2c")) + ".",
        "",
        f"CartPole-v1, MLP-PPO, `bench/params_cartpole.yaml` (gamma 0.99, GAE 0.95, lr 1e-3, 8 envs, "
        "10 epochs x 8 minibatches, ent_coef 0, captures/steps.csv/TensorBoard off), stopped once "
        f"{cp_stop:,} steps were passed. Mean return of the last 100 episodes when the run reached:",
        "",
        "| seed | " + " | ".join(f"{k // 1000}k steps" for k in CARTPOLE_MARKS) +
        " | first step with last-100 mean >= 475 | run time |",
        "|---|" + "---|" * (len(CARTPOLE_MARKS) + 2),
    ]
    for s, secs_cp in zip(seeds, cp_secs):
        c = cps[s]
        res.body.append(f"| {s} | " + " | ".join(
            f"{c['at'][k]:.1f}" if k in c["at"] else "not reached" for k in CARTPOLE_MARKS) +
            f" | {c['first_475'] if c['first_475'] else '-'} | {secs_cp:.0f} s |")
    res.body.append("| mean ± sd | " + " | ".join(
        pm([cps[s]["at"].get(k, float("nan")) for s in seeds], "{:.1f}") for k in CARTPOLE_MARKS) + " | | |")

    for algo in ("ppo", "a2c"):
        res.check(f"GAT-{algo.upper()} final deployment accuracy (random {statistics.mean(base_acc['random']):.3f}, "
                  f"oracle {statistics.mean(base_acc['oracle']):.3f})", pm(acc[algo]), "", None, "{}")
    for algo in ("ppo", "a2c"):
        m = statistics.mean(zs[algo])
        res.check(f"GAT-{algo.upper()} zero-shot greedy accuracy on {2 * n}-node graphs (mean of seeds)",
                  m, f">= {ZERO_SHOT_TARGET:.2f}", m >= ZERO_SHOT_TARGET, "{:.3f}")
    m150 = statistics.mean(at150) if not any(math.isnan(x) for x in at150) else float("nan")
    res.check(f"CartPole MLP-PPO return at {cp_stop // 1000}k steps (mean of seeds; min {min(at150):.1f})",
              m150, f">= {CARTPOLE_TARGET:.0f}", (m150 >= CARTPOLE_TARGET) if not quick else None, "{:.1f}")
