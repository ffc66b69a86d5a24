"""A rollout's transitions as the export hook receives them (:class:`~rlpipe.events.RolloutData`)."""
from __future__ import annotations

import numpy as np

from rlpipe.agents.algorithms import Rollout
from rlpipe.events import RolloutData
from rlpipe.train.buffer import RolloutBuffer


def rollout_data(update: int, buffer: RolloutBuffer, rollout: Rollout, numbers: dict[int, int],
                 exportable) -> RolloutData:
    """One row per step of ``buffer``; ``numbers`` maps the collector's episode keys to episode
    numbers (an episode still running when a fixed-length rollout was cut has none: 0)."""
    episode, step, dones = [], [], []
    for _, seg in buffer.segments():
        n = seg.end - seg.start
        episode.append(np.full(n, numbers.get(seg.episode_key, 0), dtype=np.int64))
        step.append(np.arange(seg.first_step, seg.first_step + n, dtype=np.int64))
        done = np.zeros(n, dtype=bool)
        done[-1] = seg.terminated
        dones.append(done)
    return RolloutData(
        update=update,
        episode=np.concatenate(episode),
        step=np.concatenate(step),
        actions=rollout.actions.cpu().numpy(),
        log_probs=rollout.log_probs.cpu().numpy(),
        values=rollout.values.cpu().numpy(),
        rewards=buffer.rewards(),
        dones=np.concatenate(dones),
        advantages=rollout.advantages.cpu().numpy(),
        returns=rollout.returns.cpu().numpy(),
        observations=exportable(buffer.observations()),
    )
