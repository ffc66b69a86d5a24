"""Evaluation during training (``train.eval_interval``): the current policy, greedy, on
environment instances of its own, every so often; the trainer calls :meth:`TrainingEvaluator.
maybe_evaluate` after each update.

It never changes training: its environments are separate instances reset with seeds of their
own (lane ``VALIDATION`` of :mod:`rlpipe.evaluation.seeds`: never a training seed nor an episode
the evaluate stage reports), greedy actions draw from no generator, the observation normalizer
is read and never updated, and the networks' train/eval modes are restored. Each evaluation
plays fresh episodes (the seeds continue from a counter); the counter and the best evaluation
return are part of the checkpoint (:meth:`state_dict`), so a resumed run evaluates exactly as an
uninterrupted one.
"""
from __future__ import annotations

import math
from typing import Any, Callable

from rlpipe.evaluation import seeds as S
from rlpipe.evaluation.episodes import run_episodes
from rlpipe.evaluation.report import summarize
from rlpipe.events import EvalRecord

#: the best-checkpoint rule with evaluation on (the text log and docs/FILES.md say which chose it)
RULE = "evaluation return"
BATCH = 16  # environments stepped together


class TrainingEvaluator:
    """Args:
        make_env: builds one environment with the training settings (a new instance).
        interval: a :class:`rlpipe.train.budget.Interval` (episodes or steps).
        episodes: episodes per evaluation (``train.eval_episodes``).
        seed: ``train.seed`` (the seeds of its episodes derive from it).
        masking: ``env.action_masking``.
        stop_at: an evaluation mean return that ends training early, or None.
    """

    def __init__(self, make_env: Callable[[], Any], interval, episodes: int, seed: int,
                 masking: bool, stop_at: float | None = None):
        self.make_env = make_env
        self.interval = interval
        self.episodes = episodes
        self.seed = seed
        self.masking = masking
        self.stop_at = stop_at
        self.envs: list = []
        self.played = 0               # evaluation episodes so far (the seeds continue from it)
        self.best = -math.inf

    def due(self, prev_episode: int, episode: int, prev_step: int, step: int, final: bool) -> bool:
        return self.interval.crossed(prev_episode, episode, prev_step, step) or final

    def evaluate(self, agent, episode: int, global_step: int, update: int) -> EvalRecord:
        if not self.envs:
            self.envs = [self.make_env() for _ in range(min(self.episodes, BATCH))]
        seeds = [S.episode_seed(self.seed, self.played + j, S.VALIDATION)
                 for j in range(self.episodes)]
        results = run_episodes(self.envs, seeds, "greedy", agent, self.masking)
        self.played += self.episodes
        block = summarize(results)
        mean = block["return"]["mean"]
        improved = mean > self.best
        if improved:
            self.best = mean
        acc = block.get("reference_accuracy")
        return EvalRecord(
            episode=episode, global_step=global_step, update=update, episodes=len(results),
            mean_return=mean, sd_return=block["return"]["sd"],
            accuracy=None if acc is None else acc["mean"],
            metrics={name: float(sum(r.metrics[name] for r in results if name in r.metrics)
                                 / max(1, sum(name in r.metrics for r in results)))
                     for name in dict.fromkeys(n for r in results for n in r.metrics)},
            best_return=self.best, improved=improved,
            stop=self.stop_at is not None and mean >= self.stop_at)

    def state_dict(self) -> dict[str, Any]:
        return {"played": self.played, "best": float(self.best)}

    def load_state_dict(self, state: dict[str, Any] | None) -> None:
        if state:
            self.played = int(state["played"])
            self.best = float(state["best"])

    def close(self) -> None:
        for env in self.envs:
            env.close()
        self.envs = []
