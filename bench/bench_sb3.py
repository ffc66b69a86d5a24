"""Benchmark `sb3`: rlpipe MLP-PPO against Stable-Baselines3 PPO, side by side, on Pendulum-v1
(Box actions) and CartPole-v1 (Discrete).

For each environment and seed 0, 1, 2 the two libraries run one after the other in separate
processes (the order alternates by seed, so a load change hits both), each with one thread
(``OMP_NUM_THREADS=MKL_NUM_THREADS=1``, ``torch.set_num_threads(1)``), on the CPU:

- rlpipe: ``rlpipe.train.run.train`` with ``bench/params_pendulum.yaml`` /
  ``bench/params_cartpole.yaml`` (all logs and checkpoints on, as a user runs it; TensorBoard,
  steps.csv and captures off), stopped with SIGTERM once updates.csv passes the step budget.
- SB3: ``PPO("MlpPolicy", make_vec_env(env, n_envs))`` with rl-baselines3-zoo's tuned
  hyperparameters (hyperparams/ppo.yml: Pendulum-v1 n_envs 4, n_steps 1024, gae_lambda 0.95,
  gamma 0.9, n_epochs 10, ent_coef 0, lr 1e-3, clip 0.2, use_sde, sde_sample_freq 4; CartPole-v1
  n_envs 8, n_steps 32, batch 256, gae_lambda 0.8, gamma 0.98, n_epochs 20, ent_coef 0,
  lr lin_0.001, clip lin_0.2), ``learn(budget)``.

Environment steps per second = steps done / wall time of ``train()`` (rlpipe) or
``learn()`` (SB3), in the worker process. Return = mean return of the last 100 episodes that
ended within the step budget. Targets: Pendulum rlpipe >= -250 by 200k steps; per environment,
rlpipe's median steps/s >= SB3's, and rlpipe's mean return >= the worst SB3 seed.

    python bench/run.py --only sb3 [--quick]      (needs: pip install -e '.[bench]')
"""
from __future__ import annotations

import csv
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from bench_common import BENCH, PYTHON, Result, deep_update, load_yaml, say, tool_env

NAME = "sb3"
TITLE = "sb3: rlpipe PPO vs Stable-Baselines3 PPO (zoo hyperparameters), Pendulum-v1 and CartPole-v1"
PENDULUM_TARGET = -250.0
ENVS = {  # env id -> (rlpipe params file, step budget)
    "Pendulum-v1": ("params_pendulum.yaml", 200_000),
    "CartPole-v1": ("params_cartpole.yaml", 100_000),
}
ZOO = {
    "Pendulum-v1": dict(n_envs=4, n_steps=1024, gae_lambda=0.95, gamma=0.9, n_epochs=10,
                        ent_coef=0.0, learning_rate=1e-3, clip_range=0.2, use_sde=True,
                        sde_sample_freq=4),
    "CartPole-v1": dict(n_envs=8, n_steps=32, batch_size=256, gae_lambda=0.8, gamma=0.98,
                        n_epochs=20, ent_coef=0.0, learning_rate="lin_0.001", clip_range="lin_0.2"),
}
ONE_THREAD = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}


# --------------------------------------------------------------------------- workers (child side)
def last_100(episodes: list[tuple[int, float]], budget: int) -> float:
    """Mean return of the last 100 episodes that ended at or before ``budget`` steps."""
    done = [r for end, r in episodes if end <= budget][-100:]
    return statistics.mean(done) if done else float("nan")


def worker_rlpipe(env_id: str, seed: int, budget: int, folder: Path) -> dict:
    import signal

    from bench_learning import last_global_step
    from rlpipe.config import Params
    from rlpipe.train.run import train

    params_file, _ = ENVS[env_id]
    data = deep_update(load_yaml(BENCH / params_file), {"train": {"seed": seed}})
    params = Params.from_dict(data)
    updates = folder / "training_output" / "updates.csv"
    stop = threading.Event()

    def watch() -> None:  # SIGTERM = finish the rollout in flight, checkpoint, stop
        while not stop.wait(0.2):
            if last_global_step(updates) >= budget:
                os.kill(os.getpid(), signal.SIGTERM)
                return

    import rlpipe.agents.algorithms  # noqa: F401 - imported before the clock starts, as SB3 is
    import rlpipe.agents.policy  # noqa: F401

    threading.Thread(target=watch, daemon=True).start()
    t0 = time.perf_counter()
    code = train(params, folder, console=False)
    seconds = time.perf_counter() - t0
    stop.set()
    with open(folder / "training_output" / "episodes.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    episodes, total = [], 0
    for r in rows:
        total += int(r["Episode Length"])
        episodes.append((total, float(r["Cumulative Reward"])))
    n = params.train.num_envs
    lengths = [int(r["Episode Length"]) for r in rows]
    rollouts = [lengths[i:i + n] for i in range(0, len(lengths), n)]
    lockstep = sum(map(sum, rollouts)) / sum(len(g) * max(g) for g in rollouts)
    return {"exit": code, "steps": total, "seconds": seconds, "episodes": episodes,
            "lockstep_efficiency": lockstep}


def _schedule(v):
    if isinstance(v, str) and v.startswith("lin_"):
        start = float(v[4:])
        return lambda progress_remaining: progress_remaining * start
    return v


def worker_sb3(env_id: str, seed: int, budget: int) -> dict:
    import torch
    from stable_baselines3 import PPO
    from stable_baselines3.common.callbacks import BaseCallback
    from stable_baselines3.common.env_util import make_vec_env

    torch.set_num_threads(1)
    hp = {k: _schedule(v) for k, v in ZOO[env_id].items()}
    env = make_vec_env(env_id, n_envs=hp.pop("n_envs"), seed=seed)
    episodes: list[tuple[int, float]] = []

    class Record(BaseCallback):
        def _on_step(self) -> bool:
            for info in self.locals["infos"]:
                if "episode" in info:
                    episodes.append((self.num_timesteps, float(info["episode"]["r"])))
            return True

    model = PPO("MlpPolicy", env, seed=seed, device="cpu", verbose=0, **hp)
    t0 = time.perf_counter()
    model.learn(total_timesteps=budget, callback=Record())
    seconds = time.perf_counter() - t0
    return {"exit": 0, "steps": int(model.num_timesteps), "seconds": seconds, "episodes": episodes}


def worker_main(argv: list[str]) -> None:
    lib, env_id, seed, budget, out = argv[0], argv[1], int(argv[2]), int(argv[3]), Path(argv[4])
    if lib == "rlpipe":
        with tempfile.TemporaryDirectory(prefix="bench_sb3_") as d:
            res = worker_rlpipe(env_id, seed, budget, Path(d))
    else:
        res = worker_sb3(env_id, seed, budget)
    res["return"] = last_100(res["episodes"], budget)
    res["episodes"] = len(res["episodes"])
    out.write_text(json.dumps(res))


# --------------------------------------------------------------------------- driver
def run_one(lib: str, env_id: str, seed: int, budget: int, folder: Path) -> dict:
    out = folder / f"{lib}_{env_id}_{seed}.json"
    proc = subprocess.run([PYTHON, str(Path(__file__).resolve()), "worker", lib, env_id,
                           str(seed), str(budget), str(out)], env=tool_env(ONE_THREAD),
                          capture_output=True, text=True, timeout=3600)
    if proc.returncode != 0 or not out.exists():
        raise RuntimeError(f"{lib} {env_id} seed {seed} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    res = json.loads(out.read_text())
    res["sps"] = res["steps"] / res["seconds"]
    say(f"  [sb3] {lib:6s} {env_id} seed {seed}: {res['steps']} steps in {res['seconds']:.0f} s "
        f"({res['sps']:.0f}/s), return {res['return']:.1f}, load {os.getloadavg()[0]:.2f}")
    return res


def _pm(xs: list[float], f: str = "{:.1f}") -> str:
    sd = statistics.stdev(xs) if len(xs) > 1 else 0.0
    return f"{f.format(statistics.mean(xs))} ± {f.format(sd)}"


def run(res: Result, quick: bool) -> None:
    import stable_baselines3  # noqa: F401 - fail early with ImportError when the extra is missing

    seeds = (0,) if quick else (0, 1, 2)
    budgets = {e: (4_000 if quick else b) for e, (_, b) in ENVS.items()}
    runs: dict[tuple[str, str], list[dict]] = {}
    with tempfile.TemporaryDirectory(prefix="bench_sb3_") as d:
        for env_id in ENVS:
            for seed in seeds:
                order = ("rlpipe", "sb3") if seed % 2 == 0 else ("sb3", "rlpipe")
                for lib in order:
                    r = run_one(lib, env_id, seed, budgets[env_id], Path(d))
                    r["seed"] = seed
                    runs.setdefault((env_id, lib), []).append(r)
    res.body += [
        "Each environment, seed 0, 1, 2: rlpipe and SB3 one after the other (order alternating by "
        "seed), separate processes, 1 thread each, CPU. rlpipe: `bench/params_pendulum.yaml` "
        "(8 envs, gamma 0.9, GAE 0.95, lr 1e-3, 10 epochs x 16 minibatches, observation "
        "normalization on) / `bench/params_cartpole.yaml`, through `rlpipe.train.run.train` "
        "(CSV logs and checkpoints on), SIGTERM once the budget is passed. SB3 "
        f"{stable_baselines3.__version__}: rl-baselines3-zoo hyperparameters (Pendulum with gSDE). "
        "Steps/s = env steps / wall time of `train()` or `learn()`. Return = mean of the last 100 "
        "episodes that ended within the budget. Lockstep efficiency (rlpipe) = env steps / "
        "(rollout length x envs): the share of the episode-synchronous batch slots that held a "
        "live environment.", "",
        "| env | budget | library | seed | env steps | wall s | steps/s | return (last 100) | lockstep eff. |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for (env_id, lib), rs in runs.items():
        for r in rs:
            eff = f"{r['lockstep_efficiency']:.2f}" if "lockstep_efficiency" in r else "-"
            res.body.append(f"| {env_id} | {budgets[env_id]} | {lib} | {r['seed']} | {r['steps']} | "
                            f"{r['seconds']:.0f} | {r['sps']:.0f} | {r['return']:.1f} | {eff} |")
    res.body.append("")
    for env_id in ENVS:
        ours, theirs = runs[(env_id, "rlpipe")], runs[(env_id, "sb3")]
        sps_o = statistics.median(r["sps"] for r in ours)
        sps_t = statistics.median(r["sps"] for r in theirs)
        ret_o = [r["return"] for r in ours]
        ret_t = [r["return"] for r in theirs]
        res.body.append(f"- {env_id}: rlpipe {_pm(ret_o)} (steps/s median {sps_o:.0f}), "
                        f"SB3 {_pm(ret_t)} (steps/s median {sps_t:.0f})")
        short = env_id.split("-")[0]
        if env_id == "Pendulum-v1":
            res.check(f"Pendulum rlpipe return at {budgets[env_id] // 1000}k steps (mean of seeds; "
                      f"min {min(ret_o):.1f})", statistics.mean(ret_o), f">= {PENDULUM_TARGET:.0f}",
                      statistics.mean(ret_o) >= PENDULUM_TARGET, "{:.1f}")
        res.check(f"{short} env steps/s, rlpipe / SB3 (medians {sps_o:.0f} / {sps_t:.0f})",
                  sps_o / sps_t, ">= 1.00x", sps_o >= sps_t, "{:.2f}x")
        res.check(f"{short} rlpipe mean return vs SB3's range [{min(ret_t):.1f}, {max(ret_t):.1f}]",
                  statistics.mean(ret_o), f">= {min(ret_t):.1f}", statistics.mean(ret_o) >= min(ret_t),
                  "{:.1f}")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "worker":
        worker_main(sys.argv[2:])
    else:
        sys.exit("run through bench/run.py --only sb3")
