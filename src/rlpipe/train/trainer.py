"""The training loop: collect whole episodes on several environments, update, emit events.

Rollouts are *episode-synchronous*: every rollout runs exactly one episode on each environment
(stepped together, their observations batched into one forward pass), then one policy update.
So every rollout ends on an episode boundary of every environment, and the complete state of a
run between rollouts is small and exact: networks, optimizers, counters, RNG states, the
environments' generators and the observation normalizer's statistics. That is what makes resume
bit-exact (see ``state_dict``). Actions are sampled on the CPU whatever ``train.device`` is, and
the state is saved as CPU tensors, so a checkpoint resumes on any device (docs/DEVICES.md).

The trainer knows nothing about files, loggers or any particular environment: it reads
environments through the contract (:mod:`rlpipe.envs.contract`) and emits the typed events of
:mod:`rlpipe.events` to a hook list.
"""
from __future__ import annotations

import json
import math
import random
from collections import deque
from dataclasses import dataclass
from functools import partial
from typing import Any, Sequence

import numpy as np
import torch

from rlpipe import tracking
from rlpipe.agents.algorithms import Rollout, compute_gae
from rlpipe.agents.device import to_cpu
from rlpipe.checkpoints import CHECKPOINT_FORMAT_VERSION
from rlpipe.config import Params
from rlpipe.envs import contract
from rlpipe.events import (EpisodeRecord, RolloutData, RolloutEnd, RunInfo, RunResult,
                           UpdateRecord)
from rlpipe.train.budget import Budget


class EnvironmentFailure(RuntimeError):
    """An environment raised during a rollout; the message names the episode."""


@dataclass
class _EpisodeBuffer:
    observations: list              # as the environment returned them (events, exports)
    prepared: list                  # as the agent saw them: flattened, normalized (the update)
    masks: list
    actions: list
    log_probs: list
    values: list
    entropies: list
    rewards: list
    reference_actions: list
    reference_hits: list
    valid: list
    summaries: list
    final_info: dict | None = None
    bootstrap_obs: Any = None       # observation after a time-limit truncation

    @classmethod
    def empty(cls) -> "_EpisodeBuffer":
        return cls([], [], [], [], [], [], [], [], [], [], [], [])


def _generator_state(env) -> str:
    state = env.unwrapped.np_random.bit_generator.state
    return json.dumps(state, default=lambda o: o.tolist() if hasattr(o, "tolist") else str(o))


def _set_generator_state(env, blob: str) -> None:
    state = json.loads(blob)
    bitgen = env.unwrapped.np_random.bit_generator
    if "key" in state.get("state", {}):          # MT19937 keeps its key as an array
        state["state"]["key"] = np.asarray(state["state"]["key"], dtype=np.uint32)
    bitgen.state = state


def _rollout_data(update: int, first_episode: int, buffers: list[_EpisodeBuffer],
                  rollout: Rollout, exportable) -> RolloutData:
    """The transitions of a rollout (episode ``first_episode + 1`` on) for the export hook."""
    lengths = [len(b.actions) for b in buffers]
    ends = np.cumsum(lengths) - 1
    dones = np.zeros(len(rollout), dtype=bool)
    dones[ends] = True
    return RolloutData(
        update=update,
        episode=np.repeat(np.arange(first_episode + 1, first_episode + 1 + len(buffers)), lengths),
        step=np.concatenate([np.arange(1, n + 1) for n in lengths]).astype(np.int64),
        actions=rollout.actions.cpu().numpy(),
        log_probs=rollout.log_probs.cpu().numpy(),
        values=rollout.values.cpu().numpy(),
        rewards=np.concatenate([np.asarray(b.rewards, dtype=np.float32) for b in buffers]),
        dones=dones,
        advantages=rollout.advantages.cpu().numpy(),
        returns=rollout.returns.cpu().numpy(),
        observations=exportable([o for b in buffers for o in b.observations]),
    )


class Trainer:
    """Runs A2C/PPO over a list of environments and reports to hooks.

    Args:
        params: the validated run parameters.
        envs: environments (gymnasium API); all of the same kind.
        agent: a :class:`~rlpipe.agents.policy.GraphActorCritic` or ``FlatActorCritic``.
        algorithm: a :class:`~rlpipe.agents.algorithms.PPO` or ``A2C`` over ``agent``.
        hooks: event receivers (a :class:`~rlpipe.hooks.base.HookList` or anything with its
            methods).
        evaluator: evaluation during training (``train.eval_interval``), a
            :class:`~rlpipe.evaluation.during_training.TrainingEvaluator`, or None (off).
    """

    def __init__(self, params: Params, envs: Sequence, agent, algorithm, hooks, evaluator=None):
        self.params = params
        self.cfg = params.train
        self.envs = list(envs)
        self.agent = agent
        self.algorithm = algorithm
        self.hooks = hooks
        self.use_masks = params.env.action_masking
        self.env_description = contract.describe(self.envs[0])
        self.episode = 0
        self.prev_episode = 0
        self.global_step = 0
        self.update_count = 0
        self.returns_window: deque[float] = deque(maxlen=self.cfg.summary_window)
        self.best_mean_reward = -math.inf
        self.last_update: dict[str, float] | None = None
        self.resumed_count = 0
        self.stop_reason: str | None = None   # set by a signal handler or a NaN loss, any time
        self.stopping = False                 # the stop as the last rollout end reported it
        self.budget = Budget.of(self.cfg)
        self.evaluator = evaluator
        self.reached_stop_at = False          # an evaluation reached train.stop_at
        self.target_episodes = self.cfg.episodes or 0

    # ------------------------------------------------------------------ seeding and state
    def seed(self, seed: int) -> None:
        """Seed every generator for a fresh run."""
        random.seed(seed)
        np.random.seed(seed)
        torch.manual_seed(seed)
        for i, env in enumerate(self.envs):
            env.reset(seed=seed * 10_007 + i)
            env.action_space.seed(seed * 10_007 + i)

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue exactly; tensors and primitive containers only."""
        py_state = random.getstate()
        np_state = np.random.get_state()
        return {
            "format_version": CHECKPOINT_FORMAT_VERSION,
            "episode": self.episode,
            "global_step": self.global_step,
            "update": self.update_count,
            "actor": to_cpu(self.agent.actor.state_dict()),
            "critic": to_cpu(self.agent.critic.state_dict()),
            **to_cpu(self.algorithm.state_dict()),
            "obs_normalizer": None if self.agent.normalizer is None else self.agent.normalizer.state_dict(),
            "rng": {
                "python": [py_state[0], list(py_state[1]), py_state[2]],
                "numpy": [np_state[0], torch.from_numpy(np_state[1].astype(np.int64)),
                          int(np_state[2]), int(np_state[3]), float(np_state[4])],
                "torch": torch.get_rng_state(),
                "envs": [_generator_state(env) for env in self.envs],
            },
            "stats": {
                "returns_window": torch.tensor(list(self.returns_window), dtype=torch.float64),
                "best_mean_reward": float(self.best_mean_reward),
                "last_update": dict(self.last_update) if self.last_update else None,
                "resumed_count": self.resumed_count,
            },
            **({"evaluation": self.evaluator.state_dict()} if self.evaluator else {}),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a state produced by :meth:`state_dict` (environments must be reset/seeded once)."""
        if len(state["rng"]["envs"]) != len(self.envs):
            raise ValueError(f"checkpoint has {len(state['rng']['envs'])} environments, run has {len(self.envs)}")
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
        rng = state["rng"]
        py = rng["python"]
        random.setstate((py[0], tuple(py[1]), py[2]))
        npst = rng["numpy"]
        np.random.set_state((npst[0], npst[1].numpy().astype(np.uint32), npst[2], npst[3], npst[4]))
        torch.set_rng_state(rng["torch"])
        for env, blob in zip(self.envs, rng["envs"]):
            _set_generator_state(env, blob)
        stats = state["stats"]
        self.returns_window = deque(stats["returns_window"].tolist(), maxlen=self.cfg.summary_window)
        self.best_mean_reward = float(stats["best_mean_reward"])
        self.last_update = stats["last_update"]
        self.resumed_count = int(stats["resumed_count"]) + 1
        if self.evaluator is not None:
            self.evaluator.load_state_dict(state.get("evaluation"))

    # ------------------------------------------------------------------ rollout
    def _collect(self, n_envs: int) -> list[_EpisodeBuffer]:
        """Run one episode on each of the first ``n_envs`` environments, in lockstep."""
        agent = self.agent
        envs = self.envs[:n_envs]
        buffers = [_EpisodeBuffer.empty() for _ in envs]
        obs, infos = [], []
        for i, env in enumerate(envs):
            try:
                o, info = env.reset()
            except Exception as e:  # noqa: BLE001 - reported with its episode number
                raise EnvironmentFailure(
                    f"environment {i} raised at episode {self.episode + i + 1}, on reset: "
                    f"{type(e).__name__}: {e}") from e
            obs.append(o)
            infos.append(info)
        masking = self.use_masks and "action_mask" in infos[0]
        active = list(range(n_envs))
        agent.actor.eval()
        agent.critic.eval()
        while active:
            prepared = agent.preprocess([obs[i] for i in active], update=True)
            batch = agent.collate(prepared)
            masks = [infos[i]["action_mask"] for i in active] if masking else None
            with torch.no_grad():
                # sampled on the CPU: every draw comes from the checkpointed CPU generator
                dist = agent.distribution(batch, masks).to("cpu")
                actions = dist.sample()
                log_probs = dist.log_prob(actions)
                entropies = dist.entropy()
                values = agent.value(batch).cpu()
            actions = actions.numpy()
            still_active = []
            for k, i in enumerate(active):
                buf = buffers[i]
                action = actions[k]
                buf.observations.append(obs[i])
                buf.prepared.append(prepared[k])
                buf.masks.append(masks[k] if masking else None)
                buf.actions.append(action)
                buf.log_probs.append(float(log_probs[k]))
                buf.values.append(float(values[k]))
                buf.entropies.append(float(entropies[k]))
                try:
                    o, reward, terminated, truncated, info = envs[i].step(agent.actions.to_env(action))
                except Exception as e:  # noqa: BLE001 - reported with its episode number
                    raise EnvironmentFailure(
                        f"environment {i} raised at episode {self.episode + i + 1}, "
                        f"step {len(buf.actions)}: {type(e).__name__}: {e}") from e
                buf.rewards.append(float(reward))
                report = contract.read_step(info, self.env_description.has_reference)
                buf.reference_actions.append(report.reference_action)
                buf.reference_hits.append(report.reference_hit)
                buf.valid.append(report.valid)
                buf.summaries.append(report.summary)
                if terminated or truncated:
                    buf.final_info = info
                    if truncated and not terminated:
                        buf.bootstrap_obs = o
                else:
                    obs[i], infos[i] = o, info
                    still_active.append(i)
            active = still_active
        return buffers

    def _bootstrap_values(self, buffers: list[_EpisodeBuffer]) -> list[float]:
        last = [0.0] * len(buffers)
        cut = [i for i, b in enumerate(buffers) if b.bootstrap_obs is not None]
        if cut:
            with torch.no_grad():
                prepared = self.agent.preprocess([buffers[i].bootstrap_obs for i in cut])
                v = self.agent.value(self.agent.collate(prepared)).cpu()
            for j, i in enumerate(cut):
                last[i] = float(v[j])
        return last

    def _episode_record(self, buf: _EpisodeBuffer, env_index: int, number: int, step_start: int) -> EpisodeRecord:
        rewards = np.asarray(buf.rewards, dtype=np.float64)
        total = float(math.fsum(buf.rewards))
        self.returns_window.append(total)
        info = buf.final_info or {}
        has_reference = self.env_description.has_reference
        has_valid = has_reference and all(v is not None for v in buf.valid)
        summaries = {}
        if buf.summaries and buf.summaries[0]:
            for name in buf.summaries[0]:
                summaries[name] = np.asarray([s[name] for s in buf.summaries], dtype=np.float64)
        acc = contract.reference_accuracy(buf.reference_hits) if has_reference else None
        return EpisodeRecord(
            episode=number,
            env_index=env_index,
            global_step_start=step_start,
            length=len(rewards),
            total_reward=total,
            mean_reward=total / max(len(rewards), 1),
            mean_episode_reward=math.fsum(self.returns_window) / len(self.returns_window),
            accuracy=acc,
            metrics=contract.episode_metrics(info),
            last_update=self.last_update,
            actions=np.asarray(buf.actions),
            rewards=rewards,
            values=np.asarray(buf.values, dtype=np.float64),
            log_probs=np.asarray(buf.log_probs, dtype=np.float64),
            entropies=np.asarray(buf.entropies, dtype=np.float64),
            reference_actions=np.asarray(buf.reference_actions, dtype=np.int64) if has_reference else None,
            valid=np.asarray(buf.valid, dtype=bool) if has_valid else None,
            step_summaries=summaries,
            trace=info.get(contract.EPISODE_TRACE),
            observations=buf.observations,
        )

    def _rollout(self, buffers: list[_EpisodeBuffer]) -> Rollout:
        last_values = self._bootstrap_values(buffers)
        obs, masks, acts, logps, vals, advs, rets = [], [], [], [], [], [], []
        for buf, last in zip(buffers, last_values):
            values = np.asarray(buf.values, dtype=np.float64)
            adv, ret = compute_gae(np.asarray(buf.rewards), values, last, self.cfg.gamma, self.cfg.gae_lambda)
            obs += buf.prepared
            masks += buf.masks
            acts += buf.actions
            logps += buf.log_probs
            vals.append(values)
            advs.append(adv)
            rets.append(ret)
        return Rollout(
            observations=self.agent.batch_store(obs),
            masks=masks if masks and masks[0] is not None else None,
            actions=torch.from_numpy(np.asarray(acts)),
            log_probs=torch.tensor(logps, dtype=torch.float32),
            values=torch.from_numpy(np.concatenate(vals).astype(np.float32)),
            advantages=torch.from_numpy(np.concatenate(advs)),
            returns=torch.from_numpy(np.concatenate(rets)),
        ).to(self.agent.device)

    # ------------------------------------------------------------------ main loop
    def run(self, run: RunInfo) -> RunResult:
        """Train until the budget (``train.episodes`` or ``train.total_steps``) is spent, or a
        stop is requested."""
        self.target_episodes = run.target_episodes
        self.budget = run.run_budget
        tracking.activate()
        self.hooks.on_train_start(run)
        try:
            # stop only after a rollout end that said so (its checkpoint covers the stop): a
            # signal that lands while hooks handle a rollout end stops after the next rollout
            while not self.budget.done(self.episode, self.global_step) and not self.stopping:
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

    def _iteration(self) -> None:
        n_envs = self.budget.envs_for_next_rollout(self.episode, len(self.envs))
        buffers = self._collect(n_envs)
        prev_step = self.global_step
        self.prev_episode = self.episode
        step_start = self.global_step
        for i, buf in enumerate(buffers):
            record = self._episode_record(buf, i, self.episode + 1, step_start)
            self.episode += 1
            step_start += record.length
            self.hooks.on_episode_end(record)
        self.global_step = step_start

        rollout = self._rollout(buffers)
        stats = self.algorithm.update(rollout)
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
        self.hooks.on_update(UpdateRecord(self.update_count, self.global_step, self.episode,
                                          stats, tracking.drain()))
        window_full = len(self.returns_window) == self.returns_window.maxlen
        mean_reward = math.fsum(self.returns_window) / len(self.returns_window)
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
        self.hooks.on_rollout_end(RolloutEnd(
            episode=self.episode, prev_episode=self.prev_episode,
            target_episodes=self.target_episodes, stop_requested=stopping,
            mean_episode_reward=mean_reward, best_mean_reward=best_value,
            best_improved=best_improved, snapshot=self.state_dict, update=self.update_count,
            global_step=self.global_step,
            data=partial(_rollout_data, self.update_count, self.prev_episode, buffers, rollout,
                         self.agent.exportable),
            final=final, prev_global_step=prev_step, best_by=best_by,
            progress=self.budget.progress(self.episode, self.global_step)))
        self.stopping = stopping or self.reached_stop_at

    def _maybe_evaluate(self, prev_step: int, final: bool) -> tuple[bool, float, bool] | None:
        """Evaluation during training, when due (after the update, before the rollout end):
        emits an :class:`EvalRecord`; returns (new best, best evaluation return, reached
        train.stop_at), or None when evaluation during training is off."""
        ev = self.evaluator
        if ev is None:
            return None
        if not ev.due(self.prev_episode, self.episode, prev_step, self.global_step, final):
            return False, ev.best, False
        record = ev.evaluate(self.agent, self.episode, self.global_step, self.update_count)
        self.hooks.on_evaluation(record)
        return record.improved, record.best_return, record.stop

    @property
    def mean_episode_reward(self) -> float:
        return math.fsum(self.returns_window) / len(self.returns_window) if self.returns_window else float("nan")
