"""The exported policy (onnxruntime) against the torch agent on 1000 states per environment:
identical greedy actions (but for ties to float32 rounding), distribution parameters within 1e-5. Graph environments at two sizes
(the 40-node graphs take the torch agent's sparse path, the export always the dense kernels),
observation normalization on with statistics fitted to the states."""
from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch
from torch import nn

from rlpipe.agents.policy import build_agent
from rlpipe.config import AgentConfig
from rlpipe.deploy.onnx_export import to_onnx
from rlpipe.deploy.parity import collect_observations, torch_policy
from rlpipe.deploy.space_codec import space_to_json
from rlpipe.envs import register

ort = pytest.importorskip("onnxruntime")
from rlpipe.inference import Policy

STATES = 1000
TOLERANCE = 1e-5
CASES = {  # id: (env id, env kwargs, normalization)
    "graph-20-normalized": ("rlpipe/GraphDeploy-v0", {"num_nodes": 20}, True),
    "graph-40": ("rlpipe/GraphDeploy-v0", {"num_nodes": 40}, False),
    "service-chain-normalized": ("rlpipe/ServiceChain-v0", {}, True),
    "cartpole": ("CartPole-v1", {}, False),
    "pendulum-normalized": ("Pendulum-v1", {}, True),
}
# MultiDiscrete actions over a Dict observation (flattened as in training): per-component logits
EXTRA = {"dials-multidiscrete": ("Dials-v0", {}, True)}


def exported(agent, env) -> Policy:
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(to_onnx(agent), options, providers=["CPUExecutionProvider"])
    return Policy(session, {"observation_space": space_to_json(env.observation_space),
                            "action_space": space_to_json(env.action_space),
                            "policy": {"kind": agent.kind}})


def agent_for(env, normalize: bool, observations):
    torch.manual_seed(0)
    agent = build_agent(env.observation_space, env.action_space,
                        AgentConfig(hidden_dim=16, heads=2, gat_layers=2, mlp_hidden=(32, 32)), normalize)
    # a trained policy's spread of logits (the initial head is scaled by 0.01): parity is checked
    # at the magnitudes that decide real actions
    last = agent.actor.head[-1] if isinstance(agent.actor.head, nn.Sequential) else agent.actor.head
    nn.init.orthogonal_(last.weight, gain=3.0)
    nn.init.normal_(last.bias)
    if normalize:
        agent.preprocess(observations, update=True)
        stats = agent.normalizer.stats
        assert np.abs(stats.mean).max() > 0.05 and np.abs(stats.var - 1).max() > 0.05
    return agent.to("cpu")


@pytest.mark.parametrize("case", [*CASES, *EXTRA])
def test_onnxruntime_matches_torch_on_1000_states(case):
    import tests.train.spaces_envs  # noqa: F401 - registers Dials-v0

    env_id, kwargs, normalize = {**CASES, **EXTRA}[case]
    register()
    env = gym.make(env_id, **kwargs)
    observations = collect_observations(env, STATES if case in CASES else 200, seed=7)
    agent = agent_for(env, normalize, observations)
    want, want_modes = torch_policy(agent, observations)
    policy = exported(agent, env)
    got = policy.distributions(observations)
    for w, g in zip(want, got, strict=True):
        assert w.keys() == g.keys()
        for key in w:
            for u, v in zip(*((x[key] if isinstance(x[key], list) else [x[key]]) for x in (w, g)),
                            strict=True):
                assert np.shape(u) == np.shape(v)
                np.testing.assert_allclose(v, u, rtol=0, atol=TOLERANCE)
    got_modes = [policy.mode(p) for p in got]
    if agent.actions.kind == "box":  # the greedy action is the mean (then clipped to the bounds)
        np.testing.assert_allclose(np.stack(got_modes), np.stack(want_modes), rtol=0, atol=TOLERANCE)
    elif agent.actions.kind == "multi_discrete":
        assert np.array_equal(np.stack(got_modes), np.stack(want_modes))
    else:
        differ = [i for i, (a, b) in enumerate(zip(want_modes, got_modes)) if int(a) != int(b)]
        # a tie: two actions whose torch logits agree to float32 rounding (nodes the network
        # cannot tell apart); either is the argmax. Rare, and nothing else may differ.
        for i in differ:
            logits = want[i]["logits"]
            a, b = int(want_modes[i]), int(got_modes[i])
            assert abs(logits[a] - logits[b]) <= 1e-6 * max(1.0, abs(logits[a])), (case, i, a, b)
        assert len(differ) <= STATES // 100, (case, differ)
    env_actions = policy.act_batch(observations[:5])
    assert all(env.action_space.contains(a) for a in env_actions)
    env.close()
