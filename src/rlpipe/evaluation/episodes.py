"""Play evaluation episodes: a policy (greedy or sampled actions of an agent, uniform random
actions, or the environment's reference decisions) on environments reset with given seeds.

The one loop behind the ``evaluate`` stage, ``rlpipe evaluate`` and evaluation during training.
Episodes run in lockstep on the environments given (one batched forward pass per step); each
episode is reset with its own seed, so its result never depends on which environment or batch
played it. Nothing global is touched: no python/numpy/torch global generator (sampled actions
draw from a generator of their own, seeded from the episode seeds), the agent's observation
normalizer is read, never updated, and the networks' train/eval modes are restored.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from rlpipe.envs import contract

AGENT_POLICIES = ("greedy", "sample")
BASELINES = ("random", "reference")
POLICIES = AGENT_POLICIES + BASELINES


class EvaluationError(ValueError):
    """An environment or a policy cannot be evaluated (one line, naming what)."""


@dataclass(frozen=True)
class EpisodeResult:
    """One evaluation episode."""

    seed: int                       # the reset seed (rlpipe.evaluation.seeds)
    total_reward: float
    length: int
    accuracy: float | None          # share of decisions in the reference set; None: no reference
    metrics: dict[str, float] = field(default_factory=dict)   # the environment's episode metrics


def _first_reference(info: dict, env_name: str) -> int:
    best = info.get(contract.REFERENCE_NEXT)
    if best is None:
        raise EvaluationError(f"the reference policy: {env_name} reports no reference decisions "
                              f"(info[{contract.REFERENCE_NEXT!r}], docs/ENVIRONMENTS.md)")
    return int(np.flatnonzero(best)[0])


def _sample_generator(seeds: Sequence[int]):
    import torch

    return torch.Generator().manual_seed(int(seeds[0]) % (2 ** 63))


def _agent_actions(agent, policy: str, obs: list, masks: list | None, gen) -> list:
    import torch

    with torch.no_grad():
        batch = agent.collate(agent.preprocess(obs, update=False))
        dist = agent.distribution(batch, masks).to("cpu")
        chosen = dist.mode() if policy == "greedy" else dist.sample(gen)
    return [agent.actions.to_env(a) for a in chosen.numpy()]


def run_episodes(envs: Sequence, seeds: Sequence[int], policy: str, agent=None,
                 masking: bool = False, env_name: str = "the environment") -> list[EpisodeResult]:
    """Play one episode per seed (in order), ``len(envs)`` at a time in lockstep.

    ``policy``: ``greedy`` (the distribution's mode: argmax, or the Gaussian mean), ``sample``
    (the stochastic policy), ``random`` (the action space's uniform sample, seeded per episode,
    within the action mask when ``masking``) or ``reference`` (the first action of the
    environment's reference set). ``agent`` is needed by the first two only.
    """
    if policy not in POLICIES:
        raise EvaluationError(f"policy must be one of {', '.join(POLICIES)}, got {policy!r}")
    if policy in AGENT_POLICIES and agent is None:
        raise EvaluationError(f"policy {policy!r} needs an agent")
    modules = [] if agent is None else [agent.actor, agent.critic]
    modes = [m.training for m in modules]
    for m in modules:
        m.eval()
    try:
        out: list[EpisodeResult] = []
        width = max(1, len(envs))
        for start in range(0, len(seeds), width):
            chunk = [int(s) for s in seeds[start:start + width]]
            out += _lockstep(envs[:len(chunk)], chunk, policy, agent, masking, env_name)
        return out
    finally:
        for m, mode in zip(modules, modes):
            m.train(mode)


def _lockstep(envs, seeds, policy, agent, masking, env_name) -> list[EpisodeResult]:
    desc = contract.describe(envs[0])
    obs, infos = [], []
    for env, seed in zip(envs, seeds):
        o, info = env.reset(seed=seed)
        if policy == "random":
            env.action_space.seed(seed)
        obs.append(o)
        infos.append(info)
    use_masks = masking and "action_mask" in infos[0]
    gen = _sample_generator(seeds) if policy == "sample" else None
    totals = [[] for _ in envs]
    hits = [[] for _ in envs]
    final = [None] * len(envs)
    active = list(range(len(envs)))
    while active:
        masks = [np.asarray(infos[i]["action_mask"]) for i in active] if use_masks else None
        if policy in AGENT_POLICIES:
            actions = _agent_actions(agent, policy, [obs[i] for i in active], masks, gen)
        elif policy == "random":
            actions = [envs[i].action_space.sample(
                None if masks is None else masks[k].astype(np.int8)) for k, i in enumerate(active)]
        else:
            actions = [_first_reference(infos[i], env_name) for i in active]
        still = []
        for i, action in zip(active, actions):
            o, reward, terminated, truncated, info = envs[i].step(action)
            totals[i].append(float(reward))
            hits[i].append(contract.read_step(info, desc.has_reference).reference_hit)
            if terminated or truncated:
                final[i] = info
            else:
                obs[i], infos[i] = o, info
                still.append(i)
        active = still
    return [EpisodeResult(
        seed=seed, total_reward=float(math.fsum(totals[i])), length=len(totals[i]),
        accuracy=contract.reference_accuracy(hits[i]) if desc.has_reference else None,
        metrics=contract.episode_metrics(final[i] or {}))
        for i, seed in enumerate(seeds)]


def load_agent(state: dict[str, Any], env, agent_cfg):
    """The checkpoint's agent for ``env``'s spaces, on the CPU (checkpoints hold CPU tensors),
    its observation statistics frozen. Raises ``RuntimeError``/``ValueError`` when the networks
    do not fit the environment."""
    from rlpipe.agents.policy import build_agent

    normalize = state.get("obs_normalizer") is not None
    agent = build_agent(env.observation_space, env.action_space, agent_cfg, normalize)
    agent.actor.load_state_dict(state["actor"])
    agent.critic.load_state_dict(state["critic"])
    if normalize:
        agent.normalizer.load_state_dict(state["obs_normalizer"])
    return agent
