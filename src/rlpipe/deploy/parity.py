"""The torch side of a parity check: observations from an environment, and the trained agent's
own distribution parameters and greedy actions for them (the path training and ``rlpipe
evaluate`` take), to compare with the exported policy's (:mod:`rlpipe.inference`)."""
from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
import torch

from rlpipe.agents.spaces import BOX, DISCRETE

_NEG = torch.finfo(torch.float32).min


def collect_observations(env: gym.Env, count: int, seed: int) -> list[Any]:
    """``count`` observations of ``env`` under uniformly random actions (episodes reset with
    ``seed``, ``seed + 1``, ...)."""
    env.action_space.seed(seed)
    obs, _ = env.reset(seed=seed)
    out, episode = [obs], 0
    while len(out) < count:
        obs, _, term, trunc, _ = env.step(env.action_space.sample())
        if term or trunc:
            episode += 1
            obs, _ = env.reset(seed=seed + episode)
        out.append(obs)
    return out


def torch_policy(agent, observations: list[Any]) -> tuple[list[dict[str, np.ndarray]], list[np.ndarray]]:
    """Per observation: the distribution's parameters (``logits``, or ``mean`` and ``log_std``;
    MultiDiscrete: ``logits`` as a list per component) and its mode (``dist.mode()``, the greedy
    action before ``to_env``). All observations go through the agent in one batch, frozen."""
    agent.actor.eval()
    with torch.no_grad():
        batch = agent.collate(agent.preprocess(observations))
        dist = agent.distribution(batch)
        actions = list(dist.mode().numpy())
        if agent.kind == "graph":
            logits = agent.actor.padded_logits(batch, _NEG).numpy()
            params = [{"logits": row[:o.nodes.shape[0]]} for row, o in zip(logits, observations)]
        elif agent.actions.kind == BOX:
            params = [{"mean": m, "log_std": s} for m, s in zip(dist.mean.numpy(), dist.log_std.numpy())]
        else:
            out = agent.actor(batch).numpy()
            if agent.actions.kind == DISCRETE:
                params = [{"logits": row} for row in out]
            else:
                cuts = np.cumsum(agent.actions.nvec)[:-1]
                params = [{"logits": np.split(row, cuts)} for row in out]
    return params, actions


def max_difference(a: list[dict[str, Any]], b: list[dict[str, Any]], scaled: bool = False) -> float:
    """The largest absolute difference between two lists of distribution parameters; with
    ``scaled``, each difference divided by ``max(1, |a|)`` (float32 rounding grows with the
    magnitude: a trained policy's logits reach tens)."""
    worst = 0.0
    for x, y in zip(a, b, strict=True):
        for key in x:
            xs = x[key] if isinstance(x[key], list) else [x[key]]
            ys = y[key] if isinstance(y[key], list) else [y[key]]
            for u, v in zip(xs, ys, strict=True):
                u = np.asarray(u, np.float64)
                d = np.abs(u - v) / (np.maximum(1.0, np.abs(u)) if scaled else 1.0)
                if np.isnan(d).any():   # NaN on either side never passes
                    return float("inf")
                worst = max(worst, float(np.max(d, initial=0.0)))
    return worst


def compare(want: list[dict[str, Any]], want_modes: list[np.ndarray], got: list[dict[str, Any]],
            got_modes: list[np.ndarray], tolerance: float) -> dict[str, Any]:
    """Parity of two policies' parameters and greedy actions on the same observations.

    A Gaussian's greedy action is its mean: equal within ``tolerance``. A categorical's is an
    index: equal, or a *tie*: the two indices' torch logits within ``tolerance`` (times
    ``max(1, |logit|)``) of each other
    (nodes that the network cannot tell apart score the same up to rounding, and rounding
    decides the argmax). ``greedy_actions_differing`` counts the rest: 0 means parity.
    """
    differing = ties = 0
    for w, wm, gm in zip(want, want_modes, got_modes, strict=True):
        wm, gm = np.atleast_1d(wm), np.atleast_1d(gm)
        if "mean" in w:
            differing += not np.allclose(wm, gm, rtol=0.0, atol=tolerance)
            continue
        if np.array_equal(wm, gm):
            continue
        logits = w["logits"] if isinstance(w["logits"], list) else [w["logits"]]
        tied = all(abs(float(lg[a]) - float(lg[b])) <= tolerance * max(1.0, abs(float(lg[a])))
                   for lg, a, b in zip(logits, wm, gm))
        ties += tied
        differing += not tied
    return {"states": len(want), "max_abs_difference": max_difference(want, got),
            "max_scaled_difference": max_difference(want, got, scaled=True),
            "greedy_actions_differing": int(differing), "greedy_ties": int(ties),
            "tolerance": tolerance}
