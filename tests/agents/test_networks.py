"""Networks and policies: shapes, variable graph sizes in one batch, masking."""
from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
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


# --------------------------------------------------------------------------- encoder kinds, ablation
def chain_graphs(sizes, seed=0):
    out = []
    for i, n in enumerate(sizes):
        env = gym.make("rlpipe/ServiceChain-v0", num_nodes=n)
        out.append(env.reset(seed=seed + i)[0])
    return out, env


def test_default_encoder_keeps_its_parameter_names():
    """gat_layers > 0 with the default conv builds exactly the GATConv stack of before (names
    and shapes), so existing checkpoints load and the default run is unchanged."""
    env = gym.make("rlpipe/GraphDeploy-v0", num_nodes=6, num_cloud=1)
    agent = build_agent(env.observation_space, env.action_space, CFG)
    conv = {"att_src": (1, 2, 8), "att_dst": (1, 2, 8), "att_edge": (1, 2, 8),
            "lin_edge.weight": (16, 1)}
    encoder = {**{f"encoder.convs.{i}.{k}": v for i in (0, 1) for k, v in conv.items()},
               "encoder.convs.0.bias": (16,), "encoder.convs.0.lin.weight": (16, 10),
               "encoder.convs.1.bias": (8,), "encoder.convs.1.lin.weight": (16, 16)}
    actor = {**encoder, "head.0.weight": (8, 18), "head.0.bias": (8,), "head.2.weight": (1, 8),
             "head.2.bias": (1,)}
    critic = {**encoder, "head.0.weight": (8, 16), "head.0.bias": (8,), "head.2.weight": (1, 8),
              "head.2.bias": (1,)}
    assert {k: tuple(v.shape) for k, v in agent.actor.state_dict().items()} == actor
    assert {k: tuple(v.shape) for k, v in agent.critic.state_dict().items()} == critic


@pytest.mark.parametrize("conv", ["gat", "gatv2", "transformer"])
def test_every_conv_kind_with_edge_features(conv):
    obs, env = chain_graphs([7, 11])
    cfg = AgentConfig(hidden_dim=8, heads=2, gat_layers=3, conv=conv)
    agent = build_agent(env.observation_space, env.action_space, cfg)
    b = agent.collate(obs)
    assert agent.distribution(b).probs.shape == (2, 11)
    assert agent.value(b).shape == (2,)
    emb, att = agent.actor.embed(b, return_attention=True)
    assert emb.shape == (18, 8) and len(att) == 3
    extra = 0 if conv == "transformer" else 18  # GAT kinds add self-loops
    for ei, alpha in att:
        assert ei.shape == (2, b.edge_index.shape[1] + extra) and alpha.shape[1] == 2
    # edge features reach the output: changing link latencies changes the logits
    changed = agent.collate([type(o)(o.nodes, o.edges * 0 + 1.0, o.edge_links) for o in obs])
    assert not torch.allclose(agent.actor(b), agent.actor(changed))


def test_edge_dim_follows_the_observation_space():
    space = gym.spaces.Graph(node_space=gym.spaces.Box(0, 1, (4,)),
                             edge_space=gym.spaces.Box(0, 1, (3,)))
    agent = build_agent(space, gym.spaces.Discrete(5), AgentConfig(hidden_dim=8, heads=2,
                                                                   conv="transformer"))
    g = gym.spaces.GraphInstance(np.random.rand(5, 4).astype(np.float32),
                                 np.random.rand(8, 3).astype(np.float32),
                                 np.array([[0, 1], [1, 2], [2, 3], [3, 4]] * 2, dtype=np.int64))
    assert agent.distribution(agent.collate([g])).probs.shape == (1, 5)


def test_zero_layers_is_a_per_node_mlp_blind_to_the_graph():
    obs, env = chain_graphs([9, 9])
    cfg = AgentConfig(hidden_dim=8, heads=2, gat_layers=0)
    agent = build_agent(env.observation_space, env.action_space, cfg)
    names = sorted(agent.actor.state_dict())
    assert not any(n.startswith("encoder.convs") for n in names)
    assert any(n.startswith("encoder.node_mlp") for n in names)
    b = agent.collate(obs)
    emb, att = agent.actor.embed(b, return_attention=True)
    assert emb.shape == (18, 8) and att == []
    # no message passing: another topology with the same node features gives the same outputs
    rewired = [type(o)(o.nodes, o.edges[:2], np.array([[0, 1], [1, 0]], dtype=np.int64))
               for o in obs]
    b2 = agent.collate(rewired)
    assert torch.equal(agent.actor(b), agent.actor(b2))
    assert torch.equal(agent.value(b), agent.value(b2))
    # ... whereas a GAT sees the graph
    gat = build_agent(env.observation_space, env.action_space, AgentConfig(hidden_dim=8, heads=2))
    assert not torch.allclose(gat.actor(b), gat.actor(b2))


def test_agent_config_conv_and_layers_checked():
    from rlpipe.config import ConfigError, build
    assert build(AgentConfig, {"gat_layers": 0, "conv": "transformer"}, "agent").gat_layers == 0
    with pytest.raises(ConfigError, match="agent.conv: must be one of 'gat', 'gatv2', 'transformer'"):
        build(AgentConfig, {"conv": "gcn"}, "agent")
    with pytest.raises(ConfigError, match="agent.gat_layers: must be between 0 and 16"):
        build(AgentConfig, {"gat_layers": -1}, "agent")
