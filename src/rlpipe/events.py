"""The events a training run emits: typed, frozen, one way (trainer -> hooks).

The trainer builds these and hands them to a hook list; hooks read them and never see the
trainer. Events carry plain numbers and small numpy arrays; an episode also carries a reference
to its own observations (the capture fallback reads them; nothing else should hold on to them).
A hook may answer an event with follow-up events (a checkpoint hook answers a rollout end with
:class:`CheckpointSaved`), which the hook list dispatches to every hook in turn.

Lifecycle (SB3-callback-like), in order::

    on_train_start(RunInfo)                  once, after a resume has been restored
    repeat per rollout (one episode on every env):
        on_episode_end(EpisodeRecord)        once per finished episode, in episode order
        on_update(UpdateRecord)              once per policy update
        on_evaluation(EvalRecord)            after an update that evaluation during training followed
        on_rollout_end(RolloutEnd)           state is consistent here: captures, checkpoints
        on_checkpoint(CheckpointSaved)       for each checkpoint the rollout end produced
    on_interrupt(RunInfo, reason) / on_train_end(RunInfo, RunResult)

A stop (signal) during a rollout drops that rollout: no episode or update event for it; the
last rollout end is announced again with ``stop_requested`` (same episode and update, no
``data``), so the checkpoint hook saves the state of the last finished rollout.

Imports no torch.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Sequence

import numpy as np

from rlpipe.envs.contract import EnvDescription

if TYPE_CHECKING:  # pragma: no cover
    from rlpipe.config import Params
    from rlpipe.train.budget import Budget


@dataclass(frozen=True)
class RunInfo:
    """What a hook needs to know about the run, at its start."""

    params: "Params"
    root: Any                      # pathlib.Path of the repository / working directory
    fingerprint: str
    params_digest: str
    start_episode: int             # episodes already done (0 for a fresh run)
    target_episodes: int
    resumed_from: str | None       # checkpoint path, or None for a fresh start
    restart_reason: str | None     # why checkpoints were not resumed (e.g. params changed)
    env: EnvDescription            # what the environment declares (environment contract)
    agent_kind: str                # "graph" | "flat"
    notes: tuple[str, ...] = ()    # warnings found before the run (e.g. skipped checkpoints)
    action_layout: Any = None      # rlpipe.action_log.ActionLayout: how the logs record actions
    device: str = "cpu"            # where the networks run, e.g. "cuda:0 (NVIDIA H200)"
    normalize_observations: bool = False
    #: train.episodes or train.total_steps (rlpipe.train.budget.Budget); None = target_episodes
    budget: "Budget | None" = None
    start_global_step: int = 0     # environment steps already taken (0 for a fresh run)

    @property
    def run_budget(self) -> "Budget":
        from rlpipe.train.budget import EPISODES, Budget

        return self.budget if self.budget is not None else Budget(EPISODES, self.target_episodes)


@dataclass(frozen=True)
class EpisodeRecord:
    """One finished episode.

    Shapes (L = episode length):
        - actions: [L] (Discrete), [L, K] (MultiDiscrete), [L, D] float (Box: the unclipped
          samples; the environment received them clipped)
        - rewards, values, log_probs, entropies: [L]
        - reference_actions: [L] int (one action of the reference set) or None
        - valid: [L] bool or None (None when the environment reports no validity)
        - step_summaries: {name: [L]}
        - observations: L observations as the environment returned them (a reference); the
          agent sees them through ``agent.preprocess`` (flattened, normalized when that is on)
    """

    episode: int
    env_index: int
    global_step_start: int          # global step of the step before this episode's first step
    length: int
    total_reward: float
    mean_reward: float              # per step
    mean_episode_reward: float      # of the last train.summary_window episodes
    accuracy: float | None          # share of decisions in the reference set (None: no reference)
    metrics: dict[str, float]
    last_update: dict[str, float] | None
    actions: np.ndarray
    rewards: np.ndarray
    values: np.ndarray
    log_probs: np.ndarray
    entropies: np.ndarray
    reference_actions: np.ndarray | None
    valid: np.ndarray | None
    step_summaries: dict[str, np.ndarray] = field(default_factory=dict)
    trace: dict | None = None
    observations: Sequence[Any] = ()


@dataclass(frozen=True)
class UpdateRecord:
    """One policy update: its statistics and where in the run it happened."""

    update: int
    global_step: int
    episode: int
    stats: dict[str, float]
    custom: dict[str, float]        # values sent with rlpipe.track() since the last update


@dataclass(frozen=True)
class RolloutData:
    """The transitions of one rollout as the update used them (for exports), one row per step.

    Steps are grouped by episode (episode order), each episode's steps in order.

    Shapes (T = steps of the rollout, all its episodes):
        - episode, step: [T] int64 (episode number; 1-based step within the episode)
        - actions: [T] (or [T, ...] for vector actions); log_probs, values, rewards: [T] float32
        - dones: [T] bool (the episode ended after this step: terminated or truncated)
        - advantages, returns: [T] float32 (GAE, before any per-minibatch normalisation)
        - observations: T observations as the environment returned them (references)
    """

    update: int
    episode: np.ndarray
    step: np.ndarray
    actions: np.ndarray
    log_probs: np.ndarray
    values: np.ndarray
    rewards: np.ndarray
    dones: np.ndarray
    advantages: np.ndarray
    returns: np.ndarray
    observations: Sequence[Any] = ()


@dataclass(frozen=True)
class RolloutEnd:
    """A rollout is done and the run's state is consistent: a checkpoint taken now is exact.

    ``snapshot()`` returns the complete training state (tensors and plain containers) for a
    checkpoint, and ``data()`` the rollout's transitions (:class:`RolloutData`); both are
    computed on demand, so hooks that do not use them pay nothing.
    """

    episode: int                    # episodes finished so far
    prev_episode: int               # episodes finished before this rollout
    target_episodes: int
    stop_requested: bool            # a stop (signal, NaN) ends the run after this event
    mean_episode_reward: float
    best_mean_reward: float
    best_improved: bool             # the mean episode reward reached a new best in this rollout
    snapshot: Callable[[], dict[str, Any]]
    update: int = 0                 # policy updates so far (this rollout's update included)
    global_step: int = 0            # environment steps so far (all envs)
    #: the rollout's transitions, built on demand (only a hook that exports them pays)
    data: Callable[[], RolloutData] | None = None
    final: bool = False             # the budget is reached (or stop_at): the run's last rollout
    best_by: str = "mean episode reward"  # or "evaluation return" (train.eval_interval on)
    prev_global_step: int = 0       # environment steps before this rollout
    progress: float = 0.0           # share of the budget done (0..1)


@dataclass(frozen=True)
class EvalRecord:
    """One evaluation during training (``train.eval_interval``): the greedy policy on
    ``episodes`` held-out episodes, after the update of the rollout that ended at ``episode``."""

    episode: int
    global_step: int
    update: int
    episodes: int
    mean_return: float
    sd_return: float
    accuracy: float | None           # mean share of decisions in the reference set
    metrics: dict[str, float]        # the environment's episode metrics, means
    best_return: float               # the best mean_return so far (this one included)
    improved: bool                   # a new best: best.pt follows it
    stop: bool = False               # reached train.stop_at: the run ends after this rollout


@dataclass(frozen=True)
class CheckpointSaved:
    path: str
    episode: int
    is_best: bool
    mean_reward: float
    #: what chose best.pt: "mean episode reward" (training) or "evaluation return"
    best_by: str = "mean episode reward"


@dataclass(frozen=True)
class RunResult:
    episodes: int
    global_step: int
    updates: int
    best_mean_reward: float
    stop_reason: str | None
