"""Sparse (CSR) kernel for PyG's ``GATConv`` on large graphs, over the layer's own parameters.

PyG's message passing materialises ``[E, H, C]`` tensors (the edge projection ``W_e e`` and the
messages ``alpha * x_j``) and scatters them; with bounded-degree graphs of a few hundred nodes
that traffic, not arithmetic, is the cost. This kernel computes the same layer with:

- the folds of :mod:`rlpipe.agents.gat_common`: node terms of the logits from a ``[F, 2H]``
  matmul, the edge term as ``e · v`` (``[E, H]``, no edge projection);
- a softmax over each target's incoming edges on ``[E, H]`` logits, edges sorted by target
  (CSR rows);
- aggregation as a sparse-times-dense matmul per head (``torch.sparse_csr_tensor @ dense``),
  with its own backward: the features' gradient by the transposed CSR matmul, the attention's by
  a sampled dense-dense product at the edges only (``torch.sparse.sampled_addmm``); no ``[E, C]``
  tensor is made in either direction.

Self-loops, fill values, concat/mean heads, residual and bias as in PyG
(:mod:`rlpipe.agents.dense_gat` lists them). A repeated edge stays two entries of its CSR row,
each with its own attention term, as in PyG. Results agree with the sparse layer to float32
rounding (tests: 1e-5).
"""
from __future__ import annotations

import warnings
from functools import cached_property

import torch
import torch.nn.functional as F
from torch import Tensor
from torch_geometric.nn import GATConv
from torch_geometric.utils import softmax as segment_softmax

from rlpipe.agents.gat_common import (attention_weights, edge_vector, finish, head_projection,
                                      loop_fill, plain_gat)

# torch says CSR support is "beta" once per process: the operations used here are covered by
# this project's tests, so the note is noise in training logs.
warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta state")


class SparseAdjacency:
    """A batch's edges as CSR (rows = targets), with self-loops, made once per batch.

    Args:
        edge_index: [2, E] (source row 0, target row 1).
        edge_attr: [E, D] or None.
        num_nodes: N.

    Shapes:
        - :attr:`crow`: [N + 1]; :attr:`col`: [E'] source of each entry; :attr:`row`: [E'] its
          target (E' = E - input self-loops + N)
        - :meth:`attr`: [E', D] edge features in CSR order, self-loops' filled per the layer
        - :attr:`perm_t`, :attr:`crow_t`, :attr:`col_t`: the transposed CSR (rows = sources),
          entry ``k`` of it being entry ``perm_t[k]`` of this one
    """

    def __init__(self, edge_index: Tensor, edge_attr: Tensor | None, num_nodes: int):
        n = num_nodes
        keep = edge_index[0] != edge_index[1]
        src, dst = edge_index[0, keep], edge_index[1, keep]
        self._edge_attr = None if edge_attr is None else edge_attr[keep]
        self._dst_plain = dst
        loops = torch.arange(n)
        src, dst = torch.cat([src, loops]), torch.cat([dst, loops])
        self.num_nodes = n
        self.num_plain = int(keep.sum())          # entries before the self-loops, input order
        self.order = torch.argsort(dst, stable=True)
        self.col, self.row = src[self.order], dst[self.order]
        self.crow = _offsets(torch.bincount(self.row, minlength=n))
        self.perm_t = torch.argsort(self.col, stable=True)
        self.col_t = self.row[self.perm_t]
        self.crow_t = _offsets(torch.bincount(self.col, minlength=n))
        self._filled: dict[str, Tensor] = {}

    def attr(self, fill_value) -> Tensor:
        """Edge features of every CSR entry, self-loops filled with ``fill_value``: [E', D]."""
        key = repr(fill_value) if not isinstance(fill_value, Tensor) else str(id(fill_value))
        if key not in self._filled:
            ea, n = self._edge_attr, self.num_nodes
            summed = ea.new_zeros(n, ea.shape[1]).index_add_(0, self._dst_plain, ea)
            count = torch.bincount(self._dst_plain, minlength=n)
            loops = loop_fill(summed, count, fill_value, ea.dtype)
            self._filled[key] = torch.cat([ea, loops])[self.order]
        return self._filled[key]

    @cached_property
    def pattern(self) -> Tensor:
        """The CSR pattern (values unused) for sampled products at the edges."""
        return self.csr(torch.zeros(len(self.col)))

    def csr(self, values: Tensor) -> Tensor:
        return torch.sparse_csr_tensor(self.crow, self.col, values, (self.num_nodes,) * 2,
                                       check_invariants=False)

    def csr_t(self, values: Tensor) -> Tensor:
        """The transposed matrix, from values in this CSR's entry order."""
        return torch.sparse_csr_tensor(self.crow_t, self.col_t, values[self.perm_t],
                                       (self.num_nodes,) * 2, check_invariants=False)


def _offsets(counts: Tensor) -> Tensor:
    out = torch.zeros(counts.numel() + 1, dtype=torch.int64)
    torch.cumsum(counts, 0, out=out[1:])
    return out


class _CSRAggregate(torch.autograd.Function):
    """``out[h] = A_h @ feats[h]`` with ``A_h`` the CSR matrix of ``alpha[:, h]``.

    Shapes:
        - alpha: [E', H] (CSR entry order); feats: [H, N, K]
        - output: [H, N, K]
    """

    @staticmethod
    def forward(ctx, alpha: Tensor, feats: Tensor, graph: SparseAdjacency) -> Tensor:
        ctx.graph = graph
        ctx.save_for_backward(alpha, feats)
        return torch.stack([graph.csr(alpha[:, h].contiguous()) @ feats[h]
                            for h in range(alpha.shape[1])])

    @staticmethod
    def backward(ctx, grad: Tensor):
        alpha, feats = ctx.saved_tensors
        graph, heads = ctx.graph, alpha.shape[1]
        grad = grad.contiguous()
        grad_alpha = grad_feats = None
        if ctx.needs_input_grad[0]:   # d out[i] / d a_ij = feats[j]: a product at the edges only
            grad_alpha = torch.stack([
                torch.sparse.sampled_addmm(graph.pattern, grad[h], feats[h].t(), beta=0.0).values()
                for h in range(heads)], dim=1)
        if ctx.needs_input_grad[1]:
            grad_feats = torch.stack([graph.csr_t(alpha[:, h].contiguous()) @ grad[h]
                                      for h in range(heads)])
        return grad_alpha, grad_feats, None


def sparse_gat_conv(conv: GATConv, x: Tensor, graph: SparseAdjacency) -> tuple[Tensor, Tensor]:
    r"""``GATConv`` over a CSR batch graph, with ``conv``'s parameters.

    Args:
        conv: a ``GATConv`` (``in_channels`` an int, ``add_self_loops=True``).
        x: node features.
        graph: the batch's edges (:class:`SparseAdjacency`).

    Shapes:
        - input: x [N, F]
        - output: (out [N, H * C] or [N, C] with ``concat=False``, alpha [E', H] in CSR entry
          order: entry k is the edge ``graph.col[k] -> graph.row[k]``)
    """
    n, f = x.shape
    h, c = conv.heads, conv.out_channels
    a = x @ attention_weights(conv).t()                                  # [N, 2H]
    logits = a[graph.col, :h] + a[graph.row, h:]                         # [E', H]
    if graph._edge_attr is not None:
        v = edge_vector(conv, graph._edge_attr.shape[1])
        if v is not None:
            logits = logits + graph.attr(conv.fill_value) @ v.t()
    logits = F.leaky_relu(logits, conv.negative_slope)
    alpha = segment_softmax(logits, ptr=graph.crow, dim=0)
    alpha = F.dropout(alpha, p=conv.dropout, training=conv.training)
    if f < c:   # aggregate the F input channels per head, then project (gat_common)
        z = _CSRAggregate.apply(alpha, x.expand(h, n, f), graph)         # [H, N, F]
        out = z.permute(1, 0, 2).reshape(n, h * f) @ head_projection(conv).t()
    else:
        xw = (x @ conv.lin.weight.t()).view(n, h, c).transpose(0, 1).contiguous()   # [H, N, C]
        out = _CSRAggregate.apply(alpha, xw, graph)                      # [H, N, C]
        out = out.transpose(0, 1).reshape(n, h * c) if conv.concat else out.mean(0)
    return finish(conv, out, x), alpha


#: Layer class -> its CSR kernel (same signature as :func:`sparse_gat_conv`).
SPARSE_KERNELS = {GATConv: sparse_gat_conv}


def supports_sparse(conv) -> bool:
    """True when ``conv``'s configuration is one the CSR kernels reproduce."""
    return type(conv) in SPARSE_KERNELS and plain_gat(conv)


def sparse_conv(conv, x: Tensor, graph: SparseAdjacency) -> tuple[Tensor, Tensor]:
    """Run ``conv``'s registered CSR kernel (see :data:`SPARSE_KERNELS`)."""
    return SPARSE_KERNELS[type(conv)](conv, x, graph)
