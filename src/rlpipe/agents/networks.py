"""Actor and critic networks for graph observations: graph attention (GAT). The MLP ones for
flat observations are in :mod:`rlpipe.agents.mlp`, which needs no torch_geometric.

Networks return raw tensors (logits, values); turning them into a policy distribution is the job
of :mod:`rlpipe.agents.policy`. Nothing here knows about logging or files.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch_geometric.nn import (GATConv, GATv2Conv, TransformerConv, global_max_pool,
                                global_mean_pool)
from torch_geometric.utils import to_dense_batch

from rlpipe.agents.dense_gat import dense_conv, supports_dense
from rlpipe.agents.graph import DenseGraphs, GraphBatch
from rlpipe.agents.mlp import mlp as _mlp
from rlpipe.agents.sparse_gat import SparseAdjacency, sparse_conv, supports_sparse


#: Message-passing layer kinds of ``agent.conv``. ``gat``: PyG ``GATConv``, the edge features
#: enter the attention logits only; ``gatv2``: ``GATv2Conv`` (dynamic attention), edge features in
#: the logits only; ``transformer``: ``TransformerConv``, edge features added to the keys *and* to
#: the messages (values), so what a neighbour sends depends on the link it crosses.
CONV_KINDS = ("gat", "gatv2", "transformer")


def _conv(kind: str, in_dim: int, out_dim: int, heads: int, concat: bool, edge_dim: int,
          dropout: float) -> nn.Module:
    if kind == "gat":
        return GATConv(in_dim, out_dim, heads=heads, concat=concat, edge_dim=edge_dim,
                       dropout=dropout, add_self_loops=True)
    if kind == "gatv2":
        return GATv2Conv(in_dim, out_dim, heads=heads, concat=concat, edge_dim=edge_dim,
                         dropout=dropout, add_self_loops=True)
    if kind == "transformer":  # no self-loops: its root weight carries the node's own state
        return TransformerConv(in_dim, out_dim, heads=heads, concat=concat, edge_dim=edge_dim,
                               dropout=dropout, root_weight=True)
    raise ValueError(f"unknown conv kind {kind!r} (expected one of {', '.join(CONV_KINDS)})")


class GATEncoder(nn.Module):
    r"""A stack of multi-head attention message-passing layers with ELU activations.

    Hidden layers concatenate their heads (width ``hidden_dim * heads``); the last layer averages
    its heads (width ``hidden_dim``). Edge features enter every layer (how: :data:`CONV_KINDS`).

    With ``layers=0`` there is no message passing (the ablation): each node is embedded by a
    per-node MLP of the same widths (``in_dim -> hidden_dim * heads -> hidden_dim``, ELU), from
    its own features only; the attention list is then empty.

    Three ways to run the same parameters, equal to float32 rounding: :meth:`forward` is the
    layers' own (PyG message passing: the reference); :meth:`forward_dense` runs
    :mod:`rlpipe.agents.dense_gat`'s kernels on padded ``[B, N, N]`` graphs (small graphs);
    :meth:`forward_sparse` runs :mod:`rlpipe.agents.sparse_gat`'s CSR kernels (large graphs).
    :meth:`encode` picks one for a :class:`GraphBatch` (:meth:`path`); a layer kind without a
    kernel (``transformer``; ``gatv2`` has no CSR kernel) runs PyG's layers.

    Args:
        in_dim: node feature size F.
        hidden_dim: channels per head.
        heads: attention heads per layer.
        layers: number of message-passing layers (>= 0).
        edge_dim: edge feature size.
        dropout: attention dropout.
        conv: layer kind, one of :data:`CONV_KINDS`.

    Shapes:
        - input: x [N, F], edge_index [2, E], edge_attr [E, edge_dim]
        - output: node embeddings [N, hidden_dim]; with ``return_attention=True`` also a list with
          one ``(edge_index [2, M], alpha [M, heads])`` per layer: ``M = E + N`` for ``gat`` and
          ``gatv2`` (self-loops added), ``M = E`` for ``transformer``; ``[]`` when ``layers=0``.
        - :meth:`forward_dense`: :class:`DenseGraphs` -> [B, N_max, hidden_dim] (and a list of
          alpha [B, heads, N_max(target), N_max(source)] per layer)
    """

    def __init__(self, in_dim: int, hidden_dim: int, heads: int, layers: int,
                 edge_dim: int = 1, dropout: float = 0.0, conv: str = "gat"):
        super().__init__()
        self.convs = nn.ModuleList()
        dim = in_dim
        for i in range(layers):
            last = i == layers - 1
            self.convs.append(_conv(conv, dim, hidden_dim, heads, not last, edge_dim, dropout))
            dim = hidden_dim if last else hidden_dim * heads
        # the ablation's per-node encoder (absent when there is message passing: same weights)
        self.node_mlp = None if layers else _mlp([in_dim, hidden_dim * heads, hidden_dim], act=nn.ELU)
        self.out_dim = hidden_dim
        self.act = nn.ELU()
        #: False runs the layers' own forward on every batch (the reference; for comparisons).
        self.use_kernels = True

    def path(self, g: GraphBatch) -> str:
        """``"dense"`` when the batch has a dense view and every layer a dense kernel,
        ``"sparse"`` when every layer has a CSR kernel, else ``"pyg"`` (the layers' own forward;
        also the ``layers=0`` ablation)."""
        if not self.use_kernels or self.node_mlp is not None:
            return "pyg"
        if g.dense is not None and all(supports_dense(conv) for conv in self.convs):
            return "dense"
        if all(supports_sparse(conv) for conv in self.convs):
            return "sparse"
        return "pyg"

    def forward(self, x: torch.Tensor, edge_index: torch.Tensor, edge_attr: torch.Tensor,
                return_attention: bool = False):
        attention = []
        if self.node_mlp is not None:
            h = self.act(self.node_mlp(x))
            return (h, attention) if return_attention else h
        h = x
        for conv in self.convs:
            if return_attention:
                h, (ei, alpha) = conv(h, edge_index, edge_attr, return_attention_weights=True)
                attention.append((ei, alpha))
            else:
                h = conv(h, edge_index, edge_attr)
            h = self.act(h)
        return (h, attention) if return_attention else h

    def forward_dense(self, d: DenseGraphs, return_attention: bool = False):
        attention = []
        h = d.x
        for conv in self.convs:
            h, alpha = dense_conv(conv, h, d.adjacency)  # mask, self-loops: made once per batch
            h = F.elu(h, self.act.alpha, inplace=True)  # h is the layer's own fresh output
            if return_attention:
                attention.append(alpha)
        return (h, attention) if return_attention else h

    def forward_sparse(self, x: torch.Tensor, graph: SparseAdjacency,
                       return_attention: bool = False):
        attention = []
        h = x
        for conv in self.convs:
            h, alpha = sparse_conv(conv, h, graph)
            h = F.elu(h, self.act.alpha, inplace=True)
            if return_attention:
                attention.append(alpha)
        return (h, attention) if return_attention else h

    def encode(self, g: GraphBatch, return_attention: bool = False):
        """Node embeddings [N_total, hidden_dim] of a batch by its :meth:`path`; attention (if
        asked) in the layout of :meth:`forward` whatever the path."""
        path = self.path(g)
        if path == "pyg":
            return self(g.x, g.edge_index, g.edge_attr, return_attention=return_attention)
        if path == "sparse":
            out = self.forward_sparse(g.x, g.csr, return_attention)
            if not return_attention:
                return out
            h, alphas = out
            return h, [_attention_from_csr(g, alpha) for alpha in alphas]
        out = self.forward_dense(g.dense, return_attention)
        h, alphas = out if return_attention else (out, None)
        h = h[g.dense.mask]
        if not return_attention:
            return h
        return h, [_attention_from_dense(g, alpha) for alpha in alphas]


def _pyg_edges(g: GraphBatch) -> torch.Tensor:
    """The edge_index GATConv attends over: the input's edges without self-loops, then one
    self-loop per node. [2, E' + N_total]"""
    ei = g.edge_index[:, g.edge_index[0] != g.edge_index[1]]
    loops = torch.arange(g.x.shape[0], device=ei.device).expand(2, -1)
    return torch.cat([ei, loops], dim=1)


def _attention_from_dense(g: GraphBatch, alpha: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Dense attention [B, H, N(target), N(source)] in GATConv's layout (edge_index, [E', H])."""
    ei = _pyg_edges(g)
    graph = g.batch[ei[1]]
    base = g.ptr[graph]
    return ei, alpha[graph, :, ei[1] - base, ei[0] - base]


def _attention_from_csr(g: GraphBatch, alpha: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """CSR-ordered attention [E', H] in GATConv's layout (edge_index, [E', H])."""
    out = torch.empty_like(alpha)
    out[g.csr.order] = alpha
    return _pyg_edges(g), out


class GATActor(nn.Module):
    r"""Scores every node of every graph: one logit per node.

    The score head sees the GAT embedding next to the node's own features (a skip connection), so
    a node's own state (feasibility, latency, load) is never washed out by its neighbours.

    Shapes:
        - input: :class:`GraphBatch` with B graphs, N_total nodes, at most N_max per graph
        - output: logits [N_total]; :meth:`padded_logits`: [B, N_max]
    """

    def __init__(self, in_dim: int, hidden_dim: int = 64, heads: int = 4, layers: int = 2,
                 dropout: float = 0.0, edge_dim: int = 1, conv: str = "gat"):
        super().__init__()
        self.encoder = GATEncoder(in_dim, hidden_dim, heads, layers, edge_dim, dropout, conv)
        self.head = _mlp([hidden_dim + in_dim, hidden_dim, 1], act=nn.ELU, last_gain=0.01)

    def embed(self, g: GraphBatch, return_attention: bool = False):
        return self.encoder.encode(g, return_attention=return_attention)

    def forward(self, g: GraphBatch) -> torch.Tensor:
        if self.encoder.path(g) == "dense":
            return self._dense_scores(g.dense)[g.dense.mask]
        h = self.embed(g)
        return self.head(torch.cat([h, g.x], dim=-1)).squeeze(-1)

    def padded_logits(self, g: GraphBatch, fill: float) -> torch.Tensor:
        """Logits per graph, padded with ``fill`` past each graph's last node: [B, N_max]."""
        if self.encoder.path(g) == "dense":
            return self._dense_scores(g.dense).masked_fill(~g.dense.mask, fill)
        logits, _ = to_dense_batch(self(g), g.batch, fill_value=fill, batch_size=g.num_graphs)
        return logits

    def _dense_scores(self, d: DenseGraphs) -> torch.Tensor:
        h = self.encoder.forward_dense(d)
        return self.head(torch.cat([h, d.x], dim=-1)).squeeze(-1)


class GATCritic(nn.Module):
    r"""State value of each graph: a separate GAT encoder, mean+max pooling, an MLP.

    Shapes:
        - input: :class:`GraphBatch` with B graphs
        - output: values [B]
    """

    def __init__(self, in_dim: int, hidden_dim: int = 64, heads: int = 4, layers: int = 2,
                 dropout: float = 0.0, edge_dim: int = 1, conv: str = "gat"):
        super().__init__()
        self.encoder = GATEncoder(in_dim, hidden_dim, heads, layers, edge_dim, dropout, conv)
        self.head = _mlp([2 * hidden_dim, hidden_dim, 1], act=nn.ELU, last_gain=1.0)

    def forward(self, g: GraphBatch) -> torch.Tensor:
        if self.encoder.path(g) == "dense":
            d = g.dense
            h = self.encoder.forward_dense(d)
            mask = d.mask.unsqueeze(-1)
            mean = (h * mask).sum(1) / mask.sum(1).clamp(min=1)
            pooled = torch.cat([mean, h.masked_fill(~mask, float("-inf")).amax(1)], -1)
        else:
            h = self.encoder.encode(g)
            size = g.num_graphs
            pooled = torch.cat([global_mean_pool(h, g.batch, size),
                                global_max_pool(h, g.batch, size)], -1)
        return self.head(pooled).squeeze(-1)
