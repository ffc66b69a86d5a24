"""Tiny environments for the space tests, registered when this module is imported, so the train
stage can select them as ``tests.train.spaces_envs:<Name>-v0`` (gymnasium's ``module:id``).

- ``Dials-v0``: MultiDiscrete([3, 4]) actions, a Dict observation (Box + Discrete); reward 1 per
  component that matches a target shown in the observation. 12 steps per episode.
- ``Bits-v0``: MultiBinary actions (refused by rlpipe).
- ``Words-v0``: Text observations (refused by rlpipe).
"""
from __future__ import annotations

import gymnasium as gym
import numpy as np
from gymnasium import spaces


class Dials(gym.Env):
    metadata: dict = {"render_modes": []}

    def __init__(self):
        self.observation_space = spaces.Dict({"target": spaces.Box(0.0, 1.0, (2,), np.float32),
                                              "phase": spaces.Discrete(2)})
        self.action_space = spaces.MultiDiscrete([3, 4])
        self.t = 0

    def _obs(self):
        self.target = np.array([self.np_random.integers(3), self.np_random.integers(4)])
        return {"target": (self.target / np.array([2.0, 3.0])).astype(np.float32),
                "phase": int(self.t % 2)}

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        return self._obs(), {}

    def step(self, action):
        assert self.action_space.contains(action), action
        reward = float(np.sum(np.asarray(action) == self.target))
        self.t += 1
        return self._obs(), reward, self.t >= 12, False, {}


class Bits(Dials):
    def __init__(self):
        super().__init__()
        self.action_space = spaces.MultiBinary(3)


class Words(Dials):
    def __init__(self):
        super().__init__()
        self.observation_space = spaces.Text(8)


for _name, _cls in (("Dials-v0", Dials), ("Bits-v0", Bits), ("Words-v0", Words)):
    if _name not in gym.registry:
        gym.register(_name, entry_point=_cls)
