"""Sparse (CSR) kernel for PyG's ``GATConv`` on large graphs, over the layer's own parameters.

PyG's message passing materialises ``[E, H, C]`` tensors (the edge projection ``W_e e`` and the
messages ``alpha * x_j``) and scatters them; with bounded-degree graphs of a few hundred nodes
that traffic, not arithmetic, is the cost. This kernel computes the same layer with:

- the folds of :mod:`rlpipe.agents.gat_common`: node terms of the logits from a ``[F, 2H]``
  matmul, the edge term as ``e · v`` (``[E, H]``, no edge projection);
- a softmax over each target's incoming edges on ``[E, H]`` logits, edges sorted by target
  (CSR rows);
- aggregation of all heads as one sparse-times-dense matmul (``torch.sparse_csr_tensor @
  dense`` over a head-block matrix, :class:`_HeadCSR`), with its own backward: the features'
  gradient by the transposed matmul, the attention's by a sampled dense-dense product at the
  edges only (``torch.sparse.sampled_addmm``); no ``[E, C]`` tensor is made in either
  direction.

Self-loops, fill values, concat/mean heads, residual and bias as in PyG
(:mod:`rlpipe.agents.dense_gat` lists them). A repeated edge stays two entries of its CSR row,
each with its own attention term, as in PyG. Results agree with the sparse layer to float32
rounding (tests: 1e-5).
"""
from __future__ import annotations

import warnings

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
        - :attr:`order`: [E'], entry k is edge ``order[k]`` of the input's edges without
          self-loops followed by one self-loop per node (GATConv's own edge order)
        - :meth:`attr`: [E', D] edge features in CSR order, self-loops' filled per the layer
    """

    def __init__(self, edge_index: Tensor, edge_attr: Tensor | None, num_nodes: int):
        n = num_nodes
        keep = edge_index[0] != edge_index[1]
        src, dst = edge_index[0, keep], edge_index[1, keep]
        self.edge_attr = None if edge_attr is None else edge_attr[keep]
        self._dst_plain = dst
        loops = torch.arange(n)
        src, dst = torch.cat([src, loops]), torch.cat([dst, loops])
        self.num_nodes = n
        self.order = torch.argsort(dst, stable=True)
        self.col, self.row = src[self.order], dst[self.order]
        self.crow = _offsets(torch.bincount(self.row, minlength=n))
        self._filled: dict[str, Tensor] = {}
        self._heads: dict[tuple[int, bool], _HeadCSR] = {}

    def attr(self, fill_value) -> Tensor:
        """Edge features of every CSR entry, self-loops filled with ``fill_value``: [E', D]."""
        key = repr(fill_value) if not isinstance(fill_value, Tensor) else str(id(fill_value))
        if key not in self._filled:
            ea, n = self.edge_attr, self.num_nodes
            summed = ea.new_zeros(n, ea.shape[1]).index_add_(0, self._dst_plain, ea)
            count = torch.bincount(self._dst_plain, minlength=n)
            loops = loop_fill(summed, count, fill_value, ea.dtype)
            self._filled[key] = torch.cat([ea, loops])[self.order]
        return self._filled[key]

    def heads(self, heads: int, shared: bool) -> "_HeadCSR":
        """The head-block matrix that aggregates all heads in one sparse matmul (cached)."""
        key = (heads, shared)
        if key not in self._heads:
            self._heads[key] = _HeadCSR(self, heads, shared)
        return self._heads[key]


def _offsets(counts: Tensor) -> Tensor:
    out = torch.zeros(counts.numel() + 1, dtype=torch.int64)
    torch.cumsum(counts, 0, out=out[1:])
    return out


def _csr(crow: Tensor, col: Tensor, values: Tensor, shape: tuple[int, int]) -> Tensor:
    return torch.sparse_csr_tensor(crow, col, values, shape, check_invariants=False)


class _HeadCSR:
    r"""All heads' attention as one CSR matrix, so one sparse matmul aggregates every head.

    Row ``i*H + h`` holds head ``h`` of target ``i``; its entries are ``alpha[k, h]`` for the
    target's CSR entries ``k``, in column ``j*H + h`` (per-head features ``[N*H, K]``, i.e.
    ``[N, H*K]`` as a projection makes them) or ``j`` (features shared by the heads, ``[N, K]``).
    The product is ``[N*H, K]``: the heads side by side, no transposes.

    Shapes:
        - :attr:`value_index`: [E'*H], entry t of the matrix is ``alpha.view(-1)[value_index[t]]``
        - the transposed matrix: :attr:`crow_t`, :attr:`col_t`; its entry t is entry
          ``perm_t[t]`` of the matrix
    """

    def __init__(self, graph: SparseAdjacency, heads: int, shared: bool):
        n, h = graph.num_nodes, heads
        deg = (graph.crow[1:] - graph.crow[:-1]).repeat_interleave(h)
        self.rows, self.cols = n * h, n if shared else n * h
        self.crow = _offsets(deg)
        row = torch.repeat_interleave(torch.arange(n * h), deg)
        node, head = row // h, row % h
        entry = graph.crow[node] + torch.arange(len(row)) - self.crow[row]
        self.col = graph.col[entry] if shared else graph.col[entry] * h + head
        self.value_index = entry * h + head
        self.perm_t = torch.argsort(self.col, stable=True)
        self.col_t = row[self.perm_t]
        self.crow_t = _offsets(torch.bincount(self.col, minlength=self.cols))
        self.value_index_t = self.value_index[self.perm_t]
        self.pattern = _csr(self.crow, self.col, torch.zeros(len(row)), (self.rows, self.cols))

    def matrix(self, alpha: Tensor) -> Tensor:
        values = alpha.reshape(-1)[self.value_index]
        return _csr(self.crow, self.col, values, (self.rows, self.cols))

    def matrix_t(self, alpha: Tensor) -> Tensor:
        values = alpha.reshape(-1)[self.value_index_t]
        return _csr(self.crow_t, self.col_t, values, (self.cols, self.rows))


class _CSRAggregate(torch.autograd.Function):
    """``out = A @ feats``, ``A`` the :class:`_HeadCSR` matrix of ``alpha``.

    Shapes:
        - alpha: [E', H] (CSR entry order); feats: [N*H, K] (per head) or [N, K] (shared)
        - output: [N*H, K] (row ``i*H + h``: head h of node i)
    """

    @staticmethod
    def forward(ctx, alpha: Tensor, feats: Tensor, block: _HeadCSR) -> Tensor:
        ctx.block = block
        ctx.save_for_backward(alpha, feats)
        return block.matrix(alpha) @ feats

    @staticmethod
    def backward(ctx, grad: Tensor):
        alpha, feats = ctx.saved_tensors
        block = ctx.block
        grad = grad.contiguous()
        grad_alpha = grad_feats = None
        if ctx.needs_input_grad[0]:   # d out[r] / d A[r, q] = feats[q]: products at entries only
            values = torch.sparse.sampled_addmm(block.pattern, grad, feats.t(), beta=0.0).values()
            grad_alpha = torch.empty(alpha.numel(), dtype=values.dtype)
            grad_alpha[block.value_index] = values
            grad_alpha = grad_alpha.view_as(alpha)
        if ctx.needs_input_grad[1]:
            grad_feats = block.matrix_t(alpha) @ grad
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
    if graph.edge_attr is not None:
        v = edge_vector(conv, graph.edge_attr.shape[1])
        if v is not None:
            logits = logits + graph.attr(conv.fill_value) @ v.t()
    logits = F.leaky_relu(logits, conv.negative_slope)
    alpha = segment_softmax(logits, ptr=graph.crow, dim=0)
    alpha = F.dropout(alpha, p=conv.dropout, training=conv.training)
    if f < c:   # aggregate the F input channels per head, then project (gat_common)
        z = _CSRAggregate.apply(alpha, x, graph.heads(h, shared=True))   # [N*H, F]
        out = z.view(n, h * f) @ head_projection(conv).t()
    else:
        xw = (x @ conv.lin.weight.t()).view(n * h, c)                   # [N*H, C]
        out = _CSRAggregate.apply(alpha, xw, graph.heads(h, shared=False)).view(n, h, c)
        out = out.view(n, h * c) if conv.concat else out.mean(1)
    return finish(conv, out, x), alpha


#: Layer class -> its CSR kernel (same signature as :func:`sparse_gat_conv`).
SPARSE_KERNELS = {GATConv: sparse_gat_conv}


def supports_sparse(conv) -> bool:
    """True when ``conv``'s configuration is one the CSR kernels reproduce."""
    return type(conv) in SPARSE_KERNELS and plain_gat(conv)


def sparse_conv(conv, x: Tensor, graph: SparseAdjacency) -> tuple[Tensor, Tensor]:
    """Run ``conv``'s registered CSR kernel (see :data:`SPARSE_KERNELS`)."""
    return SPARSE_KERNELS[type(conv)](conv, x, graph)
