"""Evaluate a checkpoint (or a baseline policy) without training, optionally with other
environment settings.

Used by ``rlpipe evaluate`` and the learning benchmarks: for example a GAT policy trained on
20-node graphs evaluated zero-shot on 40-node graphs (``env_overrides={"num_nodes": 40}``).
"""
from __future__ import annotations

import json
import math
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from rlpipe.checkpoints import load_checkpoint
from rlpipe.config import ConfigError, Params
from rlpipe.envs import contract

POLICIES = ("greedy", "sample", "random", "reference")


#: the params sections that define the agent and its environment; the others (logging, figures)
#: are not needed to evaluate, so a checkpoint written when they had other keys still loads
RUN_SECTIONS = ("env", "agent", "train")


def params_from_checkpoint(state: dict[str, Any]) -> Params:
    stored = json.loads(state["params"])
    return Params.from_dict({k: v for k, v in stored.items() if k in RUN_SECTIONS})


def _reference_action(info: dict, env_id: str) -> int:
    best = info.get(contract.REFERENCE_NEXT)
    if best is None:
        raise ConfigError(f"--policy reference: {env_id!r} reports no reference decisions "
                          f"(info[{contract.REFERENCE_NEXT!r}], docs/ENVIRONMENTS.md)")
    return int(np.flatnonzero(best)[0])


def evaluate(params: Params, state: dict[str, Any] | None, episodes: int, seed: int,
             policy: str = "greedy", env_overrides: dict[str, Any] | None = None) -> dict[str, float]:
    """Run ``episodes`` episodes; return the mean return, the accuracy against the reference
    decisions (when the environment reports them) and the environment's episode metrics.

    ``policy``: ``greedy`` (the distribution's mode: argmax, or the Gaussian mean clipped to the
    bounds), ``sample`` (the stochastic policy), ``random`` (uniform over actions) or ``reference`` (an action of the environment's reference set).
    ``env_overrides`` replace entries of ``env.kwargs``.
    """
    from rlpipe.agents.policy import build_agent
    from rlpipe.train.environment import make_env

    if policy not in POLICIES:
        raise ValueError(f"policy must be one of {POLICIES}, got {policy!r}")
    env_cfg = replace(params.env, kwargs={**params.env.kwargs, **(env_overrides or {})})
    env = make_env(env_cfg)
    desc = contract.describe(env)
    # on the CPU, whatever train.device was: checkpoints hold CPU tensors
    normalize = state is not None and state.get("obs_normalizer") is not None
    agent = build_agent(env.observation_space, env.action_space, params.agent, normalize)
    if state is not None:
        agent.actor.load_state_dict(state["actor"])
        agent.critic.load_state_dict(state["critic"])
        if normalize:  # frozen: evaluating never moves the statistics
            agent.normalizer.load_state_dict(state["obs_normalizer"])
    agent.actor.eval()
    rng = np.random.default_rng(seed)
    gen = torch.Generator().manual_seed(seed)
    discrete = agent.actions.kind == "discrete"
    env.action_space.seed(seed)
    returns, accs, metrics = [], [], {}
    for ep in range(episodes):
        obs, info = env.reset(seed=seed + ep)
        total, done, hits = 0.0, False, []
        while not done:
            mask = info.get("action_mask") if params.env.action_masking else None
            if policy == "random":
                action = int(rng.integers(env.action_space.n)) if discrete else env.action_space.sample()
            elif policy == "reference":
                action = _reference_action(info, params.env.id)
            else:
                with torch.no_grad():
                    batch = agent.collate(agent.preprocess([obs]))
                    dist = agent.distribution(batch, None if mask is None else [mask])
                    chosen = dist.mode() if policy == "greedy" else dist.sample(gen)
                action = agent.actions.to_env(chosen[0].numpy())
            obs, reward, term, trunc, info = env.step(action)
            total += float(reward)
            hits.append(contract.read_step(info, desc.has_reference).reference_hit)
            done = term or trunc
        returns.append(total)
        if desc.has_reference:
            accs.append(contract.reference_accuracy(hits))
        for k, v in contract.episode_metrics(info).items():
            metrics.setdefault(k, []).append(v)
    env.close()
    out = {"episodes": episodes, "mean_return": float(np.mean(returns)),
           "std_return": float(np.std(returns))}
    if accs:
        out["deployment_accuracy"] = float(np.mean(accs))  # the episodes.csv column's meaning
    out.update({k: float(np.mean(v)) for k, v in metrics.items()})
    return {k: v for k, v in out.items() if not (isinstance(v, float) and math.isnan(v))}


def evaluate_checkpoint(path: str | Path, episodes: int = 50, seed: int = 10_000,
                        policy: str = "greedy", env_overrides: dict[str, Any] | None = None) -> dict[str, float]:
    state = load_checkpoint(path)
    return evaluate(params_from_checkpoint(state), state, episodes, seed, policy, env_overrides)
