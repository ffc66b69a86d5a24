"""What the logs record of an episode while it runs, and the finished episode's record.

An :class:`EpisodeTrace` lives as long as its episode (one rollout of whole episodes, or across
updates with fixed-length rollouts); :func:`episode_record` turns a finished one into the
:class:`~rlpipe.events.EpisodeRecord` the hooks receive. Pure: no counters, no windows.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from rlpipe.envs import contract
from rlpipe.events import EpisodeRecord


@dataclass
class EpisodeTrace:
    """The steps of one episode, as the logs record them."""

    key: int                        # the collector's id of this episode (not its final number)
    observations: list = field(default_factory=list)
    actions: list = field(default_factory=list)
    log_probs: list = field(default_factory=list)
    values: list = field(default_factory=list)
    entropies: list = field(default_factory=list)
    rewards: list = field(default_factory=list)
    reference_actions: list = field(default_factory=list)
    reference_hits: list = field(default_factory=list)
    valid: list = field(default_factory=list)
    summaries: list = field(default_factory=list)
    final_info: dict | None = None
    global_step_start: int = 0      # the run's step counter before this episode's first step

    def __len__(self) -> int:
        return len(self.actions)

    def add(self, observation, action, log_prob: float, value: float, entropy: float,
            reward: float, report: contract.StepReport) -> None:
        self.observations.append(observation)
        self.actions.append(action)
        self.log_probs.append(log_prob)
        self.values.append(value)
        self.entropies.append(entropy)
        self.rewards.append(reward)
        self.reference_actions.append(report.reference_action)
        self.reference_hits.append(report.reference_hit)
        self.valid.append(report.valid)
        self.summaries.append(report.summary)

    def total_reward(self) -> float:
        return float(math.fsum(self.rewards))


def episode_record(trace: EpisodeTrace, number: int, env_index: int, has_reference: bool,
                   window_mean: float, last_update: dict[str, float] | None) -> EpisodeRecord:
    """The record of a finished episode; ``window_mean`` is the mean return of the summary
    window that ends with this episode."""
    rewards = np.asarray(trace.rewards, dtype=np.float64)
    total = trace.total_reward()
    info: dict[str, Any] = trace.final_info or {}
    has_valid = has_reference and all(v is not None for v in trace.valid)
    summaries = {}
    if trace.summaries and trace.summaries[0]:
        for name in trace.summaries[0]:
            summaries[name] = np.asarray([s[name] for s in trace.summaries], dtype=np.float64)
    acc = contract.reference_accuracy(trace.reference_hits) if has_reference else None
    return EpisodeRecord(
        episode=number,
        env_index=env_index,
        global_step_start=trace.global_step_start,
        length=len(rewards),
        total_reward=total,
        mean_reward=total / max(len(rewards), 1),
        mean_episode_reward=window_mean,
        accuracy=acc,
        metrics=contract.episode_metrics(info),
        last_update=last_update,
        actions=np.asarray(trace.actions),
        rewards=rewards,
        values=np.asarray(trace.values, dtype=np.float64),
        log_probs=np.asarray(trace.log_probs, dtype=np.float64),
        entropies=np.asarray(trace.entropies, dtype=np.float64),
        reference_actions=(np.asarray(trace.reference_actions, dtype=np.int64)
                           if has_reference else None),
        valid=np.asarray(trace.valid, dtype=bool) if has_valid else None,
        step_summaries=summaries,
        trace=info.get(contract.EPISODE_TRACE),
        observations=trace.observations,
    )
