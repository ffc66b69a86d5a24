"""Dense kernels: the same numbers as PyG's layers for the same weights, on padded batches."""
from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium.spaces import GraphInstance
from torch_geometric.nn import GATConv, GATv2Conv

import rlpipe.envs

rlpipe.envs.register()
from rlpipe.agents.dense_gat import DENSE_MAX_NODES, DenseAdjacency, dense_conv, supports_dense
from rlpipe.agents.graph import collate_graphs
from rlpipe.agents.networks import GATEncoder
from rlpipe.agents.policy import build_agent
from rlpipe.config import AgentConfig

TOL = 1e-5


def random_graphs(sizes, edge_dim, seed=0, p=0.3):
    """Graphs as (adj [B, N, N] source-major, edge_attr [B, N, N, D], x [B, N, F]) padded, with
    node 1 of graph 0 isolated and node 2 of graph 0 without incoming edges."""
    g = torch.Generator().manual_seed(seed)
    b, n = len(sizes), max(sizes)
    adj = torch.rand(b, n, n, generator=g) < p
    adj &= ~torch.eye(n, dtype=torch.bool)
    for i, size in enumerate(sizes):
        adj[i, size:, :] = False
        adj[i, :, size:] = False
    adj[0, 1, :] = adj[0, :, 1] = False   # isolated
    adj[0, :, 2] = False                  # no incoming edge
    attr = torch.rand(b, n, n, edge_dim, generator=g) * adj.unsqueeze(-1)
    return adj, attr


def sparse_of(adj, attr, n):
    """The same graphs as one disconnected graph for PyG (source row 0, target row 1)."""
    b, j, i = adj.nonzero(as_tuple=True)
    return torch.stack([b * n + j, b * n + i]), attr[b, j, i]


LAYERS = [
    (GATConv, dict(concat=True), 5, 8),            # narrow input (F < C): aggregate first
    (GATConv, dict(concat=False), 5, 8),
    (GATConv, dict(concat=True), 12, 4),           # wide input
    (GATConv, dict(concat=False), 12, 4),
    (GATConv, dict(fill_value="add", residual=True), 12, 4),
    (GATConv, dict(fill_value=0.5), 5, 8),
    (GATv2Conv, dict(), 6, 4),
    (GATv2Conv, dict(concat=False, share_weights=True, fill_value="add"), 6, 4),
]


@pytest.mark.parametrize("edge_dim", [1, 3])
@pytest.mark.parametrize("cls,kw,f,c", LAYERS)
def test_dense_kernel_matches_pyg_layer(cls, kw, f, c, edge_dim):
    torch.manual_seed(0)
    sizes = [7, 4, 7, 2]
    n = max(sizes)
    adj, attr = random_graphs(sizes, edge_dim)
    x = torch.randn(len(sizes), n, f)
    conv = cls(f, c, heads=3, edge_dim=edge_dim, **kw).eval()
    with torch.no_grad():
        conv.bias.normal_()
    ei, ea = sparse_of(adj, attr, n)
    ref, (ref_ei, ref_alpha) = conv(x.reshape(-1, f), ei, ea, return_attention_weights=True)
    out, alpha = dense_conv(conv, x, DenseAdjacency(adj, attr))
    assert out.shape == (len(sizes), n, ref.shape[1])
    torch.testing.assert_close(out.reshape(ref.shape), ref, atol=TOL, rtol=0)
    # every edge PyG attended over, self-loops included: alpha [B, H, target, source]
    b, src, dst = ref_ei[1] // n, ref_ei[0] % n, ref_ei[1] % n
    torch.testing.assert_close(alpha[b, :, dst, src], ref_alpha, atol=TOL, rtol=0)
    # the coefficients of each target sum to 1 and nothing goes off the graph
    torch.testing.assert_close(alpha.sum(-1), torch.ones_like(alpha.sum(-1)), atol=TOL, rtol=0)
    assert int((alpha > 0).sum()) == ref_alpha.numel()
    # gradients with respect to the layer's own parameters
    ref_g = torch.autograd.grad(ref.pow(2).sum(), list(conv.parameters()))
    out_g = torch.autograd.grad(out.pow(2).sum(), list(conv.parameters()))
    for a, r in zip(out_g, ref_g):
        torch.testing.assert_close(a, r, atol=1e-4 * max(1.0, float(r.abs().max())), rtol=0)


def deploy_graphs(sizes, seed=0):
    out = []
    for i, n in enumerate(sizes):
        env = gym.make("rlpipe/GraphDeploy-v0", num_nodes=n, num_cloud=1)
        out.append(env.reset(seed=seed + i)[0])
    return out


def with_isolated_node_and_self_loop(obs):
    """A copy of ``obs`` with one extra node that has no edges, plus an input self-loop."""
    nodes = np.concatenate([obs.nodes, obs.nodes[:1]])
    links = np.concatenate([obs.edge_links, [[0, 0]]])
    edges = np.concatenate([obs.edges, [[0.7]]]).astype(np.float32)
    return GraphInstance(nodes, edges, links)


def agent_for(n=6, **cfg):
    env = gym.make("rlpipe/GraphDeploy-v0", num_nodes=n, num_cloud=1)
    torch.manual_seed(0)
    return build_agent(env.observation_space, env.action_space, AgentConfig(**cfg))


def set_path(agent, path):
    agent.dense_max_nodes = 10 ** 6 if path == "dense" else 0
    for net in (agent.actor, agent.critic):
        net.encoder.use_kernels = path != "pyg"


@pytest.mark.parametrize("path", ["dense", "sparse"])
def test_agent_paths_match_pyg_on_padded_batches(path):
    obs = deploy_graphs([9, 5, 12]) + [with_isolated_node_and_self_loop(deploy_graphs([7])[0])]
    agent = agent_for(hidden_dim=8, heads=2, gat_layers=2)
    agent.actor.eval()
    masks = [np.arange(len(o.nodes)) % 3 != 1 for o in obs]
    with torch.no_grad():
        set_path(agent, "pyg")
        b = agent.collate(obs)
        assert agent.actor.encoder.path(b) == "pyg"
        ref_h, ref_att = agent.actor.embed(b, return_attention=True)
        ref_p = agent.distribution(b, masks).probs
        ref_v = agent.value(b)
        set_path(agent, path)
        b = agent.collate(obs)
        assert agent.actor.encoder.path(b) == path
        h, att = agent.actor.embed(b, return_attention=True)
        probs = agent.distribution(b, masks).probs
        values = agent.value(b)
    torch.testing.assert_close(h, ref_h, atol=TOL, rtol=0)
    for (ei, a), (ref_ei, ref_a) in zip(att, ref_att):
        assert torch.equal(ei, ref_ei)
        torch.testing.assert_close(a, ref_a, atol=TOL, rtol=0)
    torch.testing.assert_close(probs, ref_p, atol=TOL, rtol=0)
    torch.testing.assert_close(values, ref_v, atol=TOL, rtol=0)
    assert torch.all(probs[1, 5:] == 0)   # padding of the 5-node graph
    assert torch.all(probs[0, 1::3][:3] == 0)   # masked nodes


def test_dense_view_built_from_numpy_pads_and_masks():
    obs = deploy_graphs([4, 6])
    b = collate_graphs(obs, dense_max_nodes=8)
    d = b.dense
    assert d.x.shape == (2, 6, obs[0].nodes.shape[1]) and d.mask.tolist() == [[True] * 4 + [False] * 2, [True] * 6]
    assert torch.equal(d.x[0, :4], torch.from_numpy(obs[0].nodes)) and torch.all(d.x[0, 4:] == 0)
    for g, o in enumerate(obs):
        src, dst = o.edge_links[:, 0], o.edge_links[:, 1]
        assert int(d.adj[g].sum()) == len(src)
        assert d.adj[g, src, dst].all()
        torch.testing.assert_close(d.edge_attr[g, src, dst], torch.from_numpy(o.edges))
    assert collate_graphs(obs, dense_max_nodes=5).dense is None   # a graph above the threshold
    assert collate_graphs(obs).dense is None                       # default: sparse only


def test_repeated_edge_gets_no_dense_view_and_sparse_path_matches_pyg():
    obs = deploy_graphs([6])[0]
    doubled = GraphInstance(obs.nodes, np.concatenate([obs.edges, obs.edges[:1] * 2]),
                            np.concatenate([obs.edge_links, obs.edge_links[:1]]))
    agent = agent_for(hidden_dim=8, heads=2)
    set_path(agent, "dense")
    b = agent.collate([doubled])
    assert b.dense is None and agent.actor.encoder.path(b) == "sparse"
    with torch.no_grad():
        h = agent.actor.embed(b)
        set_path(agent, "pyg")
        torch.testing.assert_close(h, agent.actor.embed(agent.collate([doubled])), atol=TOL, rtol=0)


def test_select_equals_collating_the_selected_observations():
    obs = deploy_graphs([5, 9, 7, 6, 9])
    full = collate_graphs(obs, dense_max_nodes=16)
    idx = torch.tensor([3, 0, 4])
    got, want = full.select(idx), collate_graphs([obs[i] for i in idx.tolist()], dense_max_nodes=16)
    for name in ("x", "edge_index", "edge_attr", "batch", "ptr", "edge_ptr"):
        assert torch.equal(getattr(got, name), getattr(want, name)), name
    for name in ("x", "adj", "edge_attr", "mask"):
        assert torch.equal(getattr(got.dense, name), getattr(want.dense, name)), name


def test_kernels_add_no_parameters_and_checkpoints_load_either_way():
    enc = GATEncoder(10, 8, 2, 2)
    plain = [GATConv(10, 8, heads=2, concat=True, edge_dim=1), GATConv(16, 8, heads=2, concat=False, edge_dim=1)]
    assert list(enc.state_dict()) == [f"convs.{i}.{k}" for i, c in enumerate(plain) for k in c.state_dict()]
    a, b = agent_for(hidden_dim=8, heads=2), agent_for(hidden_dim=8, heads=2)
    b.actor.load_state_dict(a.actor.state_dict())
    set_path(a, "dense")
    set_path(b, "pyg")
    obs = deploy_graphs([6, 6])
    with torch.no_grad():
        torch.testing.assert_close(a.actor(a.collate(obs)), b.actor(b.collate(obs)), atol=TOL, rtol=0)


def test_unsupported_layer_configurations_fall_back():
    assert supports_dense(GATConv(4, 4, heads=2, edge_dim=1))
    assert not supports_dense(GATConv(4, 4, add_self_loops=False))
    assert not supports_dense(GATConv(4, 4, edge_dim=1, fill_value="max"))
    assert not supports_dense(GATConv((4, 6), 4))
    enc = GATEncoder(10, 8, 2, 2)
    enc.convs[0].fill_value = "max"
    b = collate_graphs(deploy_graphs([6]), dense_max_nodes=8)
    assert enc.path(b) == "pyg"


def test_threshold_routes_small_graphs_dense_and_large_sparse():
    agent = agent_for()
    assert agent.dense_max_nodes == DENSE_MAX_NODES
    small = agent.collate(deploy_graphs([DENSE_MAX_NODES]))
    large = agent.collate(deploy_graphs([DENSE_MAX_NODES + 1]))
    assert agent.actor.encoder.path(small) == "dense"
    assert agent.actor.encoder.path(large) == "sparse"


@pytest.mark.parametrize("conv,small,large", [("gat", "dense", "sparse"), ("gatv2", "dense", "pyg"),
                                              ("transformer", "pyg", "pyg")])
def test_each_layer_kind_takes_its_kernels_and_matches_pyg(conv, small, large):
    agent = agent_for(hidden_dim=8, heads=2, conv=conv)
    agent.actor.eval()
    for sizes, path in (([7, 5], small), ([DENSE_MAX_NODES + 3], large)):
        obs = deploy_graphs(sizes)
        with torch.no_grad():
            b = agent.collate(obs)
            assert agent.actor.encoder.path(b) == path
            probs, values = agent.distribution(b).probs, agent.value(b)
            set_path(agent, "pyg")
            ref = agent.collate(obs)
            torch.testing.assert_close(probs, agent.distribution(ref).probs, atol=TOL, rtol=0)
            torch.testing.assert_close(values, agent.value(ref), atol=TOL, rtol=0)
            set_path(agent, "dense")
            agent.dense_max_nodes = DENSE_MAX_NODES


def test_no_message_passing_ablation_runs_its_own_forward():
    agent = agent_for(hidden_dim=8, heads=2, gat_layers=0)
    b = agent.collate(deploy_graphs([6, 4]))
    assert b.dense is not None and agent.actor.encoder.path(b) == "pyg"
    assert agent.distribution(b).probs.shape == (2, 6)
