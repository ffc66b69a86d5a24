"""Collecting a rollout: the policy acts on every environment at once, step by step.

Two shapes (``train.rollout``):

- ``episodes``: one whole episode on each environment (stepped together, their observations
  batched into one forward pass). Every rollout ends on an episode boundary of every environment.
- ``steps``: ``train.rollout_steps`` steps on each environment; an environment whose episode
  ends is reset at once, so episodes span rollouts, and the cut at the end of the rollout is
  bootstrapped from V(s) like a truncation (as SB3 and CleanRL do).

Either way a stop request (a signal) is honoured at the next step: the partial rollout is
dropped (:meth:`Collector.collect` returns None). An episode longer than the environment's
declared limit is truncated by gymnasium's TimeLimit; an environment that declares none is cut at
:data:`SAFETY_EPISODE_STEPS` (truncated, bootstrapped), with one warning, so that no episode can
run for ever or grow memory without bound.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import torch

from rlpipe.envs import contract
from rlpipe.train.buffer import RolloutBuffer
from rlpipe.train.env_group import EnvError, declared_limit
from rlpipe.train.episodes import EpisodeTrace

#: the episode step limit applied when the environment declares none: longer than any limit that
#: gymnasium's own environments declare but Atari's, short enough that one episode's logs and
#: buffer (per environment) stay in the tens of MB. ``env.max_episode_steps`` sets another limit.
SAFETY_EPISODE_STEPS = 10_000


class EnvironmentFailure(RuntimeError):
    """An environment raised (or its worker died) during a rollout; the message names the
    environment and the episode."""


class _Stopped(Exception):
    """A stop request, seen as a worker that died of the same signal."""


@dataclass
class Collected:
    """A finished rollout: its transitions and the episodes that ended in it."""

    buffer: RolloutBuffer
    finished: list[tuple[int, EpisodeTrace]]    # (environment, trace), in the order they are logged
    steps: int                                  # environment steps in the rollout (all envs)


class Collector:
    """Acts with ``agent`` on the environments of ``group``.

    Args:
        group: a :class:`~rlpipe.train.env_group.LocalEnvs` or ``WorkerEnvs``.
        agent: the actor-critic.
        env_id: the environment's id, for messages.
        use_masks: ``env.action_masking``.
        has_reference: the environment reports reference actions (environment contract).
        stop_requested: polled before each step; True drops the rollout.
        warn: reports a warning once (the safety limit).
    """

    def __init__(self, group, agent, env_id: str, use_masks: bool, has_reference: bool,
                 stop_requested: Callable[[], bool], warn: Callable[[str], None]):
        self.group = group
        self.agent = agent
        self.env_id = env_id
        self.use_masks = use_masks
        self.has_reference = has_reference
        self.stop_requested = stop_requested
        self.warn = warn
        declared = declared_limit(group.template)
        self.safety_limit = None if declared else SAFETY_EPISODE_STEPS
        self.warned = False
        self.next_key = 0
        # steps mode: the episodes in flight (None until the first rollout resets the envs)
        self.obs: list | None = None
        self.infos: list = []
        self.traces: list[EpisodeTrace] = []
        self.masking = False

    @property
    def in_flight(self) -> int:
        """Episodes started and not finished (fixed-length rollouts only)."""
        return 0 if self.obs is None else sum(1 for t in self.traces if len(t))

    # ------------------------------------------------------------------ shared
    def _trace(self, step_start: int) -> EpisodeTrace:
        self.next_key += 1
        return EpisodeTrace(self.next_key, global_step_start=step_start)

    def _failure(self, e: EnvError, where: str) -> Exception:
        if e.worker_died and self.stop_requested():   # a SIGTERM to the whole process group
            return _Stopped()
        what = "'s worker process died" if e.worker_died else " raised"
        return EnvironmentFailure(f"environment {e.index}{what} {where}: {e.detail}")

    def _act(self, indices: list[int], obs: list, infos: list, masking: bool):
        agent = self.agent
        prepared = agent.preprocess([obs[i] for i in indices], update=True)
        batch = agent.collate(prepared)
        masks = [infos[i]["action_mask"] for i in indices] if masking else None
        with torch.no_grad():
            # sampled on the CPU: every draw comes from the checkpointed CPU generator
            dist = agent.distribution(batch, masks).to("cpu")
            actions = dist.sample()
            log_probs = dist.log_prob(actions)
            entropies = dist.entropy()
            values = agent.value(batch).cpu()
        return prepared, masks, actions.numpy(), log_probs, entropies, values

    def _limit_hit(self, trace: EpisodeTrace, episode: str) -> bool:
        if self.safety_limit is None or len(trace) < self.safety_limit:
            return False
        if not self.warned:
            self.warned = True
            self.warn(f"environment {self.env_id} declares no episode step limit: {episode} was "
                      f"truncated at the safety limit of {self.safety_limit} steps (bootstrapped "
                      f"from V(s)); set env.max_episode_steps to choose the limit")
        return True

    def _step(self, indices, obs, infos, masking, buffer, traces, where):
        """One step on each environment of ``indices``; returns [(i, o, terminated, truncated,
        info)] after recording the transitions."""
        prepared, masks, actions, log_probs, entropies, values = self._act(indices, obs, infos,
                                                                           masking)
        to_env = self.agent.actions.to_env
        try:
            # environments in worker processes step while this process does the bookkeeping
            # that does not need their results (in process, they step in ``receive``)
            self.group.send([(i, to_env(actions[k])) for k, i in enumerate(indices)])
            # one conversion per batch: the same Python floats as float(tensor[k]) each
            log_probs, values, entropies = log_probs.tolist(), values.tolist(), entropies.tolist()
            results = self.group.receive()
        except EnvError as e:
            raise self._failure(e, where(e.index)) from None
        out = []
        for k, (i, (o, reward, terminated, truncated, info)) in enumerate(zip(indices, results)):
            action = actions[k]
            reward = float(reward)
            buffer.add(i, obs[i], prepared[k], masks[k] if masking else None, action,
                       log_probs[k], values[k], reward)
            traces[i].add(obs[i], action, log_probs[k], values[k], entropies[k], reward,
                          contract.read_step(info, self.has_reference))
            out.append((i, o, bool(terminated), bool(truncated), info))
        return out

    # ------------------------------------------------------------------ rollouts
    def collect(self, mode: str, **kw) -> Collected | None:
        """A rollout in ``mode`` (``episodes`` or ``steps``); None when a stop dropped it."""
        try:
            return self.episodes(**kw) if mode == "episodes" else self.steps(**kw)
        except _Stopped:
            return None

    def episodes(self, n_envs: int, first_episode: int, global_step: int,
                 rollout_steps: int = 0) -> Collected | None:
        """One episode on each of the first ``n_envs`` environments, in lockstep; the episodes
        are numbered ``first_episode + 1`` on, in environment order."""
        buffer = RolloutBuffer(n_envs)
        traces = [self._trace(0) for _ in range(n_envs)]
        try:
            reset = self.group.reset(range(n_envs))
        except EnvError as e:
            raise self._failure(e, f"at episode {first_episode + e.index + 1}, on reset") from None
        obs = [o for o, _ in reset]
        infos = [info for _, info in reset]
        masking = self.use_masks and "action_mask" in infos[0]
        self.agent.actor.eval()
        self.agent.critic.eval()
        active = list(range(n_envs))
        while active:
            if self.stop_requested():
                return None
            results = self._step(
                active, obs, infos, masking, buffer, traces,
                lambda i: f"at episode {first_episode + i + 1}, step {len(traces[i]) + 1}")
            still = []
            for i, o, terminated, truncated, info in results:
                if not self._episode_ended(buffer, i, traces[i], 1, o, terminated, truncated,
                                           info, f"episode {first_episode + i + 1}"):
                    obs[i], infos[i] = o, info
                    still.append(i)
            active = still
        step = global_step
        for trace in traces:
            trace.global_step_start = step
            step += len(trace)
        return Collected(buffer, list(enumerate(traces)), step - global_step)

    def _episode_ended(self, buffer: RolloutBuffer, i: int, trace: EpisodeTrace, first_step: int,
                       obs, terminated: bool, truncated: bool, info: dict, name: str) -> bool:
        """After a step of environment ``i``: whether its episode ended (terminated, truncated,
        or cut at the safety limit); if so, close it in ``buffer`` (a truncation bootstraps from
        ``obs``) and keep the final info in its trace."""
        if not (terminated or truncated) and self._limit_hit(trace, name):
            truncated = True
        if not (terminated or truncated):
            return False
        trace.final_info = info
        buffer.end_episode(i, trace.key, first_step, True,
                           obs if truncated and not terminated else None)
        return True

    def _reset_all(self, global_step: int) -> None:
        n = len(self.group)
        try:
            reset = self.group.reset(range(n))
        except EnvError as e:
            raise self._failure(e, "on reset") from None
        self.obs = [o for o, _ in reset]
        self.infos = [info for _, info in reset]
        self.traces = [self._trace(global_step) for _ in range(n)]
        self.masking = self.use_masks and "action_mask" in self.infos[0]

    def steps(self, rollout_steps: int, global_step: int, n_envs: int = 0,
              first_episode: int = 0) -> Collected | None:
        """``rollout_steps`` steps on every environment, resetting each as its episode ends;
        the finished episodes in the order they ended (environment order within a step)."""
        if self.obs is None:
            self._reset_all(global_step)
        n = len(self.group)
        everyone = list(range(n))
        buffer = RolloutBuffer(n)
        finished: list[tuple[int, EpisodeTrace]] = []
        first_step = [len(t) + 1 for t in self.traces]
        self.agent.actor.eval()
        self.agent.critic.eval()
        traces = self.traces
        for tick in range(rollout_steps):
            if self.stop_requested():
                return None
            results = self._step(everyone, self.obs, self.infos, self.masking, buffer, traces,
                                 lambda i: f"in its episode in progress (step {len(traces[i]) + 1}"
                                           f" of it; {first_episode} episodes logged so far)")
            done = []
            for i, o, terminated, truncated, info in results:
                trace = traces[i]
                if self._episode_ended(buffer, i, trace, first_step[i], o, terminated, truncated,
                                       info, f"an episode of environment {i}"):
                    finished.append((i, trace))
                    done.append(i)
                else:
                    self.obs[i], self.infos[i] = o, info
            if done:
                try:
                    reset = self.group.reset(done)
                except EnvError as e:
                    raise self._failure(e, "on reset") from None
                start = global_step + (tick + 1) * n
                for i, (o, info) in zip(done, reset):
                    self.obs[i], self.infos[i] = o, info
                    traces[i] = self._trace(start)
                    first_step[i] = 1
        for i in everyone:
            buffer.end_episode(i, traces[i].key, first_step[i], False, self.obs[i])
        return Collected(buffer, finished, rollout_steps * n)

    def restart(self) -> None:
        """Forget the episodes in flight: the next fixed-length rollout resets every environment."""
        self.obs = None


def value_function(agent) -> Callable[[list], Any]:
    """The critic's values of raw observations (for bootstrapping), in one batch."""

    def value_of(observations: list):
        with torch.no_grad():
            prepared = agent.preprocess(observations)
            return agent.value(agent.collate(prepared)).cpu()

    return value_of
