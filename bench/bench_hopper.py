"""Benchmark `hopper` (issue 22): rlpipe PPO with fixed-length rollouts against Stable-Baselines3
PPO on Hopper-v5 (MuJoCo), seeds interleaved, the same step budget.

SB3: ``PPO("MlpPolicy", "Hopper-v5")`` at its default hyperparameters (n_envs 1, n_steps 2048,
batch 64, 10 epochs, lr 3e-4, gamma 0.99, gae_lambda 0.95, clip 0.2, ent 0, vf 0.5, max grad norm
0.5; CleanRL's too). rlpipe, mapped onto its params: ``train.rollout: steps``, ``rollout_steps``
2048, ``num_envs`` 1, ``minibatches`` 32 (2048 / 64), ``update_epochs`` 10, both learning rates
3e-4, the same gamma, lambda, clip and entropy settings, ``max_grad_norm`` 0.5 for the actor and
``critic_max_grad_norm`` 1.0 (SB3 clips actor and critic together at 0.5 with the value loss
weighted 0.5; rlpipe's critic has its own Adam, which ignores the weight, so its clip is 0.5 /
0.5), MLP [64, 64] tanh for each, no observation normalization (SB3's default has none).
rlpipe stops at the first update past the budget (a SIGINT from a hook, the ordinary graceful
stop). One thread each, on the CPU.

Figures: mean return of the last 100 episodes that ended within the budget; the step at which
the mean of the last 100 episodes first reached ``--reach`` (475: the issue's figure); and
environment steps per second (steps / wall time of ``train()`` or ``learn()``). Targets:
rlpipe's return within SB3's seed range; rlpipe's steps/s >= SB3's.

``--side-by-side`` runs rlpipe and SB3 of one seed at the same time, one process per core (the
two share the machine alike, so the steps/s ratio is measured under one load); otherwise the
runs are interleaved one after another.

    python bench/bench_hopper.py [--steps 300000] [--seeds 0 1 2] [--side-by-side]
    (needs gymnasium[mujoco] and stable-baselines3: pip install -e ".[bench]" "gymnasium[mujoco]")
"""
from __future__ import annotations

import argparse
import csv
import json
import multiprocessing as mp
import os
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def rlpipe_run(seed: int, budget: int, out) -> None:
    sys.path.insert(0, str(REPO / "src"))
    import torch

    from rlpipe.config import Params
    from rlpipe.hooks.base import Hook
    from rlpipe.train.run import train

    torch.set_num_threads(1)

    class Budget(Hook):
        def on_update(self, rec):
            if rec.global_step >= budget:
                os.kill(os.getpid(), signal.SIGINT)   # the graceful stop, at the next step

    p = Params.from_dict({
        "env": {"id": "Hopper-v5"},
        "agent": {"mlp_hidden": [64, 64]},
        "train": {"episodes": 10_000_000, "seed": seed, "num_envs": 1, "rollout": "steps",
                  "rollout_steps": 2048, "minibatches": 32, "update_epochs": 10,
                  "actor_lr": 3e-4, "critic_lr": 3e-4, "gamma": 0.99, "gae_lambda": 0.95,
                  "clip_coef": 0.2, "ent_coef": 0.0, "max_grad_norm": 0.5,
                  "critic_max_grad_norm": 1.0, "normalize_observations": False,
                  "progress_bar": False},
        "experiment": {"write_interval": 0, "step_log_interval": 0},
        "capture": {"every": 0, "last": 0},
    })
    with tempfile.TemporaryDirectory() as d:
        t = time.perf_counter()
        train(p, Path(d), [Budget()], console=False)
        wall = time.perf_counter() - t
        with open(Path(d) / "training_output" / "episodes.csv") as f:
            rows = list(csv.DictReader(f))
        steps = json.loads((Path(d) / "training_output" / "run.json").read_text())["global_step"]
    returns = [float(r["Cumulative Reward"]) for r in rows]
    lengths = [int(r["Episode Length"]) for r in rows]
    out.put({"lib": "rlpipe", "seed": seed, "steps": steps, "sps": steps / wall,
             "last100": statistics.fmean(returns[-100:]), "episodes": len(returns),
             "curve": curve(returns, lengths)})


def sb3_run(seed: int, budget: int, out) -> None:
    import gymnasium as gym
    import torch
    from stable_baselines3 import PPO
    from stable_baselines3.common.monitor import Monitor

    torch.set_num_threads(1)
    env = Monitor(gym.make("Hopper-v5"))
    model = PPO("MlpPolicy", env, seed=seed, device="cpu", verbose=0)
    t = time.perf_counter()
    model.learn(budget)
    wall = time.perf_counter() - t
    returns = list(env.get_episode_rewards())
    out.put({"lib": "sb3", "seed": seed, "steps": model.num_timesteps,
             "sps": model.num_timesteps / wall, "last100": statistics.fmean(returns[-100:]),
             "episodes": len(returns), "curve": curve(returns, list(env.get_episode_lengths()))})


def curve(returns: list[float], lengths: list[int]) -> list[tuple[int, float]]:
    """(steps when the episode ended, mean return of the last 100 episodes) per episode, 1 env."""
    out, total = [], 0
    for k, length in enumerate(lengths):
        total += length
        out.append((total, statistics.fmean(returns[max(0, k - 99):k + 1])))
    return out


def first_reach(points: list[tuple[int, float]], level: float) -> int | None:
    return next((step for step, mean in points if mean >= level), None)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=300_000)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--reach", type=float, default=475.0)
    ap.add_argument("--side-by-side", action="store_true",
                    help="run rlpipe and SB3 of a seed at the same time, one per core")
    a = ap.parse_args(argv)
    os.environ.update(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    ctx = mp.get_context("spawn")
    results = []

    def finished(r: dict) -> None:
        r["load"] = Path("/proc/loadavg").read_text().split()[:3]
        r["reached"] = first_reach(r.pop("curve"), a.reach)
        print(json.dumps(r), flush=True)
        results.append(r)

    for k, seed in enumerate(a.seeds):
        order = (rlpipe_run, sb3_run) if k % 2 == 0 else (sb3_run, rlpipe_run)
        groups = [order] if a.side_by_side else [(fn,) for fn in order]
        for group in groups:
            q = ctx.Queue()
            procs = [ctx.Process(target=fn, args=(seed, a.steps, q)) for fn in group]
            for proc in procs:
                proc.start()
            done = [q.get() for _ in procs]
            for proc in procs:
                proc.join()
            for r in done:
                finished(r)
    print(f"budget {a.steps} steps, {'side by side' if a.side_by_side else 'interleaved'}")
    for lib in ("rlpipe", "sb3"):
        rs = [r for r in results if r["lib"] == lib]
        print(f"{lib}: last-100 return {[round(r['last100']) for r in rs]}, "
              f"first last-100 mean >= {a.reach:g} at {[r['reached'] for r in rs]} steps, "
              f"steps/s {[round(r['sps']) for r in rs]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
