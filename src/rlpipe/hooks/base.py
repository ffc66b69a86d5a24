"""The hook interface: the trainer emits events, hooks log, checkpoint and capture.

Lifecycle (SB3-callback-like), in order::

    on_train_start(run)                      once, after a resume has been restored
    repeat per rollout (one episode on every env):
        on_episode_end(episode)              once per finished episode, in episode order
        on_update(update)                    once per policy update
        on_rollout_end(trainer)              state is consistent here: checkpoints, captures
    on_checkpoint(info)                      emitted by the checkpoint hook after a save
    on_interrupt(run, reason) / on_train_end(run, result)

Events carry plain numbers and small numpy arrays, never observation tensors.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    from rlpipe.config import Params


@dataclass(frozen=True)
class RunInfo:
    """What a hook needs to know about the run."""

    params: "Params"
    root: Any                      # pathlib.Path of the repository / working directory
    fingerprint: str
    params_digest: str
    start_episode: int             # episodes already done (0 for a fresh run)
    target_episodes: int
    resumed_from: str | None       # checkpoint path, or None for a fresh start
    restart_reason: str | None     # why checkpoints were not resumed (e.g. params changed)
    metric_names: tuple[str, ...]
    step_summary_names: tuple[str, ...]
    has_oracle: bool
    agent_kind: str                # "graph" | "flat"
    env_factory: Any = None        # callable() -> a fresh environment (for capture probes)
    notes: tuple[str, ...] = ()    # warnings found before the run (e.g. skipped checkpoints)
    action_layout: Any = None      # rlpipe.action_log.ActionLayout: how actions are logged
    device: str = "cpu"            # where the networks run, e.g. "cuda:0 (NVIDIA H200)"
    normalize_observations: bool = False


@dataclass(frozen=True)
class EpisodeRecord:
    """One finished episode.

    Shapes (L = episode length):
        - actions: [L] (Discrete), [L, K] (MultiDiscrete), [L, D] (Box, unclipped samples)
        - rewards, values, log_probs, entropies: [L]
        - oracle_actions: [L] (-1 without oracle), feasible: [L] bool or None
        - step_summaries: {name: [L]}
    """

    episode: int
    env_index: int
    global_step_start: int          # global step of the step before this episode's first step
    length: int
    total_reward: float
    mean_reward: float              # per step
    mean_episode_reward: float      # of the last train.summary_window episodes
    deployment_accuracy: float | None
    metrics: dict[str, float]
    last_update: dict[str, float] | None
    actions: np.ndarray
    rewards: np.ndarray
    values: np.ndarray
    log_probs: np.ndarray
    entropies: np.ndarray
    oracle_actions: np.ndarray | None
    feasible: np.ndarray | None
    step_summaries: dict[str, np.ndarray] = field(default_factory=dict)
    trace: dict | None = None


@dataclass(frozen=True)
class UpdateRecord:
    """One policy update: its statistics and where in the run it happened."""

    update: int
    global_step: int
    episode: int
    stats: dict[str, float]
    custom: dict[str, float]        # values sent with rlpipe.track() since the last update


@dataclass(frozen=True)
class CheckpointInfo:
    path: str
    episode: int
    is_best: bool
    mean_reward: float


class Hook:
    """Base class: every event is a no-op; override what you need."""

    def on_train_start(self, run: RunInfo) -> None: ...
    def on_episode_end(self, episode: EpisodeRecord) -> None: ...
    def on_update(self, update: UpdateRecord) -> None: ...
    def on_rollout_end(self, trainer: Any) -> None: ...
    def on_checkpoint(self, info: CheckpointInfo) -> None: ...
    def on_warning(self, message: str) -> None: ...
    def on_interrupt(self, run: RunInfo, reason: str) -> None: ...
    def on_train_end(self, run: RunInfo, result: dict[str, Any]) -> None: ...
    def close(self) -> None: ...


class HookList(Hook):
    """Calls each hook in order; the trainer holds one of these."""

    def __init__(self, hooks: Sequence[Hook] = ()):
        self.hooks = list(hooks)

    def _emit(self, name: str, *args: Any) -> None:
        for h in self.hooks:
            getattr(h, name)(*args)

    def on_train_start(self, run): self._emit("on_train_start", run)
    def on_episode_end(self, episode): self._emit("on_episode_end", episode)
    def on_update(self, update): self._emit("on_update", update)
    def on_rollout_end(self, trainer): self._emit("on_rollout_end", trainer)
    def on_checkpoint(self, info): self._emit("on_checkpoint", info)
    def on_warning(self, message): self._emit("on_warning", message)
    def on_interrupt(self, run, reason): self._emit("on_interrupt", run, reason)
    def on_train_end(self, run, result): self._emit("on_train_end", run, result)

    def close(self) -> None:
        for h in self.hooks:
            h.close()
