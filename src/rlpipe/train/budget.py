"""The training budget: ``train.episodes`` or ``train.total_steps`` (exactly one), and the
interval settings that follow it.

Pure arithmetic on the run's counters (episodes finished, environment steps taken), so the
trainer, the hooks and the progress bar agree on when a run ends and where it stands. An
episode budget ends after exactly that many episodes (the last rollout starts only as many
environments as episodes remain); a step budget ends after the rollout that reaches it (a run
ends on whole rollouts, so it may pass the budget by up to one rollout, and every episode it
started is finished). Imports nothing heavy.
"""
from __future__ import annotations

from dataclasses import dataclass

from rlpipe.config_build import AUTO

EPISODES, STEPS = "episodes", "steps"


@dataclass(frozen=True)
class Interval:
    """Every ``every`` episodes or environment steps (``unit``); 0 = off."""

    every: int
    unit: str = EPISODES

    def crossed(self, prev_episode: int, episode: int, prev_step: int, step: int) -> bool:
        """Whether a multiple of ``every`` was reached between the two positions."""
        if self.every <= 0:
            return False
        a, b = (prev_episode, episode) if self.unit == EPISODES else (prev_step, step)
        return a // self.every < b // self.every

    def due(self, count: int) -> bool:
        """Whether ``count`` (an episode number, or a step count) is a multiple."""
        return self.every > 0 and count % self.every == 0


@dataclass(frozen=True)
class Budget:
    """``total`` episodes or environment steps (``unit``)."""

    unit: str
    total: int

    @classmethod
    def of(cls, train) -> "Budget":
        """From a ``TrainConfig`` (or anything with ``episodes`` and ``total_steps``)."""
        steps = getattr(train, "total_steps", None)
        return cls(STEPS, int(steps)) if steps is not None else cls(EPISODES, int(train.episodes))

    @property
    def key(self) -> str:
        return "train.total_steps" if self.unit == STEPS else "train.episodes"

    def position(self, episode: int, global_step: int) -> int:
        return global_step if self.unit == STEPS else episode

    def done(self, episode: int, global_step: int) -> bool:
        return self.position(episode, global_step) >= self.total

    def progress(self, episode: int, global_step: int) -> float:
        return min(1.0, self.position(episode, global_step) / self.total)

    def envs_for_next_rollout(self, episode: int, num_envs: int) -> int:
        """Environments the next (episode-synchronous) rollout may start: an episode budget
        never starts more episodes than remain; a step budget cannot know episode lengths."""
        if self.unit == EPISODES:
            return max(0, min(num_envs, self.total - episode))
        return num_envs

    def interval(self, setting: int | str, points: int) -> Interval:
        """An interval setting: ``'auto'`` -> about ``points`` per run in the budget's unit (at
        least 1); ``<= 0`` -> off; an integer -> every that many episodes (the unit the settings
        are documented in, whatever the budget)."""
        if setting == AUTO:
            return Interval(max(1, self.total // points), self.unit)
        return Interval(max(0, int(setting)), EPISODES)

    def describe(self) -> str:
        return f"{self.total} {'environment steps' if self.unit == STEPS else 'episodes'}"
