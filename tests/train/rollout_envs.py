"""Tiny environments for the rollout tests, registered when this module is imported (select them
as ``tests.train.rollout_envs:<Name>-v0``).

- ``NeverEnding-v0``: 3 observation features, 2 actions, never terminates and declares no step
  limit (a continuing task); each step sleeps ``step_seconds`` (default 0.5 ms) so that a rollout
  of it takes long.
- ``Fixed-v0``: episodes of exactly ``length`` steps (default 7); reward 1 when the action
  matches the sign of the first feature. ``die_at_reset``: a worker process (never the training
  process) kills itself with SIGKILL at its environment's n-th reset. ``helper_pid_dir``: in a
  worker process, the environment forks a helper that outlives it for 30 s holding every file
  descriptor it inherited (as a simulator's server process might), writing its pid there.
- ``Threads-v0``: reports in its reset info the thread counts its process's numerical libraries
  read (``OMP_NUM_THREADS`` and the like; None where unset).
"""
from __future__ import annotations

import multiprocessing
import os
import signal
import time

import gymnasium as gym
import numpy as np
from gymnasium import spaces


class NeverEnding(gym.Env):
    metadata: dict = {"render_modes": []}

    def __init__(self, step_seconds: float = 0.0005):
        self.observation_space = spaces.Box(-1.0, 1.0, (3,), np.float32)
        self.action_space = spaces.Discrete(2)
        self.step_seconds = step_seconds

    def _obs(self):
        return self.np_random.uniform(-1, 1, 3).astype(np.float32)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        return self._obs(), {}

    def step(self, action):
        if self.step_seconds:
            time.sleep(self.step_seconds)
        return self._obs(), float(action), False, False, {}


class Fixed(NeverEnding):
    def __init__(self, length: int = 7, die_at_reset: int = 0, helper_pid_dir: str = ""):
        super().__init__(0.0)
        self.length, self.die_at_reset = length, die_at_reset
        self.t = self.resets = 0
        if helper_pid_dir and multiprocessing.parent_process() is not None:
            pid = os.fork()
            if pid == 0:                       # the helper: holds the worker's pipe end, idle
                time.sleep(30)
                os._exit(0)
            with open(os.path.join(helper_pid_dir, str(pid)), "w"):
                pass

    def reset(self, *, seed=None, options=None):
        self.t = 0
        self.resets += 1
        if self.die_at_reset and self.resets >= self.die_at_reset \
                and multiprocessing.parent_process() is not None:
            os.kill(os.getpid(), signal.SIGKILL)
        obs, info = super().reset(seed=seed)
        self.last = obs
        return obs, info

    def step(self, action):
        reward = float(int(action) == int(self.last[0] > 0))
        self.t += 1
        self.last = self._obs()
        return self.last, reward, self.t >= self.length, False, {}


class Threads(NeverEnding):
    VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")

    def __init__(self):
        super().__init__(0.0)

    def reset(self, *, seed=None, options=None):
        obs, info = super().reset(seed=seed)
        return obs, {name: os.environ.get(name) for name in self.VARIABLES}


for _name, _cls in (("NeverEnding-v0", NeverEnding), ("Fixed-v0", Fixed), ("Threads-v0", Threads)):
    if _name not in gym.registry:
        gym.register(_name, entry_point=_cls)
