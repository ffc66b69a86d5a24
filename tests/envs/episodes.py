"""Playing whole episodes of a graph environment in tests (shared by the environments' tests)."""
from __future__ import annotations

import numpy as np


def run_episode(env, seed=None, policy=None, rng_seed=0):
    """Play one episode; return (observations, rewards, infos).

    ``policy(info) -> action``, or None for uniform random actions from ``rng_seed``.
    """
    rng = np.random.default_rng(rng_seed)
    obs, info = env.reset(seed=seed)
    observations, rewards, infos = [obs], [], [info]
    while True:
        a = policy(info) if policy is not None else int(rng.integers(env.action_space.n))
        obs, reward, terminated, truncated, info = env.step(a)
        assert truncated is False
        observations.append(obs)
        rewards.append(reward)
        infos.append(info)
        if terminated:
            return observations, rewards, infos


def same_obs(a, b):
    """Two graph observations hold the same arrays."""
    return (np.array_equal(a.nodes, b.nodes) and np.array_equal(a.edges, b.edges)
            and np.array_equal(a.edge_links, b.edge_links))
