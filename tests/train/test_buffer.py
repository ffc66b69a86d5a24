"""The rollout buffer: segments, bootstrapping, GAE per segment, the update's batch."""
from __future__ import annotations

import numpy as np
import torch

from rlpipe.train.buffer import RolloutBuffer, compute_gae


class ListAgent:
    device = torch.device("cpu")

    @staticmethod
    def batch_store(observations):
        return list(observations)


def fill(buf: RolloutBuffer, env: int, rewards, values, start_obs: int = 0) -> None:
    for k, (r, v) in enumerate(zip(rewards, values)):
        buf.add(env, f"o{env}.{start_obs + k}", start_obs + k, None, k % 2, -0.5, v, r)


def test_segments_are_bootstrapped_and_batched_environment_by_environment():
    g, lam = 0.9, 0.8
    buf = RolloutBuffer(2)
    # env 0: an episode that terminates after 3 steps, then 2 steps of the next, cut
    fill(buf, 0, [1.0, 0.0, 2.0], [0.5, 0.4, 0.3])
    buf.end_episode(0, episode_key=1, first_step=1, terminated=True)
    fill(buf, 0, [1.0, 1.0], [0.2, 0.1], start_obs=3)
    buf.end_episode(0, episode_key=2, first_step=1, terminated=False, bootstrap_obs="cut0")
    # env 1: truncated by a time limit after 2 steps (bootstrapped), nothing left to cut
    fill(buf, 1, [0.5, 0.5], [0.0, 0.1])
    buf.end_episode(1, episode_key=3, first_step=4, terminated=True, bootstrap_obs="last1")
    buf.end_episode(1, episode_key=4, first_step=1, terminated=False, bootstrap_obs="never")
    asked = []

    def value_of(observations):
        asked.append(list(observations))
        return torch.tensor([7.0, 3.0])

    buf.compute_returns(g, lam, value_of)
    assert asked == [["cut0", "last1"]]               # one call, environment order
    parts = [compute_gae(np.array([1.0, 0.0, 2.0]), np.array([0.5, 0.4, 0.3]), 0.0, g, lam),
             compute_gae(np.array([1.0, 1.0]), np.array([0.2, 0.1]), 7.0, g, lam),
             compute_gae(np.array([0.5, 0.5]), np.array([0.0, 0.1]), 3.0, g, lam)]
    rollout = buf.batch(ListAgent())
    assert len(rollout) == len(buf) == 7
    assert rollout.observations == [0, 1, 2, 3, 4, 0, 1]
    assert torch.equal(rollout.advantages, torch.from_numpy(np.concatenate([a for a, _ in parts])))
    assert torch.equal(rollout.returns, torch.from_numpy(np.concatenate([r for _, r in parts])))
    assert rollout.masks is None and rollout.actions.tolist() == [0, 1, 0, 0, 1, 0, 1]
    segs = [(i, s.start, s.end, s.episode_key, s.terminated) for i, s in buf.segments()]
    assert segs == [(0, 0, 3, 1, True), (0, 3, 5, 2, False), (1, 0, 2, 3, True)]
