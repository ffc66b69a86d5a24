"""Networks and policies: shapes, variable graph sizes in one batch, masking."""
from __future__ import annotations

import gymnasium as gym
import numpy as np
import torch

import rlpipe.envs

rlpipe.envs.register()
from rlpipe.agents.graph import collate_graphs
from rlpipe.agents.policy import FlatActorCritic, GraphActorCritic, build_agent
from rlpipe.config import AgentConfig

CFG = AgentConfig(hidden_dim=8, heads=2, gat_layers=2)


def graphs(sizes, seed=0):
    out = []
    for i, n in enumerate(sizes):
        env = gym.make("rlpipe/GraphDeploy-v0", num_nodes=n, num_cloud=1)
        obs, info = env.reset(seed=seed + i)
        out.append((obs, info))
    return out


def test_collate_offsets_edges_per_graph():
    obs = [o for o, _ in graphs([5, 9, 7])]
    b = collate_graphs(obs)
    assert b.x.shape == (21, obs[0].nodes.shape[1])
    assert b.ptr.tolist() == [0, 5, 14, 21]
    assert b.edge_index.shape[1] == sum(len(o.edge_links) for o in obs)
    # every edge stays inside its own graph
    g_src, g_dst = b.batch[b.edge_index[0]], b.batch[b.edge_index[1]]
    assert torch.equal(g_src, g_dst)


def test_graph_agent_shapes_with_variable_sizes():
    pairs = graphs([5, 12, 8])
    env = gym.make("rlpipe/GraphDeploy-v0", num_nodes=5, num_cloud=1)
    agent = build_agent(env.observation_space, env.action_space, CFG)
    assert isinstance(agent, GraphActorCritic)
    b = agent.collate([o for o, _ in pairs])
    dist = agent.distribution(b)
    assert dist.probs.shape == (3, 12)
    # padding of smaller graphs gets zero probability, real nodes all positive
    assert torch.all(dist.probs[0, 5:] == 0) and torch.all(dist.probs[0, :5] > 0)
    assert torch.allclose(dist.probs.sum(-1), torch.ones(3))
    assert agent.value(b).shape == (3,)
    emb, att = agent.actor.embed(b, return_attention=True)
    assert emb.shape == (25, 8)
    n_edges = b.edge_index.shape[1]
    assert [a.shape for _, a in att] == [(n_edges + 25, 2), (n_edges + 25, 2)]  # self-loops added


def test_masking_zeroes_infeasible_nodes():
    (obs, _), = graphs([6])
    env = gym.make("rlpipe/GraphDeploy-v0", num_nodes=6, num_cloud=1)
    agent = build_agent(env.observation_space, env.action_space, CFG)
    mask = np.array([True, False, True, False, False, True])
    probs = agent.distribution(agent.collate([obs]), [mask]).probs[0]
    assert torch.all(probs[~torch.from_numpy(mask)] == 0)
    assert torch.isclose(probs.sum(), torch.tensor(1.0))


def test_flat_agent_for_cartpole():
    env = gym.make("CartPole-v1")
    agent = build_agent(env.observation_space, env.action_space, AgentConfig(mlp_hidden=(16, 8)))
    assert isinstance(agent, FlatActorCritic)
    obs = [env.reset(seed=i)[0] for i in range(5)]
    b = agent.collate(obs)
    assert agent.distribution(b).probs.shape == (5, 2)
    assert agent.value(b).shape == (5,)
    assert agent.actor.embed(b).shape == (5, 8)
