"""Benchmark `rollouts` (issue 22): environment workers, and the stop on a never-ending episode.

1. **Workers on a ~1 ms environment.** ``Busy-v0`` (below) does about 1 ms of CPU work per
   step. 8 (and 16) environments, fixed-length rollouts of 32 steps, MLP agent; environment steps
   per second of collection (the collector alone, no update) with ``train.env_workers`` 0 and 2,
   measured in alternating blocks (the machine's speed drifts). Target: 2 workers >= 1.7x in
   process on 2 cores.
   **The ceiling of lockstep on this machine** (``ceiling``): the same shape without rlpipe, raw
   pipes to two processes that each do 4 of the 8 environment steps' work per tick (the same
   ``Busy-v0`` step) while the main process does ``--main-ms`` of work per tick in place of the
   policy, against all of it in one process; alternating blocks.
2. **Per-step overhead of a worker**, on the trivial ``NeverEnding-v0``: the environment group
   alone steps 8 of them per tick, in process and in 1 worker; (seconds per tick in the worker -
   in process) / 8. Target <= 50 us.
3. **The never-ending environment**: ``python stages/train.py`` on ``NeverEnding-v0`` (no step
   limit), 8 environments, in each rollout mode (``steps``: 2048 per environment); RSS sampled
   every second for ``--seconds``, then SIGTERM; the time from the signal to the process's exit.
   Targets: exit within 2 s, RSS flat.

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

    def __init__(self):
        self.observation_space = spaces.Box(-1.0, 1.0, (3,), np.float32)
        self.action_space = spaces.Discrete(2)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        return self.np_random.uniform(-1, 1, 3).astype(np.float32), {}

    def step(self, action):
        return self.np_random.uniform(-1, 1, 3).astype(np.float32), float(action), False, False, {}


class Busy(gym.Env):
    """A simulator-like step of fixed work: ``iterations`` of ``y = tanh(A @ y)`` on a 48-vector
    (numpy), about 1 ms of CPU at the iterations :func:`calibrate` picks; 3 observation features,
    2 actions, episodes of 200 steps. Fixed work rather than a timed spin: every process does the
    same work per step, as with a real simulator (a spin on ``time.thread_time`` is a system call
    per iteration, which a simulator is not)."""

    metadata: dict = {"render_modes": []}

    def __init__(self, iterations: int = 400):
        self.observation_space = spaces.Box(-1.0, 1.0, (3,), np.float32)
        self.action_space = spaces.Discrete(2)
        self.iterations = int(iterations)
        self.A = np.random.default_rng(0).standard_normal((48, 48)) * 0.1
        self.y = np.zeros(48)
        self.t = 0

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        self.y = self.np_random.uniform(-1, 1, 48)
        return self.y[:3].astype(np.float32), {}

    def step(self, action):
        y = self.y
        y[0] += 0.1 if action else -0.1
        for _ in range(self.iterations):
            y = np.tanh(self.A @ y)
        self.y = y
        self.t += 1
        return y[:3].astype(np.float32), float(y[0]), self.t >= 200, False, {}


def calibrate(step_seconds: float = 0.001) -> int:
    """The ``Busy-v0`` iterations whose step costs about ``step_seconds`` of CPU here."""
    env = Busy(100)
    env.reset(seed=0)
    t = time.thread_time()
    for _ in range(50):
        env.step(0)
    per_iteration = (time.thread_time() - t) / (50 * 100)
    return max(1, round(step_seconds / per_iteration))


for _name, _cls in (("NeverEnding-v0", NeverEnding), ("Busy-v0", Busy)):
    if _name not in gym.registry:
        gym.register(_name, entry_point=_cls)


def load() -> str:
    return Path("/proc/loadavg").read_text().split(" ", 3)[:3].__str__()


def params(env_id: str, kwargs: dict, workers: int, rollout_steps: int, num_envs: int = 8):
    from rlpipe.config import Params

    return Params.from_dict({
        "env": {"id": f"bench_rollouts:{env_id}", "kwargs": kwargs},
        "train": {"num_envs": num_envs, "rollout": "steps", "rollout_steps": rollout_steps,
                  "env_workers": workers, "progress_bar": False},
        "agent": {"mlp_hidden": [64, 64]}})


def collectors(env_id: str, kwargs: dict, worker_counts: list[int], rollout_steps: int,
               num_envs: int = 8):
    """One trainer per worker count (built now, first rollout done): (trainer, close) pairs."""
    import torch

    from rlpipe.events import RunInfo  # noqa: F401  (imports the package as train does)
    from rlpipe.hooks.base import HookList
    from rlpipe.train.run import build_components
    from rlpipe.train.trainer import Trainer

    torch.set_num_threads(1)
    out = []
    for workers in worker_counts:
        p = params(env_id, kwargs, workers, rollout_steps, num_envs)
        envs, agent, algorithm = build_components(p)
        trainer = Trainer(p, envs, agent, algorithm, HookList())
        trainer.seed(0)
        trainer._collect()                                  # warm-up (and the first resets)
        out.append((trainer, envs.close))
    return out


def interleaved_rates(env_id: str, kwargs: dict, worker_counts: list[int], blocks: int,
                      rollout_steps: int, num_envs: int = 8) -> list[list[float]]:
    """Steps per second of the collector alone (no update) for each worker count, measured in
    ``blocks`` alternating blocks of one rollout each: the machine's speed drifts (this VM's
    single-core speed varies by up to 1.5x from one second to the next), so each block of one
    way is measured next to a block of the other."""
    made = collectors(env_id, kwargs, worker_counts, rollout_steps, num_envs)
    rates: list[list[float]] = [[] for _ in made]
    try:
        for b in range(blocks):
            order = range(len(made)) if b % 2 == 0 else reversed(range(len(made)))
            for k in order:
                t = time.perf_counter()
                made[k][0]._collect()
                rates[k].append(rollout_steps * num_envs / (time.perf_counter() - t))
    finally:
        for _, close in made:
            close()
    return rates


def _ceiling_worker(conn, iterations: int, per_tick: int) -> None:
    env = Busy(iterations)
    env.reset(seed=0)
    while conn.recv():
        for _ in range(per_tick):
            env.step(0)
        conn.send(True)


def _main_work(seconds: float) -> None:
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass


def lockstep_ceiling(iterations: int, main_seconds: float, blocks: int,
                     ticks: int = 32) -> tuple[list[float], list[float]]:
    """Seconds per tick (8 environment steps + ``main_seconds``) serially in this process and in
    lockstep with two worker processes over raw pipes, in alternating blocks."""
    import multiprocessing as mp

    from rlpipe.train.env_workers import one_thread_libraries

    ctx = mp.get_context("spawn")
    pipes, procs = [], []
    with one_thread_libraries():
        for _ in range(2):
            parent, child = ctx.Pipe()
            proc = ctx.Process(target=_ceiling_worker, args=(child, iterations, 4), daemon=True)
            proc.start()
            pipes.append(parent)
            procs.append(proc)
    env = Busy(iterations)
    env.reset(seed=0)
    serial, parallel = [], []
    try:
        for b in range(blocks):
            for way in ((0, 1) if b % 2 == 0 else (1, 0)):
                t = time.perf_counter()
                for _ in range(ticks):
                    _main_work(main_seconds)
                    if way == 0:
                        for _ in range(8):
                            env.step(0)
                    else:
                        for c in pipes:
                            c.send(True)
                        for c in pipes:
                            c.recv()
                (serial if way == 0 else parallel).append((time.perf_counter() - t) / ticks)
    finally:
        for c in pipes:
            c.send(False)
        for proc in procs:
            proc.join(timeout=5)
    return serial, parallel


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
    ap.add_argument("--only", nargs="+",
                    default=["workers", "ceiling", "overhead", "never_ending"])
    ap.add_argument("--main-ms", type=float, default=0.5,
                    help="ceiling: the main process's work per tick in place of the policy")
    ap.add_argument("--num-envs", type=int, nargs="+", default=[8, 16],
                    help="environments in the workers comparison (each a separate figure)")
    a = ap.parse_args(argv)
    sys.path.insert(0, str(Path(__file__).parent))
    blocks = 4 if a.quick else 40
    if "workers" in a.only:
        print(f"load before: {load()}", flush=True)
        import statistics

        busy = {"iterations": statistics.median(calibrate(0.001) for _ in range(7))}
        for n_envs in a.num_envs:
            local, two = interleaved_rates("Busy-v0", busy, [0, 2], blocks, 32, n_envs)
            ratios = sorted(w / i for w, i in zip(two, local))
            print(f"workers: Busy-v0 ({busy['iterations']} iterations, ~1 ms), {n_envs} envs, "
                  f"{blocks} interleaved rollouts of 32 steps: in process median "
                  f"{statistics.median(local):.0f} steps/s, 2 workers "
                  f"{statistics.median(two):.0f} steps/s; ratio per pair of blocks median "
                  f"{statistics.median(ratios):.2f}x (quartiles {ratios[len(ratios) // 4]:.2f}-"
                  f"{ratios[3 * len(ratios) // 4]:.2f}); load {load()}", flush=True)
    if "ceiling" in a.only:
        import statistics

        busy = statistics.median(calibrate(0.001) for _ in range(7))
        serial, parallel = lockstep_ceiling(busy, a.main_ms / 1000, blocks)
        ratios = sorted(x / y for x, y in zip(serial, parallel))
        print(f"ceiling: raw-pipe lockstep, 8 Busy-v0 steps ({busy} iterations) + {a.main_ms} ms "
              f"of main-process work per tick, {blocks} alternating blocks of 32 ticks: serial "
              f"median {1e3 * statistics.median(serial):.2f} ms per tick, 2 processes "
              f"{1e3 * statistics.median(parallel):.2f} ms; ratio per pair median "
              f"{statistics.median(ratios):.2f}x (quartiles {ratios[len(ratios) // 4]:.2f}-"
              f"{ratios[3 * len(ratios) // 4]:.2f}); load {load()}", flush=True)
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
