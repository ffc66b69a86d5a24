"""Evaluate a checkpoint (or a baseline policy) without training, optionally on other graphs.

Used by ``rlpipe evaluate`` and the learning-report benchmark: for example a GAT policy trained
on 20-node graphs evaluated zero-shot on 40-node graphs.
"""
from __future__ import annotations

import json
import math
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from rlpipe.config import Params
from rlpipe.train.checkpoint import load_checkpoint

POLICIES = ("greedy", "sample", "random", "oracle")


def params_from_checkpoint(state: dict[str, Any]) -> Params:
    return Params.from_dict(json.loads(state["params"]))


def evaluate(params: Params, state: dict[str, Any] | None, episodes: int, seed: int,
             policy: str = "greedy", env_overrides: dict[str, Any] | None = None) -> dict[str, float]:
    """Run ``episodes`` episodes; return mean return, deployment accuracy and env metrics.

    ``policy``: ``greedy`` (argmax of the actor), ``sample`` (the stochastic policy), ``random``
    (uniform over actions) or ``oracle`` (a node of the oracle's best set; graph env only).
    """
    from rlpipe.agents.policy import build_agent
    from rlpipe.train.run import make_env

    if policy not in POLICIES:
        raise ValueError(f"policy must be one of {POLICIES}, got {policy!r}")
    env_cfg = replace(params.env, **(env_overrides or {}))
    env = make_env(env_cfg)
    # on the CPU, whatever train.device was: checkpoints hold CPU tensors
    agent = build_agent(env.observation_space, env.action_space, params.agent,
                        normalize_observations=state is not None and state.get("obs_normalizer") is not None)
    if state is not None:
        agent.actor.load_state_dict(state["actor"])
        agent.critic.load_state_dict(state["critic"])
        if agent.normalizer is not None:  # frozen: evaluation never moves the statistics
            agent.normalizer.load_state_dict(state["obs_normalizer"])
    agent.actor.eval()
    rng = np.random.default_rng(seed)
    gen = torch.Generator().manual_seed(seed)
    if agent.actions.kind != "discrete":
        env.action_space.seed(seed)
    returns, accs, metrics = [], [], {}
    for ep in range(episodes):
        obs, info = env.reset(seed=seed + ep)
        total, done = 0.0, False
        while not done:
            mask = info.get("action_mask") if params.env.action_masking else None
            if policy == "random":
                action = int(rng.integers(env.action_space.n)) if agent.actions.kind == "discrete" \
                    else env.action_space.sample()
            elif policy == "oracle":
                action = int(np.flatnonzero(info["oracle_best"])[0])
            else:
                with torch.no_grad():
                    batch = agent.collate(agent.preprocess([obs]))
                    dist = agent.distribution(batch, None if mask is None else [mask])
                    chosen = dist.mode() if policy == "greedy" else dist.sample(gen)
                action = agent.actions.to_env(chosen[0].numpy())
            obs, reward, term, trunc, info = env.step(action)
            total += float(reward)
            done = term or trunc
        returns.append(total)
        if "deployment_accuracy" in info:
            accs.append(float(info["deployment_accuracy"]))
        for k, v in (info.get("metrics") or {}).items():
            metrics.setdefault(k, []).append(float(v))
    env.close()
    out = {"episodes": episodes, "mean_return": float(np.mean(returns)),
           "std_return": float(np.std(returns))}
    if accs:
        out["deployment_accuracy"] = float(np.mean(accs))
    out.update({k: float(np.mean(v)) for k, v in metrics.items()})
    return {k: v for k, v in out.items() if not (isinstance(v, float) and math.isnan(v))}


def evaluate_checkpoint(path: str | Path, episodes: int = 50, seed: int = 10_000,
                        policy: str = "greedy", env_overrides: dict[str, Any] | None = None) -> dict[str, float]:
    state = load_checkpoint(path)
    return evaluate(params_from_checkpoint(state), state, episodes, seed, policy, env_overrides)
