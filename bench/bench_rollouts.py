"""Benchmark `rollouts` (issue 22): environment workers, and the stop on a never-ending episode.

1. **Workers on a ~1 ms environment.** ``Busy-v0`` (below) burns about 1 ms of CPU per step. 8
   environments, fixed-length rollouts of 32 steps, MLP agent; environment steps per second of
   collection (the collector alone, no update) with ``train.env_workers`` 0 and 2. Target:
   2 workers >= 1.7x in process on 2 cores.
2. **Per-step overhead of a worker**, on a trivial environment (``NeverEnding-v0`` without its
   sleep): (seconds per rollout with 1 worker - in process) / environment steps. Target <= 50 us.
3. **The never-ending environment**: ``python stages/train.py`` on ``NeverEnding-v0`` (no step
   limit), 8 environments, in each rollout mode (``steps``: 2048 per environment); RSS sampled every second for ``--seconds``, then SIGTERM; the
   time from the signal to the process's exit. Targets: exit within 2 s, RSS flat.

    python bench/bench_rollouts.py [--quick] [--seconds 20]

Prints its figures with the load average; BENCHMARKS.md records them by hand.
"""
from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import gymnasium as gym
import numpy as np
import yaml
from gymnasium import spaces

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))
sys.path.insert(1, str(REPO))


class NeverEnding(gym.Env):
    """3 observation features, 2 actions, never terminates, declares no limit."""

    metadata: dict = {"render_modes": []}

    def __init__(self, busy_seconds: float = 0.0):
        self.observation_space = spaces.Box(-1.0, 1.0, (3,), np.float32)
        self.action_space = spaces.Discrete(2)
        self.busy_seconds = busy_seconds

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        return self.np_random.uniform(-1, 1, 3).astype(np.float32), {}

    def step(self, action):
        if self.busy_seconds:
            end = time.thread_time() + self.busy_seconds
            while time.thread_time() < end:      # CPU, not a sleep
                pass
        return self.np_random.uniform(-1, 1, 3).astype(np.float32), float(action), False, False, {}


class Busy(NeverEnding):
    """About 1 ms of CPU per step; episodes of 200 steps."""

    def __init__(self, busy_seconds: float = 0.001):
        super().__init__(busy_seconds)
        self.t = 0

    def reset(self, *, seed=None, options=None):
        self.t = 0
        return super().reset(seed=seed)

    def step(self, action):
        obs, r, _, _, info = super().step(action)
        self.t += 1
        return obs, r, self.t >= 200, False, info


for _name, _cls in (("NeverEnding-v0", NeverEnding), ("Busy-v0", Busy)):
    if _name not in gym.registry:
        gym.register(_name, entry_point=_cls)


def load() -> str:
    return Path("/proc/loadavg").read_text().split(" ", 3)[:3].__str__()


def params(env_id: str, kwargs: dict, workers: int, rollout_steps: int):
    from rlpipe.config import Params

    return Params.from_dict({
        "env": {"id": f"bench_rollouts:{env_id}", "kwargs": kwargs},
        "train": {"num_envs": 8, "rollout": "steps", "rollout_steps": rollout_steps,
                  "env_workers": workers, "progress_bar": False},
        "agent": {"mlp_hidden": [64, 64]}})


def collect_rate(env_id: str, kwargs: dict, workers: int, rollouts: int, rollout_steps: int):
    """(environment steps per second, seconds per rollout) of the collector alone."""
    import torch

    from rlpipe.events import RunInfo  # noqa: F401  (imports the package as train does)
    from rlpipe.hooks.base import HookList
    from rlpipe.train.run import build_components
    from rlpipe.train.trainer import Trainer

    torch.set_num_threads(1)
    p = params(env_id, kwargs, workers, rollout_steps)
    envs, agent, algorithm = build_components(p)
    try:
        trainer = Trainer(p, envs, agent, algorithm, HookList())
        trainer.seed(0)
        trainer._collect()                                  # warm-up (and the first resets)
        t = time.perf_counter()
        for _ in range(rollouts):
            trainer._collect()
        dt = time.perf_counter() - t
    finally:
        envs.close()
    steps = rollouts * rollout_steps * p.train.num_envs
    return steps / dt, dt / rollouts


def group_tick_seconds(workers: int, ticks: int) -> float:
    """Median seconds of one tick (a step of each of 8 trivial environments) of the environment
    group alone: no agent, the same actions."""
    import statistics

    from rlpipe.train.env_group import LocalEnvs
    from rlpipe.train.env_workers import WorkerEnvs
    from rlpipe.train.environment import env_settings, make_env

    p = params("NeverEnding-v0", {}, workers, 8)
    settings = env_settings(p.env)
    if workers:
        group = WorkerEnvs(p.env, settings, 8, workers, make_env(p.env, settings))
    else:
        group = LocalEnvs([make_env(p.env, settings) for _ in range(8)])
    try:
        group.seed(0)
        group.reset(range(8))
        pairs = [(i, i % 2) for i in range(8)]
        blocks = []
        for _ in range(5):
            t = time.perf_counter()
            for _ in range(ticks):
                group.step(pairs)
            blocks.append((time.perf_counter() - t) / ticks)
        return statistics.median(blocks)
    finally:
        group.close()


def never_ending(mode: str, seconds: float) -> dict:
    """Train on NeverEnding-v0 for ``seconds``, sampling RSS, then SIGTERM."""
    with tempfile.TemporaryDirectory() as d:
        root = Path(d)
        p = {"env": {"id": "bench_rollouts:NeverEnding-v0"},
             "train": {"num_envs": 8, "rollout": mode, "rollout_steps": 2048,
                       "episodes": 1_000_000},
             "experiment": {"step_log_interval": 0, "write_interval": 0}}
        (root / "params.yaml").write_text(yaml.safe_dump(p))
        env = {**os.environ, "PYTHONPATH": f"{REPO / 'src'}:{REPO}:{REPO / 'bench'}"}
        proc = subprocess.Popen([sys.executable, str(REPO / "stages" / "train.py"), "--no-progress"],
                                cwd=root, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                text=True)
        log = root / "training_output" / "agent_training.log"
        while not (log.exists() and "run start" in log.read_text()):
            if proc.poll() is not None:
                raise RuntimeError(proc.communicate()[1])
            time.sleep(0.1)
        rss = []
        for _ in range(int(seconds)):
            time.sleep(1)
            status = Path(f"/proc/{proc.pid}/status").read_text()
            rss.append(int(next(line.split()[1] for line in status.splitlines()
                                if line.startswith("VmRSS"))) / 1024)
        proc.send_signal(signal.SIGTERM)
        t = time.perf_counter()
        proc.wait(timeout=60)
        took = time.perf_counter() - t
        stderr = proc.communicate()[1]
        return {"exit": proc.returncode, "stop_s": took, "rss_mb": rss,
                "warned": "safety limit" in log.read_text(), "stderr_tail": stderr[-300:]}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--seconds", type=float, default=20)
    ap.add_argument("--only", nargs="+", default=["workers", "overhead", "never_ending"])
    a = ap.parse_args(argv)
    sys.path.insert(0, str(Path(__file__).parent))
    rollouts = 2 if a.quick else 6
    if "workers" in a.only:
        print(f"load before: {load()}", flush=True)
        r0, _ = collect_rate("Busy-v0", {}, 0, rollouts, 32)
        r2, _ = collect_rate("Busy-v0", {}, 2, rollouts, 32)
        r0b, _ = collect_rate("Busy-v0", {}, 0, rollouts, 32)
        print(f"workers: ~1 ms env, 8 envs: in process {r0:.0f} / {r0b:.0f} steps/s, "
              f"2 workers {r2:.0f} steps/s, ratio {r2 / ((r0 + r0b) / 2):.2f}x; load {load()}",
              flush=True)
    if "overhead" in a.only:
        ticks = 200 if a.quick else 1000
        local = group_tick_seconds(0, ticks)
        one = group_tick_seconds(1, ticks)
        print(f"overhead: trivial env, 8 envs, one step of each per tick (median of 5 blocks of "
              f"{ticks} ticks): in process {1e6 * local / 8:.1f} us per environment step, in 1 "
              f"worker {1e6 * one / 8:.1f} us; overhead {1e6 * (one - local) / 8:.1f} us per "
              f"environment step ({1e6 * (one - local):.0f} us per message round trip); "
              f"load {load()}", flush=True)
    if "never_ending" in a.only:
        for mode in ("episodes", "steps"):
            r = never_ending(mode, 5 if a.quick else a.seconds)
            rss = r["rss_mb"]
            print(f"never-ending, rollout {mode}: exit {r['exit']} {r['stop_s']:.2f} s after "
                  f"SIGTERM; RSS MB first/max/last {rss[0]:.0f}/{max(rss):.0f}/{rss[-1]:.0f} over "
                  f"{len(rss)} s; safety-limit warning: {r['warned']}; load {load()}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
