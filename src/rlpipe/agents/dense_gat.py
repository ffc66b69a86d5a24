"""Dense small-graph kernels for PyG attention layers, over the layers' own parameters.

A batch of small graphs padded to ``N`` nodes is cheaper to run as dense ``[B, N, N]``
attention than as PyG's gather/scatter message passing (fewer, larger kernels; no index work).
The functions here compute what the sparse layer computes, from the sparse module's own
parameters: no module of this file holds weights, so state_dicts and checkpoints are the same
whichever path ran. A kernel is registered per layer class in :data:`DENSE_KERNELS`;
:func:`supports_dense` says whether a configured layer can take the dense path, and
:func:`dense_conv` runs it.

What "the same" means, for ``GATConv`` (and ``GATv2Conv``) with ``edge_dim``:

- existing self-loops are dropped and one self-loop per node is added, whose edge attribute is
  the layer's ``fill_value`` (``'mean'``: the mean of the node's incoming edge attributes, 0 for
  a node without any; ``'add'``: their sum; a number or tensor: that value);
- attention logits ``leaky_relu(a_dst·x_i + a_src·x_j + a_edge·W_e e_ji, slope)`` (GATv2:
  ``att · leaky_relu(W_r x_i + W_l x_j + W_e e_ji)``), softmax over the incoming edges of each
  target node including its self-loop, dropout on the coefficients in training;
- heads concatenated or averaged, residual if configured, then the bias.

Multi-edges cannot be held in an adjacency matrix: :func:`rlpipe.agents.graph.collate_graphs`
builds no dense view for batches that have any (they take the sparse path). Results agree with
the sparse layer to float32 rounding (tests: 1e-5), not bit for bit.

Conventions: ``adj[b, j, i]`` is True when graph ``b`` has an edge from source node ``j`` to
target node ``i`` (rows are sources, as in ``torch_geometric.utils.to_dense_adj``); edge
features ``[B, N(source), N(target), D]`` alike. Inside the kernels attention is laid out
``[B, N(source), H, N(target)]`` and normalised over dim 1: on this CPU a softmax over a
non-innermost dim of 20 is ~2x faster than over the last, and the layout lets both aggregations
below run as one plain matmul per graph without copies. Kernels return attention as
``[B, H, N(target), N(source)]`` (a view).
"""
from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F
from torch import Tensor
from torch_geometric.nn import GATConv, GATv2Conv

from rlpipe.agents.gat_common import (attention_weights, edge_vector, finish, head_projection,
                                      loop_fill, plain_gat)

#: Largest graph (nodes) that the agents batch densely; larger graphs take the CSR kernels of
#: :mod:`rlpipe.agents.sparse_gat`. The measured crossover of the update's unit of work (actor +
#: critic forward+backward on 100 bounded-degree graphs): dense faster up to 32 nodes, slower
#: from 40 (``bench/bench_dense.py``, BENCHMARKS.md ``dense``). Dense memory grows as N^2.
DENSE_MAX_NODES = 32

def self_loop_attr(adj: Tensor, edge_attr: Tensor, fill_value) -> Tensor:
    """Edge attributes of the self-loops ``add_self_loops(..., fill_value)`` would add.

    Shapes:
        - adj: [B, N(source), N(target)] bool, no self-loops
        - edge_attr: [B, N(source), N(target), D], zero where there is no edge
        - output: [B, N, D] (per target node)
    """
    return loop_fill(edge_attr.sum(dim=1), adj.sum(dim=1), fill_value, edge_attr.dtype)


class DenseAdjacency:
    """What the layers of one forward share about a dense batch's edges (made once per batch).

    Args:
        adj: edges without self-loops (see the module docstring).
        edge_attr: edge features (zero where no edge), or None.

    Shapes:
        - adj: [B, N, N] bool; edge_attr: [B, N, N, D] (source-major)
        - :attr:`logit_mask`: [B, N(source), 1, N(target)], 0 on edges and self-loops, -inf
          elsewhere (broadcasts over heads)
        - :meth:`with_loops`: [B, N, N, D], the edge features with the self-loops' on the
          diagonal
    """

    def __init__(self, adj: Tensor, edge_attr: Tensor | None):
        self.adj = adj
        self.edge_attr = edge_attr
        eye = torch.eye(adj.shape[-1], dtype=torch.bool, device=adj.device)
        allowed = (adj | eye).unsqueeze(2)
        self.logit_mask = torch.zeros(allowed.shape, dtype=torch.float32,
                                      device=adj.device).masked_fill_(~allowed, float("-inf"))
        self._filled: dict[str, Tensor] = {}

    def with_loops(self, fill_value) -> Tensor:
        key = repr(fill_value) if not isinstance(fill_value, Tensor) else str(id(fill_value))
        if key not in self._filled:
            loops = self_loop_attr(self.adj, self.edge_attr, fill_value)
            idx = torch.arange(self.adj.shape[-1], device=self.adj.device)
            filled = self.edge_attr.clone()
            filled[:, idx, idx] = loops
            self._filled[key] = filled
        return self._filled[key]


def _attention(conv, a_src: Tensor, a_dst: Tensor, graph: DenseAdjacency) -> Tensor:
    """Attention coefficients laid out ``[B, N(source), H, N(target)]``.

    ``leaky_relu(a_src[j] + a_dst[i] + e_ji·v)`` masked to the edges and self-loops, softmax over
    sources, dropout. Built in as few passes over the ``[B, N, H, N]`` grid as autograd allows:
    the mask and edge term first (one op), the node terms added in place.

    Shapes:
        - a_src, a_dst: [B, N, H]
        - output: [B, N(source), H, N(target)]
    """
    h = a_src.shape[-1]
    mask = graph.logit_mask                                          # [B, N, 1, N]
    v = None if graph.edge_attr is None else edge_vector(conv, graph.edge_attr.shape[-1])
    if v is not None:                                                # [H, D]
        d = v.shape[1]
        e = graph.with_loops(conv.fill_value)                       # [B, N, N, D]
        if d == 1:
            logits = torch.addcmul(mask, e[..., 0].unsqueeze(2), v.view(1, 1, h, 1))
        else:
            logits = torch.einsum("bjid,hd->bjhi", e, v) + mask
    else:
        logits = mask.expand(-1, -1, h, -1).clone()
    logits = logits.add_(a_src.unsqueeze(-1)).add_(a_dst.transpose(1, 2).unsqueeze(1))
    alpha = F.leaky_relu_(logits, conv.negative_slope).softmax(dim=1)   # -inf stays -inf
    return F.dropout(alpha, p=conv.dropout, training=conv.training)


def dense_gat_conv(conv: GATConv, x: Tensor, graph: DenseAdjacency) -> tuple[Tensor, Tensor]:
    r"""``GATConv`` on dense padded graphs, with ``conv``'s parameters.

    Same arithmetic up to rounding, in fewer passes over large tensors than a literal
    transcription: the folds of :mod:`rlpipe.agents.gat_common` (attention and edge vectors
    folded into small matmuls; aggregate-then-project when ``F < C``, e.g. the first layer),
    and for averaged heads each graph's attention as one ``[(source, head), target]`` matrix
    against its features as one ``[(source, head), C]`` matrix, so one matmul per graph
    aggregates and sums the heads.

    Args:
        conv: a ``GATConv`` (``in_channels`` an int, ``add_self_loops=True``).
        x: node features; padding rows are arbitrary (they never reach a real node).
        graph: the batch's edges (:class:`DenseAdjacency`).

    Shapes:
        - input: x [B, N, F]
        - output: (out [B, N, H * C] or [B, N, C] with ``concat=False``,
          alpha [B, H, N(target), N(source)])
    """
    b, n, f = x.shape
    h, c = conv.heads, conv.out_channels
    if f < c:
        a, xw = x @ attention_weights(conv).t(), None                      # [B, N, 2H]
    else:   # one matmul for the logit terms and the features; split: one gradient buffer
        a, xw = (x @ torch.cat([attention_weights(conv), conv.lin.weight]).t()).split(
            [2 * h, h * c], dim=-1)
    a_src, a_dst = a.split([h, h], dim=-1)                                  # [B, N, H] each
    alpha = _attention(conv, a_src, a_dst, graph)                          # [B, N(s), H, N(t)]
    if f < c:
        by_target = alpha.view(b, n, h * n).transpose(1, 2)                # [B, (H, N(t)), N(s)]
        z = (by_target @ x).view(b, h, n, f).transpose(1, 2).reshape(b, n, h * f)
        out = z @ head_projection(conv).t()
    elif conv.concat:
        out = alpha.permute(0, 2, 3, 1) @ xw.reshape(b, n, h, c).transpose(1, 2)   # [B, H, N, C]
        out = out.transpose(1, 2).reshape(b, n, h * c)
    else:
        stacked = xw.reshape(b, n * h, c)                                   # [B, (N(s), H), C]
        out = torch.bmm(alpha.view(b, n * h, n).transpose(1, 2), stacked).div_(h)   # [B, N(t), C]
    return finish(conv, out, x), alpha.permute(0, 2, 3, 1)


def dense_gatv2_conv(conv: GATv2Conv, x: Tensor, graph: DenseAdjacency) -> tuple[Tensor, Tensor]:
    r"""``GATv2Conv`` on dense padded graphs, with ``conv``'s parameters.

    GATv2 applies the non-linearity before the attention vector, so its logits need the full
    ``[B, N, N, H, C]`` tensor: this kernel pays off only on small graphs.

    Shapes:
        - input: x [B, N, F]
        - output: (out [B, N, H * C] or [B, N, C], alpha [B, H, N(target), N(source)])
    """
    b, n, _ = x.shape
    h, c = conv.heads, conv.out_channels
    x_l = conv.lin_l(x).view(b, n, h, c)
    x_r = x_l if conv.share_weights else conv.lin_r(x).view(b, n, h, c)
    z = x_l.unsqueeze(2) + x_r.unsqueeze(1)                        # [B, N(s), N(t), H, C]
    if conv.lin_edge is not None and graph.edge_attr is not None:
        z = z + conv.lin_edge(graph.with_loops(conv.fill_value)).view(b, n, n, h, c)
    z = F.leaky_relu(z, conv.negative_slope)
    logits = (z * conv.att.view(1, 1, 1, h, c)).sum(-1).transpose(2, 3)   # [B, N(s), H, N(t)]
    alpha = F.dropout((logits + graph.logit_mask).softmax(dim=1), p=conv.dropout,
                      training=conv.training).permute(0, 2, 3, 1)   # [B, H, N(t), N(s)]
    out = alpha @ x_l.transpose(1, 2)                               # [B, H, N(t), C]
    out = out.transpose(1, 2).reshape(b, n, h * c) if conv.concat else out.mean(dim=1)
    return finish(conv, out, x), alpha


DenseKernel = Callable[..., tuple[Tensor, Tensor]]

#: Layer class -> its dense kernel. A new layer type gets a kernel here (same signature).
DENSE_KERNELS: dict[type, DenseKernel] = {GATConv: dense_gat_conv, GATv2Conv: dense_gatv2_conv}


def supports_dense(conv) -> bool:
    """True when ``conv``'s configuration is one the dense kernels reproduce."""
    return type(conv) in DENSE_KERNELS and plain_gat(conv)


def dense_conv(conv, x: Tensor, graph: DenseAdjacency) -> tuple[Tensor, Tensor]:
    """Run ``conv``'s registered dense kernel (see :data:`DENSE_KERNELS`).

    Shapes:
        - input: x [B, N, F]
        - output: (out [B, N, F_out], alpha [B, H, N(target), N(source)])
    """
    return DENSE_KERNELS[type(conv)](conv, x, graph)
