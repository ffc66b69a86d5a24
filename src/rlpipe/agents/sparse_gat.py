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
        - :attr:`transposed`: (crow_t [N + 1], perm_t [E']): rows = sources, entry t of the
          transposed matrix being entry ``perm_t[t]`` of this one (made when a backward needs it)
    """

    def __init__(self, edge_index: Tensor, edge_attr: Tensor | None, num_nodes: int):
        n = num_nodes
        keep = edge_index[0] != edge_index[1]
        src, dst = edge_index[0, keep], edge_index[1, keep]
        self.edge_attr = None if edge_attr is None else edge_attr[keep]
        self._dst_plain = dst
        loops = torch.arange(n, device=edge_index.device)
        src, dst = torch.cat([src, loops]), torch.cat([dst, loops])
        self.num_nodes = n
        self.order = torch.argsort(dst, stable=True)
        self.col, self.row = src[self.order], dst[self.order]
        self.crow = _offsets(torch.bincount(self.row, minlength=n))
        self._filled: dict[str, Tensor] = {}
        self._heads: dict[tuple[int, bool], _HeadCSR] = {}
        self._transposed: tuple[Tensor, Tensor] | None = None

    def attr(self, fill_value) -> Tensor:
        """Edge features of every CSR entry, self-loops filled with ``fill_value``: [E', D]."""
        key = repr(fill_value) if not isinstance(fill_value, Tensor) else str(id(fill_value))
        if key not in self._filled:
            ea, n = self.edge_attr, self.num_nodes
            summed = ea.new_zeros(n, ea.shape[1]).index_add_(0, self._dst_plain, ea)
            count = torch.bincount(self._dst_plain, minlength=n)
            loops = loop_fill(summed, count, fill_value, ea.dtype)
            self._filled[key] = torch.cat([ea, loops]).index_select(0, self.order)
        return self._filled[key]

    @property
    def transposed(self) -> tuple[Tensor, Tensor]:
        if self._transposed is None:
            perm_t = torch.argsort(self.col, stable=True)
            self._transposed = (_offsets(torch.bincount(self.col, minlength=self.num_nodes)), perm_t)
        return self._transposed

    def heads(self, heads: int, shared: bool) -> "_HeadCSR":
        """The head-block matrix that aggregates all heads in one sparse matmul (cached)."""
        key = (heads, shared)
        if key not in self._heads:
            self._heads[key] = _HeadCSR(self, heads, shared)
        return self._heads[key]


def _offsets(counts: Tensor) -> Tensor:
    out = torch.zeros(counts.numel() + 1, dtype=torch.int64, device=counts.device)
    torch.cumsum(counts, 0, out=out[1:])
    return out


def _csr(crow: Tensor, col: Tensor, values: Tensor, shape: tuple[int, int]) -> Tensor:
    return torch.sparse_csr_tensor(crow, col, values, shape, check_invariants=False)


def _stack_heads(crow: Tensor, cols: Tensor, h: int, num_cols: int, cols_per_head: bool):
    """H copies of a CSR one below the other (rows ``hh*R + r``), columns shifted by
    ``hh*num_cols`` when each head has its own columns: (crow [H*R + 1], col [H*nnz])."""
    nnz = cols.numel()
    shift = torch.arange(h, device=cols.device).unsqueeze(1)
    crow_h = torch.cat([(crow[:-1] + shift * nnz).reshape(-1), crow.new_tensor([h * nnz])])
    col_h = (cols + shift * num_cols).reshape(-1) if cols_per_head else cols.repeat(h)
    return crow_h, col_h


class _HeadCSR:
    r"""All heads' attention as one CSR matrix, so one sparse matmul aggregates every head.

    Head-major: row ``h*N + i`` holds head ``h`` of target ``i``, with entries ``alpha[k, h]``
    for the target's CSR entries ``k`` in column ``h*N + j`` (per-head features, ``[H*N, K]``)
    or ``j`` (features shared by the heads, ``[N, K]``). The matrix is H shifted copies of the
    batch's CSR and its values are ``alpha.t()`` as laid out, so building it takes no index
    arithmetic over the entries; the product is ``[H*N, K]``.
    """

    def __init__(self, graph: SparseAdjacency, heads: int, shared: bool):
        n, h = graph.num_nodes, heads
        self.graph, self.heads, self.shared = graph, heads, shared
        self.rows, self.cols = n * h, n if shared else n * h
        self.crow, self.col = _stack_heads(graph.crow, graph.col, h, n, not shared)
        self.pattern = _csr(self.crow, self.col, torch.zeros(self.col.numel(), device=self.col.device),
                            (self.rows, self.cols))
        self._t: tuple[Tensor, Tensor] | None = None

    def matrix(self, alpha: Tensor) -> Tensor:
        return _csr(self.crow, self.col, alpha.t().reshape(-1), (self.rows, self.cols))

    def matrix_t(self, alpha: Tensor) -> Tensor:
        """The transposed matrix: rows ``h*N + j`` (per-head) or ``j`` (shared) per source."""
        crow_t, perm_t = self.graph.transposed
        n, h = self.graph.num_nodes, self.heads
        if self._t is None:
            targets = self.graph.row[perm_t]
            if self.shared:   # [N, H*N]: each entry of source row j once per head, heads inner
                heads = torch.arange(h, device=targets.device) * n
                self._t = (crow_t * h, (targets.unsqueeze(1) + heads).reshape(-1))
            else:             # [H*N, H*N]: H shifted copies of the transposed CSR
                self._t = _stack_heads(crow_t, targets, h, n, True)
        crow, col = self._t
        values = alpha.index_select(0, perm_t)                  # [E', H] in transposed order
        values = values.reshape(-1) if self.shared else values.t().reshape(-1)
        return _csr(crow, col, values, (self.cols, self.rows))


class _CSRAggregate(torch.autograd.Function):
    """``out = A @ feats``, ``A`` the :class:`_HeadCSR` matrix of ``alpha``.

    Shapes:
        - alpha: [E', H] (CSR entry order); feats: [H*N, K] (per head) or [N, K] (shared)
        - output: [H*N, K] (row ``h*N + i``: head h of node i)
    """

    @staticmethod
    def forward(ctx, alpha: Tensor, feats: Tensor, block: _HeadCSR) -> Tensor:
        ctx.block = block
        ctx.save_for_backward(alpha, feats)
        return _spmm(block.matrix(alpha), feats)

    @staticmethod
    def backward(ctx, grad: Tensor):
        alpha, feats = ctx.saved_tensors
        block = ctx.block
        grad = grad.contiguous()
        grad_alpha = grad_feats = None
        if ctx.needs_input_grad[0]:   # d out[r] / d A[r, q] = feats[q]: products at entries only
            values = torch.sparse.sampled_addmm(block.pattern, grad, feats.t(), beta=0.0).values()
            grad_alpha = values.view(alpha.shape[1], alpha.shape[0]).t()   # head-major -> [E', H]
        if ctx.needs_input_grad[1]:
            grad_feats = _spmm(block.matrix_t(alpha), grad)
        return grad_alpha, grad_feats, None


def _spmm(matrix: Tensor, dense: Tensor) -> Tensor:
    """CSR @ dense (row-major ``dense``: the layout the CPU kernel reads fastest)."""
    return matrix @ dense.contiguous()


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
    if f < c:
        a, xw = x @ attention_weights(conv).t(), None                   # [N, 2H]
    else:   # one matmul for the logit terms and the features
        a, xw = (x @ torch.cat([attention_weights(conv), conv.lin.weight]).t()).split(
            [2 * h, h * c], dim=-1)
    a_src, a_dst = a.split([h, h], dim=-1)
    logits = a_src.index_select(0, graph.col) + a_dst.index_select(0, graph.row)   # [E', H]
    if graph.edge_attr is not None:
        v = edge_vector(conv, graph.edge_attr.shape[1])
        if v is not None:
            logits = logits + graph.attr(conv.fill_value) @ v.t()
    logits = F.leaky_relu(logits, conv.negative_slope)
    alpha = segment_softmax(logits, ptr=graph.crow, dim=0)
    alpha = F.dropout(alpha, p=conv.dropout, training=conv.training)
    if f < c:   # aggregate the F input channels per head, then project (gat_common)
        z = _CSRAggregate.apply(alpha, x, graph.heads(h, shared=True))   # [H*N, F]
        out = z.view(h, n, f).transpose(0, 1).reshape(n, h * f) @ head_projection(conv).t()
    else:
        xw = xw.reshape(n, h, c).transpose(0, 1).reshape(h * n, c)     # head-major [H*N, C]
        out = _CSRAggregate.apply(alpha, xw, graph.heads(h, shared=False)).view(h, n, c)
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
