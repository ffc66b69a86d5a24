"""What the fast GAT kernels (:mod:`~rlpipe.agents.dense_gat`, :mod:`~rlpipe.agents.sparse_gat`)
share: the self-loop rule, the folded attention and edge vectors, the head projection, the
bias. All functions read a PyG layer's own parameters; none holds weights.

The folds are exact algebra, so the kernels compute what the layer computes up to float32
rounding:

- ``a_src · (W_h x) = (W_h^T a_src) · x``: both node terms of the logits come from one
  ``[F, 2H]`` matmul (:func:`attention_weights`);
- GATConv's edge term ``a_edge · (W_e e)`` is linear in ``e``: ``e · v`` with
  ``v[h] = W_e[h]^T a_edge[h]`` (``[H, D]``, :func:`edge_vector`), so no ``[E, H, C]`` edge
  projection is ever made;
- ``sum_j a_ij (W_h x_j) = W_h (sum_j a_ij x_j)``: when the input is narrower than a head, messages
  are aggregated first and projected after (:func:`head_projection`).
"""
from __future__ import annotations

import torch
from torch import Tensor
from torch_geometric.nn import GATConv, GATv2Conv

#: Fill values of ``add_self_loops`` the kernels implement.
FILL_REDUCTIONS = ("mean", "add")


def supports_fill(conv) -> bool:
    """True when the layer adds self-loops with a fill value the kernels implement."""
    if not conv.add_self_loops:
        return False
    fill = conv.fill_value
    return (isinstance(fill, (int, float, Tensor)) and not isinstance(fill, bool)) or \
        fill in FILL_REDUCTIONS


def plain_gat(conv) -> bool:
    """A ``GATConv``/``GATv2Conv`` over one node set (not bipartite) that the kernels reproduce."""
    if isinstance(conv, GATConv) and conv.lin is None:
        return False
    if isinstance(conv, GATv2Conv) and not isinstance(conv.in_channels, int):
        return False
    return supports_fill(conv)


def loop_fill(summed: Tensor, count: Tensor, fill_value, dtype: torch.dtype) -> Tensor:
    """Self-loop attributes from each node's incoming attribute sum and count (``'mean'``: the
    mean, 0 without incoming edges; ``'add'``: the sum; a number or tensor: that value).

    Shapes:
        - summed: [..., N, D]; count: [..., N]
        - output: [..., N, D]
    """
    if isinstance(fill_value, str):
        if fill_value == "add":
            return summed
        return summed / count.unsqueeze(-1).clamp(min=1).to(dtype)
    if isinstance(fill_value, Tensor):
        return fill_value.to(dtype).expand(summed.shape)
    return summed.new_full(summed.shape, float(fill_value))


def attention_weights(conv: GATConv) -> Tensor:
    """Rows ``W_h^T a_src[h]`` then ``W_h^T a_dst[h]``: ``x @ w.t()`` gives ``[.., 2H]`` logit terms.

    Shapes:
        - output: [2H, F]
    """
    h, c = conv.heads, conv.out_channels
    wv = conv.lin.weight.view(h, c, -1)
    return torch.cat([(wv * conv.att_src.view(h, c, 1)).sum(1),
                      (wv * conv.att_dst.view(h, c, 1)).sum(1)], 0)


def edge_vector(conv: GATConv, edge_dim: int) -> Tensor | None:
    """``v[h] = W_e[h]^T a_edge[h]``: the edge term of head ``h`` is ``e · v[h]``; None without
    edge features.

    Shapes:
        - output: [H, D]
    """
    if conv.lin_edge is None:
        return None
    h, c = conv.heads, conv.out_channels
    return (conv.lin_edge.weight.view(h, c, edge_dim) * conv.att_edge.view(h, c, 1)).sum(1)


def head_projection(conv: GATConv) -> Tensor:
    """Weights that project messages aggregated per head over the raw ``F`` input channels,
    laid out ``[..., (H, F)]``, to the layer's output: block-diagonal ``W_h`` for concatenated
    heads, the heads' ``W_h / H`` side by side for averaged ones.

    Shapes:
        - output: [H*C, H*F] (concat) or [C, H*F] (mean)
    """
    h, c = conv.heads, conv.out_channels
    wv = conv.lin.weight.view(h, c, -1)
    if conv.concat:
        return torch.block_diag(*wv.unbind(0))
    return wv.permute(1, 0, 2).reshape(c, -1) / h


def finish(conv, out: Tensor, x: Tensor) -> Tensor:
    """Residual and bias on the combined heads (``out`` is a fresh tensor: bias added in place)."""
    if conv.res is not None:
        out = out + conv.res(x)
    if conv.bias is not None:
        out = out.add_(conv.bias)
    return out
