"""The rollout buffer: named storage of one rollout's transitions, GAE, and the update's batch.

In the spirit of Stable-Baselines3's ``RolloutBuffer`` and skrl's memory, but per environment
and with episodes of any length: each environment's steps are appended with :meth:`add`; an
episode's end closes a *segment* with :meth:`end_episode` (terminated: the value after it is 0;
truncated, by a time limit or by the cut at the end of a fixed-length rollout: the critic's value
of the next observation, bootstrapped). :meth:`compute_returns` runs GAE on every segment and
:meth:`batch` flattens everything, environment by environment, into the
:class:`~rlpipe.agents.algorithms.Rollout` an update takes.

A rollout of whole episodes (``train.rollout: episodes``) has one segment per environment; a
fixed-length rollout (``steps``) has ``rollout_steps`` steps per environment, cut into segments
where episodes ended. Memory is bounded by the rollout's length.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np
import torch

from rlpipe.agents.algorithms import Rollout


def compute_gae(rewards: np.ndarray, values: np.ndarray, last_value: float,
                gamma: float, lam: float) -> tuple[np.ndarray, np.ndarray]:
    """Generalised advantage estimation for one segment (an episode or the part of it in a rollout).

    ``last_value`` is the value of the state after the last step: 0 when the episode terminated,
    the critic's estimate when it was truncated (time limit, or the end of a fixed-length rollout).

    Shapes:
        - rewards, values: [L]
        - returns: (advantages [L], returns [L])
    """
    n = len(rewards)
    adv = np.zeros(n, dtype=np.float64)
    next_value, running = float(last_value), 0.0
    for t in range(n - 1, -1, -1):
        delta = rewards[t] + gamma * next_value - values[t]
        running = delta + gamma * lam * running
        adv[t] = running
        next_value = values[t]
    return adv.astype(np.float32), (adv + values).astype(np.float32)


@dataclass
class Segment:
    """Steps ``start:end`` of one environment's storage, ending an episode or cut short."""

    start: int
    end: int
    episode_key: int               # the caller's id of the episode these steps belong to
    first_step: int                # 1-based step within that episode of the segment's first step
    terminated: bool               # the episode ended here (terminated or truncated)
    bootstrap: Any = None          # the observation to bootstrap from (truncation, cut)
    last_value: float = 0.0


@dataclass
class _EnvStorage:
    observations: list = field(default_factory=list)   # as the environment returned them
    prepared: list = field(default_factory=list)       # as the agent saw them (the update)
    masks: list = field(default_factory=list)
    actions: list = field(default_factory=list)
    log_probs: list = field(default_factory=list)
    values: list = field(default_factory=list)
    rewards: list = field(default_factory=list)
    segments: list = field(default_factory=list)
    open_start: int = 0
    advantages: np.ndarray | None = None
    returns: np.ndarray | None = None


class RolloutBuffer:
    """One rollout's transitions on ``n_envs`` environments."""

    def __init__(self, n_envs: int):
        self.envs = [_EnvStorage() for _ in range(n_envs)]

    def __len__(self) -> int:
        return sum(len(e.actions) for e in self.envs)

    def add(self, env: int, observation, prepared, mask, action, log_prob: float, value: float,
            reward: float) -> None:
        """One step of environment ``env``."""
        s = self.envs[env]
        s.observations.append(observation)
        s.prepared.append(prepared)
        s.masks.append(mask)
        s.actions.append(action)
        s.log_probs.append(log_prob)
        s.values.append(value)
        s.rewards.append(reward)

    def end_episode(self, env: int, episode_key: int, first_step: int, terminated: bool,
                    bootstrap_obs: Any = None) -> None:
        """Close environment ``env``'s open segment: its episode ended (``terminated`` True,
        whether by termination or by a time limit) or the rollout was cut (False).
        ``bootstrap_obs`` is the observation whose value is bootstrapped (a truncation or a
        cut); None means the episode terminated (the value after it is 0)."""
        s = self.envs[env]
        end = len(s.actions)
        if end == s.open_start:
            return
        s.segments.append(Segment(s.open_start, end, episode_key, first_step, terminated,
                                  bootstrap_obs))
        s.open_start = end

    def segments(self) -> list[tuple[int, Segment]]:
        """(environment, segment) pairs in storage order."""
        return [(i, seg) for i, s in enumerate(self.envs) for seg in s.segments]

    def compute_returns(self, gamma: float, lam: float,
                        value_of: Callable[[list], Sequence[float]] | None = None) -> None:
        """GAE over every segment; ``value_of`` maps the observations to bootstrap from (in
        environment order, one call) to the critic's values."""
        pending = [seg for _, seg in self.segments() if seg.bootstrap is not None]
        if pending:
            values = value_of([seg.bootstrap for seg in pending])
            for seg, v in zip(pending, values):
                seg.last_value = float(v)
                seg.bootstrap = None
        for s in self.envs:
            values = np.asarray(s.values, dtype=np.float64)
            rewards = np.asarray(s.rewards)
            advs, rets = [], []
            for seg in s.segments:
                a, r = compute_gae(rewards[seg.start:seg.end], values[seg.start:seg.end],
                                   seg.last_value, gamma, lam)
                advs.append(a)
                rets.append(r)
            s.advantages = np.concatenate(advs) if advs else np.zeros(0, np.float32)
            s.returns = np.concatenate(rets) if rets else np.zeros(0, np.float32)

    def batch(self, agent) -> Rollout:
        """The update's batch: every environment's steps in order, on the agent's device."""
        obs, masks, acts, logps, vals = [], [], [], [], []
        for s in self.envs:
            obs += s.prepared
            masks += s.masks
            acts += s.actions
            logps += s.log_probs
            vals.append(np.asarray(s.values, dtype=np.float64))
        return Rollout(
            observations=agent.batch_store(obs),
            masks=masks if masks and masks[0] is not None else None,
            actions=torch.from_numpy(np.asarray(acts)),
            log_probs=torch.tensor(logps, dtype=torch.float32),
            values=torch.from_numpy(np.concatenate(vals).astype(np.float32)),
            advantages=torch.from_numpy(np.concatenate([s.advantages for s in self.envs])),
            returns=torch.from_numpy(np.concatenate([s.returns for s in self.envs])),
        ).to(agent.device)

    def observations(self) -> list:
        """The observations as the environments returned them, in batch order."""
        return [o for s in self.envs for o in s.observations]

    def rewards(self) -> np.ndarray:
        return np.concatenate([np.asarray(s.rewards, dtype=np.float32) for s in self.envs])
