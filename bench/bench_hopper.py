"""Benchmark `hopper` (issue 22): rlpipe PPO with fixed-length rollouts against Stable-Baselines3
PPO on Hopper-v5 (MuJoCo), seeds interleaved, the same step budget.

SB3: ``PPO("MlpPolicy", "Hopper-v5")`` at its default hyperparameters (n_envs 1, n_steps 2048,
batch 64, 10 epochs, lr 3e-4, gamma 0.99, gae_lambda 0.95, clip 0.2, ent 0, vf 0.5, max grad norm
0.5; CleanRL's too). rlpipe, mapped onto its params: ``train.rollout: steps``, ``rollout_steps``
2048, ``num_envs`` 1, ``minibatches`` 32 (2048 / 64), ``update_epochs`` 10, both learning rates
3e-4, the same gamma, lambda, clip, entropy and grad-norm settings, MLP [64, 64], observation
normalization on (``auto`` for Box actions). rlpipe stops at the first update past the budget
(a SIGINT from a hook, the ordinary graceful stop). One thread each, on the CPU.

Figures: mean return of the last 100 episodes that ended within the budget, and environment
steps per second (steps / wall time of ``train()`` or ``learn()``). Targets: rlpipe's within
SB3's seed range; rlpipe's steps/s >= SB3's.

    python bench/bench_hopper.py [--steps 300000] [--seeds 0 1 2]   (needs gymnasium[mujoco], sb3)
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
                  "clip_coef": 0.2, "ent_coef": 0.0, "vf_coef": 0.5, "max_grad_norm": 0.5,
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
    out.put({"lib": "rlpipe", "seed": seed, "steps": steps, "sps": steps / wall,
             "last100": statistics.fmean(returns[-100:]), "episodes": len(returns)})


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
             "episodes": len(returns)})


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=300_000)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    a = ap.parse_args(argv)
    os.environ.update(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    ctx = mp.get_context("spawn")
    results = []
    for k, seed in enumerate(a.seeds):
        order = (rlpipe_run, sb3_run) if k % 2 == 0 else (sb3_run, rlpipe_run)
        for fn in order:
            q = ctx.Queue()
            proc = ctx.Process(target=fn, args=(seed, a.steps, q))
            proc.start()
            r = q.get()
            proc.join()
            r["load"] = Path("/proc/loadavg").read_text().split()[:3]
            print(json.dumps(r), flush=True)
            results.append(r)
    for lib in ("rlpipe", "sb3"):
        rs = [r for r in results if r["lib"] == lib]
        print(f"{lib}: last-100 return {[round(r['last100']) for r in rs]}, "
              f"steps/s {[round(r['sps']) for r in rs]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
