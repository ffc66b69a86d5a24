"""The training loop: collect a rollout, compute returns, update, report (as in CleanRL).

A rollout (:mod:`rlpipe.train.collect`) is either one whole episode on each environment
(``train.rollout: episodes``, the default) or ``train.rollout_steps`` steps on each
(``steps``). Between rollouts the complete state of a run is small and exact: networks,
optimizers, counters, random generators (:mod:`rlpipe.train.rng_state`), the environments'
generators and the observation normalizer's statistics. That is what makes resume bit-exact (see
``state_dict``). Actions are sampled on the CPU whatever ``train.device`` is, and the state is
saved as CPU tensors, so a checkpoint resumes on any device (docs/DEVICES.md).

A stop request (``stop_reason``, set by a signal handler) is honoured at the next environment
step: the partial rollout is dropped, and the state of the last finished rollout is announced
again as a stopping rollout end, so the checkpoint hook saves exactly that state. A stop that
arrives after the collection (episodes reported, update running) ends the run after that
rollout, which is then checkpointed: the update's time is bounded by the rollout's size.

The trainer knows nothing about files, loggers or any particular environment: it reads
environments through the contract (:mod:`rlpipe.envs.contract`) and emits the typed events of
:mod:`rlpipe.events` to a hook list.
"""
from __future__ import annotations

import copy
import math
from collections import deque
from dataclasses import replace
from functools import partial
from typing import Any

import torch

from rlpipe import tracking
from rlpipe.agents.device import to_cpu
from rlpipe.checkpoints import CHECKPOINT_FORMAT_VERSION
from rlpipe.config import Params
from rlpipe.envs import contract
from rlpipe.events import RolloutEnd, RunInfo, RunResult, UpdateRecord
from rlpipe.train import rng_state
from rlpipe.train.collect import (
    Collected,
    Collector,
    EnvironmentFailure,
    value_function,
)
from rlpipe.train.budget import Budget
from rlpipe.train.env_group import LocalEnvs
from rlpipe.train.episodes import episode_record
from rlpipe.train.transitions import rollout_data

__all__ = ["EnvironmentFailure", "Trainer"]


class Trainer:
    """Runs A2C/PPO over a group of environments and reports to hooks.

    Args:
        params: the validated run parameters.
        envs: environments (gymnasium API, all of the same kind), or an environment group
            (:class:`~rlpipe.train.env_group.LocalEnvs`, ``WorkerEnvs``).
        agent: a :class:`~rlpipe.agents.policy.GraphActorCritic` or ``FlatActorCritic``.
        algorithm: a :class:`~rlpipe.agents.algorithms.PPO` or ``A2C`` over ``agent``.
        hooks: event receivers (a :class:`~rlpipe.hooks.base.HookList` or anything with its
            methods).
        evaluator: evaluation during training (``train.eval_interval``), a
            :class:`~rlpipe.evaluation.during_training.TrainingEvaluator`, or None (off).
    """

    def __init__(self, params: Params, envs, agent, algorithm, hooks, evaluator=None):
        self.params = params
        self.cfg = params.train
        self.group = envs if hasattr(envs, "template") else LocalEnvs(envs)
        self.envs = getattr(self.group, "envs", [])       # in-process environments, if any
        self.agent = agent
        self.algorithm = algorithm
        self.hooks = hooks
        self.env_description = contract.describe(self.group.template)
        self.collector = Collector(self.group, agent, params.env.id, params.env.action_masking,
                                   self.env_description.has_reference,
                                   lambda: self.stop_reason is not None, hooks.on_warning)
        self.episode = 0
        self.prev_episode = 0
        self.global_step = 0
        self.update_count = 0
        self.returns_window: deque[float] = deque(maxlen=self.cfg.summary_window)
        self.best_mean_reward = -math.inf
        self.last_update: dict[str, float] | None = None
        self.resumed_count = 0
        self.resume_notes: tuple[str, ...] = ()
        self.stop_reason: str | None = None   # set by a signal handler or a NaN loss, any time
        self.stopping = False                 # the stop as the last rollout end reported it
        self.budget = Budget.of(self.cfg)
        self.evaluator = evaluator
        self.reached_stop_at = False          # an evaluation reached train.stop_at
        self.target_episodes = self.cfg.episodes or 0
        self.last_end: RolloutEnd | None = None  # the last finished rollout, its state frozen

    # ------------------------------------------------------------------ seeding and state
    def seed(self, seed: int) -> None:
        """Seed every generator for a fresh run."""
        rng_state.seed_globals(seed)
        self.group.seed(seed)

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue exactly; tensors and primitive containers only."""
        state = {
            "format_version": CHECKPOINT_FORMAT_VERSION,
            "episode": self.episode,
            "global_step": self.global_step,
            "update": self.update_count,
            "actor": to_cpu(self.agent.actor.state_dict()),
            "critic": to_cpu(self.agent.critic.state_dict()),
            **to_cpu(self.algorithm.state_dict()),
            "obs_normalizer": None if self.agent.normalizer is None else self.agent.normalizer.state_dict(),
            "rng": rng_state.capture(self.group.generator_states()),
            "stats": {
                "returns_window": torch.tensor(list(self.returns_window), dtype=torch.float64),
                "best_mean_reward": float(self.best_mean_reward),
                "last_update": dict(self.last_update) if self.last_update else None,
                "resumed_count": self.resumed_count,
            },
            **({"evaluation": self.evaluator.state_dict()} if self.evaluator else {}),
        }
        if self.cfg.rollout == "steps":
            state["episodes_in_flight"] = self.collector.in_flight
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a state produced by :meth:`state_dict` (environments must be reset/seeded once)."""
        if len(state["rng"]["envs"]) != len(self.group):
            raise ValueError(f"checkpoint has {len(state['rng']['envs'])} environments, run has {len(self.group)}")
        self.agent.actor.load_state_dict(state["actor"])
        self.agent.critic.load_state_dict(state["critic"])
        self.algorithm.load_state_dict(state)
        norm = state.get("obs_normalizer")
        if (norm is None) != (self.agent.normalizer is None):
            raise ValueError("observation normalization is "
                             f"{'on' if norm is not None else 'off'} in the checkpoint, "
                             f"{'on' if self.agent.normalizer is not None else 'off'} in this run")
        if norm is not None:
            self.agent.normalizer.load_state_dict(norm)
        self.episode = self.prev_episode = int(state["episode"])
        self.global_step = int(state["global_step"])
        self.update_count = int(state["update"])
        self.group.set_generator_states(rng_state.restore(state["rng"]))
        stats = state["stats"]
        self.returns_window = deque(stats["returns_window"].tolist(), maxlen=self.cfg.summary_window)
        self.best_mean_reward = float(stats["best_mean_reward"])
        self.last_update = stats["last_update"]
        self.resumed_count = int(stats["resumed_count"]) + 1
        if self.evaluator is not None:
            self.evaluator.load_state_dict(state.get("evaluation"))
        in_flight = int(state.get("episodes_in_flight", 0))
        if in_flight:
            self.resume_notes = ((
                f"{in_flight} episodes were in flight at the checkpoint: they restart from a reset "
                "(environments are not saved in checkpoints; their generators are, so the run "
                "stays reproducible)"),)

    # ------------------------------------------------------------------ main loop
    def should_continue(self) -> bool:
        """The loop condition, in one place: the budget (episodes or steps) not spent, no stop."""
        return not self.budget.done(self.episode, self.global_step) and not self.stopping

    def run(self, run: RunInfo) -> RunResult:
        """Train until the budget (``train.episodes`` or ``train.total_steps``) is spent, or a
        stop is requested."""
        self.target_episodes = run.target_episodes
        self.budget = run.run_budget
        tracking.activate()
        self.hooks.on_train_start(run)
        try:
            # stop only after a rollout end that said so (its checkpoint covers the stop)
            while self.should_continue():
                self._iteration()
        finally:
            tracking.deactivate()
        result = RunResult(self.episode, self.global_step, self.update_count,
                           self.best_mean_reward, self.stop_reason)
        if self.stop_reason is not None:
            self.hooks.on_interrupt(run, self.stop_reason)
        else:
            self.hooks.on_train_end(run, result)
        return result

    def _collect(self) -> Collected | None:
        return self.collector.collect(
            self.cfg.rollout, n_envs=self.budget.envs_for_next_rollout(self.episode, len(self.group)),
            first_episode=self.episode, global_step=self.global_step,
            rollout_steps=self.cfg.rollout_steps)

    def _iteration(self) -> None:
        collected = self._collect()                                   # collect
        if collected is None:
            self._drop_partial_rollout()
            return
        self.prev_episode, prev_step = self.episode, self.global_step
        numbers = self._report_episodes(collected)
        self.global_step += collected.steps
        buffer = collected.buffer                                     # compute returns
        buffer.compute_returns(self.cfg.gamma, self.cfg.gae_lambda, value_function(self.agent))
        rollout = buffer.batch(self.agent)
        stats = self.algorithm.update(rollout)                        # update
        self.update_count += 1
        if stats["skipped"]:
            self.hooks.on_warning(
                f"NaN/inf loss at update {self.update_count} (episode {self.episode}): "
                f"update {'skipped' if self.cfg.on_nan == 'skip' else 'undone, stopping'} "
                f"(train.on_nan={self.cfg.on_nan})")
            if self.cfg.on_nan == "stop":
                self.stop_reason = "nan"
        else:
            self.last_update = stats
        self._report_rollout(stats, partial(rollout_data, self.update_count, buffer, rollout,
                                            numbers, self.agent.exportable), prev_step)  # report

    def _report_episodes(self, collected: Collected) -> dict[int, int]:
        """Number and log the finished episodes; returns {episode key: number}."""
        numbers = {}
        for env_index, trace in collected.finished:
            self.episode += 1
            numbers[trace.key] = self.episode
            self.returns_window.append(trace.total_reward())
            window_mean = math.fsum(self.returns_window) / len(self.returns_window)
            self.hooks.on_episode_end(episode_record(
                trace, self.episode, env_index, self.env_description.has_reference,
                window_mean, self.last_update))
        return numbers

    def _report_rollout(self, stats: dict[str, float], data, prev_step: int) -> None:
        self.hooks.on_update(UpdateRecord(self.update_count, self.global_step, self.episode,
                                          stats, tracking.drain()))
        window_full = len(self.returns_window) == self.returns_window.maxlen
        mean_reward = (math.fsum(self.returns_window) / len(self.returns_window)
                       if self.returns_window else float("nan"))
        stopping = self.stop_reason is not None
        final = self.budget.done(self.episode, self.global_step)
        best_improved = (window_full or final) and mean_reward > self.best_mean_reward
        if best_improved:
            self.best_mean_reward = mean_reward
        best_by, best_value = "mean episode reward", self.best_mean_reward
        evaluation = self._maybe_evaluate(prev_step, final)
        if evaluation is not None:  # evaluation during training chooses best.pt
            best_by, (best_improved, best_value, reached) = "evaluation return", evaluation
            final = final or reached
            self.reached_stop_at = reached
        end = RolloutEnd(
            episode=self.episode, prev_episode=self.prev_episode,
            target_episodes=self.target_episodes, stop_requested=stopping,
            mean_episode_reward=mean_reward, best_mean_reward=best_value,
            best_improved=best_improved, snapshot=self.state_dict, update=self.update_count,
            global_step=self.global_step, data=data, final=final, prev_global_step=prev_step,
            best_by=best_by, progress=self.budget.progress(self.episode, self.global_step))
        self.hooks.on_rollout_end(end)
        self.stopping = stopping or self.reached_stop_at
        if not self.stopping:  # the state the checkpoint hook saw, for a stop in the next rollout
            frozen = copy.deepcopy(self.state_dict())
            self.last_end = replace(end, data=None, best_improved=False, prev_episode=self.episode,
                                    prev_global_step=self.global_step, final=False,
                                    snapshot=lambda: copy.deepcopy(frozen))

    def _maybe_evaluate(self, prev_step: int, final: bool) -> tuple[bool, float, bool] | None:
        """Evaluation during training, when due (after the update, before the rollout end):
        emits an :class:`~rlpipe.events.EvalRecord`; returns (new best, best evaluation return,
        reached train.stop_at), or None when evaluation during training is off."""
        ev = self.evaluator
        if ev is None:
            return None
        if not ev.due(self.prev_episode, self.episode, prev_step, self.global_step, final):
            return False, ev.best, False
        record = ev.evaluate(self.agent, self.episode, self.global_step, self.update_count)
        self.hooks.on_evaluation(record)
        return record.improved, record.best_return, record.stop

    def _drop_partial_rollout(self) -> None:
        """A stop during a rollout: drop it; the last finished rollout's state stands."""
        self.hooks.on_warning(f"stop requested ({self.stop_reason}) during a rollout: the "
                              f"partial rollout is dropped; the run stands at episode "
                              f"{self.episode}, update {self.update_count}")
        self.stopping = True
        if self.last_end is not None:
            self.hooks.on_rollout_end(replace(self.last_end, stop_requested=True))
