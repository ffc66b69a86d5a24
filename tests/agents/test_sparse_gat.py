"""CSR kernel: the same numbers as PyG's GATConv for the same weights, gradients included."""
from __future__ import annotations

import pytest
import torch
from torch_geometric.nn import GATConv, GATv2Conv

from rlpipe.agents.sparse_gat import SparseAdjacency, sparse_conv, supports_sparse

TOL = 1e-5


def messy_graph(n=25, e=90, edge_dim=2, seed=0):
    """Random directed edges with repeats, input self-loops, an isolated node (n-1) and a node
    without incoming edges (n-2)."""
    g = torch.Generator().manual_seed(seed)
    ei = torch.randint(0, n - 2, (2, e), generator=g)
    ei = torch.cat([ei, ei[:, :5], torch.tensor([[3, 4], [3, 4]])], dim=1)   # repeats, self-loops
    ei = torch.cat([ei, torch.tensor([[n - 2], [0]])], dim=1)                 # n-2: outgoing only
    return ei, torch.rand(ei.shape[1], edge_dim, generator=g)


@pytest.mark.parametrize("f,c,kw", [
    (5, 8, dict(concat=True)), (5, 8, dict(concat=False)),       # narrow: aggregate, then project
    (12, 4, dict(concat=True)), (12, 4, dict(concat=False)),     # wide
    (12, 4, dict(fill_value="add", residual=True)), (5, 8, dict(fill_value=0.25)),
])
def test_csr_kernel_matches_pyg_layer(f, c, kw):
    torch.manual_seed(0)
    n = 25
    ei, ea = messy_graph(n)
    x = torch.randn(n, f, requires_grad=True)
    conv = GATConv(f, c, heads=3, edge_dim=ea.shape[1], **kw).eval()
    with torch.no_grad():
        conv.bias.normal_()
    ref, (ref_ei, ref_alpha) = conv(x, ei, ea, return_attention_weights=True)
    graph = SparseAdjacency(ei, ea, n)
    out, alpha = sparse_conv(conv, x, graph)
    torch.testing.assert_close(out, ref, atol=TOL, rtol=0)
    in_pyg_order = torch.empty_like(alpha)
    in_pyg_order[graph.order] = alpha
    torch.testing.assert_close(in_pyg_order, ref_alpha, atol=TOL, rtol=0)
    params = [x, *conv.parameters()]
    ref_g = torch.autograd.grad(ref.pow(2).sum(), params)
    out_g = torch.autograd.grad(out.pow(2).sum(), params)
    for a, r in zip(out_g, ref_g):
        torch.testing.assert_close(a, r, atol=1e-4 * max(1.0, float(r.abs().max())), rtol=0)


def test_csr_kernel_without_edge_features():
    n = 25
    ei, _ = messy_graph(n)
    x = torch.randn(n, 6)
    conv = GATConv(6, 4, heads=2).eval()
    torch.testing.assert_close(sparse_conv(conv, x, SparseAdjacency(ei, None, n))[0],
                               conv(x, ei), atol=TOL, rtol=0)


def test_supported_configurations():
    assert supports_sparse(GATConv(4, 4, heads=2, edge_dim=1))
    assert not supports_sparse(GATv2Conv(4, 4, edge_dim=1))      # no CSR kernel: PyG runs it
    assert not supports_sparse(GATConv(4, 4, add_self_loops=False))
