"""The torch modules that ONNX export traces: a trained actor, with the observation normalizer
folded in, as a function from what the environment observes to the action distribution's
parameters.

- :class:`GraphPolicy`: one graph per call. Inputs ``nodes [N, F]`` float32, ``edges [E, D]``
  float32, ``edge_links [E, 2]`` int64 (N and E dynamic); output ``logits [N]``, one per node.
  The graph is scattered into a dense ``[1, N, N]`` adjacency and run through the actor's
  dense attention kernels (:mod:`rlpipe.agents.dense_gat`, the layers' own parameters), which
  trace to plain matmuls and softmaxes with a dynamic N; PyG's scatter-based message passing
  does not export with dynamic sizes. Self-loops of the input are dropped, as the layers do;
  a repeated edge cannot be held by the dense adjacency (:func:`rlpipe.inference` refuses it).
- :class:`FlatPolicy`: a batch of flattened observations ``obs [B, D]`` float32 (B dynamic) to
  ``logits [B, n]`` (Discrete; MultiDiscrete: the components' logits side by side) or
  ``mean [B, D]`` and ``log_std [B, D]`` (Box).

Normalization is computed as :class:`rlpipe.agents.normalize.RunningMeanStd` computes it: in
float64, ``(x - mean) / sqrt(var + eps)`` clipped, then cast to float32, so the exported
policy sees bit-identical inputs.
"""
from __future__ import annotations

import contextlib
from collections.abc import Iterator

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from rlpipe.agents.dense_gat import DenseAdjacency, self_loop_attr
from rlpipe.agents.gat_common import edge_vector
from rlpipe.agents.graph import DenseGraphs
from rlpipe.agents.normalize import ObservationNormalizer
from rlpipe.agents.spaces import BOX


class Normalize(nn.Module):
    """Frozen observation normalization (identity without a normalizer).

    Shapes:
        - input: [..., F] float32 -> output [..., F] float32
    """

    def __init__(self, normalizer: ObservationNormalizer | None):
        super().__init__()
        self.enabled = normalizer is not None
        if self.enabled:
            stats = normalizer.stats
            self.register_buffer("mean", torch.from_numpy(np.asarray(stats.mean, np.float64)))
            self.register_buffer("std", torch.from_numpy(np.sqrt(stats.var + stats.epsilon)))
            self.clip = stats.clip

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.enabled:
            return x
        z = (x.to(torch.float64) - self.mean) / self.std
        return z.clamp(-self.clip, self.clip).to(torch.float32)


class TraceableAdjacency(DenseAdjacency):
    """:class:`~rlpipe.agents.dense_gat.DenseAdjacency` in ops that trace with a dynamic N:
    the identity made as float32 and compared (onnxruntime has no boolean ``EyeLike``), the
    self-loops' features put on the diagonal with ``where`` (an indexed assignment traces to a
    scatter of the example's size). The same values."""

    def __init__(self, adj: torch.Tensor, edge_attr: torch.Tensor):
        self.adj = adj
        self.edge_attr = edge_attr
        eye = torch.eye(adj.shape[-1], dtype=torch.float32) > 0.5
        allowed = (adj | eye).unsqueeze(2)
        self.logit_mask = torch.zeros(allowed.shape, dtype=torch.float32).masked_fill(
            ~allowed, float("-inf"))
        self._filled = {}
        self._eye = eye

    def with_loops(self, fill_value) -> torch.Tensor:
        key = repr(fill_value) if not isinstance(fill_value, torch.Tensor) else str(id(fill_value))
        if key not in self._filled:
            loops = self_loop_attr(self.adj, self.edge_attr, fill_value)      # [B, N, D]
            diagonal = self._eye.unsqueeze(0).unsqueeze(-1)                      # [1, N, N, 1]
            self._filled[key] = torch.where(diagonal, loops.unsqueeze(2), self.edge_attr)
        return self._filled[key]


class GraphPolicy(nn.Module):
    """A graph actor as ``(nodes, edges, edge_links) -> logits`` for one graph (see the module
    docstring). The actor must run the dense path (:func:`dense_ready`)."""

    def __init__(self, actor: nn.Module, normalizer: ObservationNormalizer | None):
        super().__init__()
        self.actor = actor
        self.normalize = Normalize(normalizer)

    def forward(self, nodes: torch.Tensor, edges: torch.Tensor, edge_links: torch.Tensor) -> torch.Tensor:
        x = self.normalize(nodes)
        encoder = self.actor.encoder
        if encoder.node_mlp is not None:  # agent.gat_layers 0: no message passing, no edges
            h = encoder.act(encoder.node_mlp(x))
            return self.actor.head(torch.cat([h, x], dim=-1)).squeeze(-1)
        n = x.shape[0]
        src, dst = edge_links[:, 0], edge_links[:, 1]
        keep = (src != dst).to(torch.float32)               # the layers add their own self-loops
        adj = torch.zeros(n, n, dtype=torch.float32).index_put((src, dst), keep) > 0.5
        attr = torch.zeros(n, n, edges.shape[1], dtype=torch.float32).index_put(
            (src, dst), edges * keep.unsqueeze(-1))
        mask = torch.ones(1, n, dtype=torch.bool)
        dense = DenseGraphs(x=x.unsqueeze(0), adj=adj.unsqueeze(0), edge_attr=attr.unsqueeze(0),
                            mask=mask)
        dense.__dict__["adjacency"] = TraceableAdjacency(dense.adj, dense.edge_attr)
        return self.actor._dense_scores(dense)[0]


class FlatPolicy(nn.Module):
    """An MLP actor as ``obs [B, D] -> logits`` (or ``-> mean, log_std`` for Box actions)."""

    def __init__(self, actor: nn.Module, normalizer: ObservationNormalizer | None, action_kind: str):
        super().__init__()
        self.actor = actor
        self.normalize = Normalize(normalizer)
        self.box = action_kind == BOX

    def forward(self, obs: torch.Tensor):
        out = self.actor(self.normalize(obs))
        if self.box:
            return out, self.actor.log_std.expand_as(out)
        return out


def _head_projection(conv) -> torch.Tensor:
    """:func:`rlpipe.agents.gat_common.head_projection` without ``torch.block_diag`` (which
    has no ONNX symbolic): the block diagonal as ``W[h] * I[h, g]``, the same values."""
    h, c = conv.heads, conv.out_channels
    wv = conv.lin.weight.view(h, c, -1)
    if conv.concat:
        eye = torch.eye(h, dtype=wv.dtype)
        return torch.einsum("hcf,hg->hcgf", wv, eye).reshape(h * c, -1)
    return wv.permute(1, 0, 2).reshape(c, -1) / h


def _attention(conv, a_src: torch.Tensor, a_dst: torch.Tensor, graph: DenseAdjacency) -> torch.Tensor:
    """:func:`rlpipe.agents.dense_gat._attention` (GATConv's attention, ``[B, N(source), H,
    N(target)]``) with the softmax over sources written out: max, exp, sum along axis 1.
    onnxruntime's ``Softmax`` on an inner axis transposes the whole grid twice (two thirds of a
    320-node decision); the reductions run in place. Equal to float32 rounding (the parity
    check). Inference only: no dropout."""
    h = a_src.shape[-1]
    logits = graph.logit_mask.expand(-1, -1, h, -1)                     # [B, N, H, N]
    v = None if graph.edge_attr is None else edge_vector(conv, graph.edge_attr.shape[-1])
    if v is not None:
        e = graph.with_loops(conv.fill_value)                           # [B, N, N, D]
        if v.shape[1] == 1:   # a broadcast product (onnxruntime's Einsum is slow here)
            logits = logits + e[..., 0].unsqueeze(2) * v.view(1, 1, h, 1)
        else:
            logits = logits + (e @ v.t()).transpose(2, 3)              # [B, N, H, N]
    logits = logits + a_src.unsqueeze(-1) + a_dst.transpose(1, 2).unsqueeze(1)
    logits = F.leaky_relu(logits, conv.negative_slope)
    z = (logits - logits.amax(dim=1, keepdim=True)).exp()
    return z / z.sum(dim=1, keepdim=True)


@contextlib.contextmanager
def traceable_kernels() -> Iterator[None]:
    """While tracing: the dense kernels build their weight matrices from ops ONNX has, and
    their attention softmax in the form onnxruntime runs fast (:func:`_attention`)."""
    from rlpipe.agents import dense_gat

    originals = dense_gat.head_projection, dense_gat._attention
    dense_gat.head_projection, dense_gat._attention = _head_projection, _attention
    try:
        yield
    finally:
        dense_gat.head_projection, dense_gat._attention = originals


def dense_ready(actor: nn.Module) -> str | None:
    """None when the graph actor can be exported, else why not (one line)."""
    encoder = actor.encoder
    if encoder.node_mlp is not None:
        return None
    from rlpipe.agents.dense_gat import supports_dense

    for i, conv in enumerate(encoder.convs):
        if not supports_dense(conv):
            return (f"layer {i} is {type(conv).__name__}, which has no dense attention kernel "
                    "(ONNX export traces the dense kernels: agent.conv gat or gatv2)")
    return None
