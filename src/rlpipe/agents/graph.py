"""Batching graph observations into tensors for one GNN forward pass, sparse and dense.

Observations of the graph environments are ``gymnasium.spaces.GraphInstance`` objects (numpy).
:func:`collate_graphs` concatenates many of them the way ``torch_geometric.data.Batch`` does
(node offsets added to edge indices, a ``batch`` vector mapping nodes to graphs), but straight from
numpy, which is several times cheaper than building ``Data`` objects first. For small graphs it
also builds a padded dense view (:class:`DenseGraphs`: ``[B, N, N]`` adjacency and edge features)
for the dense attention kernels of :mod:`rlpipe.agents.dense_gat`; larger batches get their CSR
form on demand (:attr:`GraphBatch.csr`, for :mod:`rlpipe.agents.sparse_gat`).

:meth:`GraphBatch.select` takes some graphs of a batch without going back to numpy, so an update
collates its rollout once and slices a minibatch per step.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Sequence

import numpy as np
import torch

if TYPE_CHECKING:
    from rlpipe.agents.dense_gat import DenseAdjacency
    from rlpipe.agents.sparse_gat import SparseAdjacency


@dataclass(frozen=True)
class DenseGraphs:
    """Graphs padded to the same node count ``N`` (the largest of the batch).

    ``adj[b, j, i]`` is True when graph ``b`` has an edge from source ``j`` to target ``i``
    (rows are sources, as in ``torch_geometric.utils.to_dense_adj``); self-loops of the input
    are left out (the layers add their own). Padding nodes have zero features, no edges and
    ``mask`` False.

    Shapes:
        - x: [B, N, F]
        - adj: [B, N, N] bool
        - edge_attr: [B, N(source), N(target), D] (zero where there is no edge)
        - mask: [B, N] bool, True for real nodes
    """

    x: torch.Tensor
    adj: torch.Tensor
    edge_attr: torch.Tensor
    mask: torch.Tensor

    @cached_property
    def adjacency(self) -> "DenseAdjacency":
        """The attention mask and self-loop features the dense layers share (made once)."""
        from rlpipe.agents.dense_gat import DenseAdjacency

        return DenseAdjacency(self.adj, self.edge_attr)

    def to(self, device: torch.device) -> "DenseGraphs":
        return DenseGraphs(*(t.to(device) for t in (self.x, self.adj, self.edge_attr, self.mask)))

    def select(self, idx: torch.Tensor, num_nodes: int) -> "DenseGraphs":
        """Graphs ``idx`` (in that order), padded to ``num_nodes`` (>= their largest size)."""
        n = num_nodes
        return DenseGraphs(x=self.x[idx, :n], adj=self.adj[idx, :n, :n],
                           edge_attr=self.edge_attr[idx, :n, :n], mask=self.mask[idx, :n])


@dataclass(frozen=True)
class GraphBatch:
    """Several graphs as one disconnected graph, and as a padded dense batch when small.

    Shapes:
        - x: [N_total, F] node features
        - edge_index: [2, E_total] (source row 0, target row 1), node indices offset per graph
        - edge_attr: [E_total, D_edge] (a zero column [E_total, 1] for graphs without edge features)
        - batch: [N_total] graph index of every node
        - ptr: [B + 1] node offset of each graph (graph g holds nodes ptr[g]:ptr[g+1])
        - edge_ptr: [B + 1] edge offset of each graph (its edges are columns
          edge_ptr[g]:edge_ptr[g+1] of edge_index)
        - dense: :class:`DenseGraphs` of the same graphs, or None (the sparse path runs)
    """

    x: torch.Tensor
    edge_index: torch.Tensor
    edge_attr: torch.Tensor
    batch: torch.Tensor
    ptr: torch.Tensor
    edge_ptr: torch.Tensor
    dense: DenseGraphs | None = None

    @property
    def num_graphs(self) -> int:
        return int(self.ptr.numel() - 1)

    def __len__(self) -> int:
        """The number of graphs (a rollout's store is as long as the rollout)."""
        return self.num_graphs

    def to(self, device: torch.device) -> "GraphBatch":
        """The same batch on ``device`` (itself when it is already there)."""
        if self.x.device == torch.device(device):
            return self
        dense = None if self.dense is None else self.dense.to(device)
        return GraphBatch(*(t.to(device) for t in (self.x, self.edge_index, self.edge_attr,
                                                    self.batch, self.ptr, self.edge_ptr)),
                          dense=dense)

    @cached_property
    def csr(self) -> "SparseAdjacency":
        """The edges as CSR with self-loops, for the sparse layers (made once per batch)."""
        from rlpipe.agents.sparse_gat import SparseAdjacency

        return SparseAdjacency(self.edge_index, self.edge_attr, int(self.x.shape[0]))

    def select(self, idx: torch.Tensor) -> "GraphBatch":
        """The graphs ``idx`` (int64 [k], in that order) as a batch of their own.

        The tensors equal those :func:`collate_graphs` makes of the same observations (the dense
        view is kept, cut to the selection's largest graph).
        """
        idx = idx.to(self.ptr.device)
        sizes = self.ptr[1:] - self.ptr[:-1]
        e_sizes = self.edge_ptr[1:] - self.edge_ptr[:-1]
        sel_sizes, sel_e = sizes[idx], e_sizes[idx]
        ptr = _offsets(sel_sizes)
        nodes = _ranges(self.ptr[idx], sel_sizes)
        edges = _ranges(self.edge_ptr[idx], sel_e)
        shift = torch.repeat_interleave(self.ptr[idx] - ptr[:-1], sel_e)
        dense = None
        if self.dense is not None:
            dense = self.dense.select(idx, int(sel_sizes.max()) if len(idx) else 0)
        return GraphBatch(   # index_select: several times faster than indexing with a tensor
            x=self.x.index_select(0, nodes), edge_index=self.edge_index.index_select(1, edges) - shift,
            edge_attr=self.edge_attr.index_select(0, edges),
            batch=torch.repeat_interleave(torch.arange(len(idx), device=idx.device), sel_sizes),
            ptr=ptr, edge_ptr=_offsets(sel_e), dense=dense)


def _offsets(sizes: torch.Tensor) -> torch.Tensor:
    out = torch.zeros(sizes.numel() + 1, dtype=torch.int64, device=sizes.device)
    torch.cumsum(sizes, 0, out=out[1:])
    return out


def _ranges(starts: torch.Tensor, counts: torch.Tensor) -> torch.Tensor:
    """Concatenated ``arange(s, s + c)`` for each start and count (vectorised)."""
    total = int(counts.sum())
    before = torch.cumsum(counts, 0) - counts
    return torch.repeat_interleave(starts - before, counts) + torch.arange(total, device=starts.device)


def collate_graphs(graphs: Sequence, dense_max_nodes: int = 0) -> GraphBatch:
    """Collate ``GraphInstance``-like objects (``nodes``, ``edges``, ``edge_links`` [E, 2]).

    Args:
        graphs: B observations.
        dense_max_nodes: build the dense view when no graph has more nodes than this
            (0: never) and no graph has a repeated edge (an adjacency matrix cannot hold it).
    """
    sizes = np.fromiter((g.nodes.shape[0] for g in graphs), dtype=np.int64, count=len(graphs))
    e_sizes = np.fromiter((len(g.edge_links) for g in graphs), dtype=np.int64, count=len(graphs))
    ptr = np.zeros(len(graphs) + 1, dtype=np.int64)
    np.cumsum(sizes, out=ptr[1:])
    edge_ptr = np.zeros(len(graphs) + 1, dtype=np.int64)
    np.cumsum(e_sizes, out=edge_ptr[1:])
    x = np.ascontiguousarray(np.concatenate([g.nodes for g in graphs], axis=0), dtype=np.float32)
    local_links = (np.concatenate([g.edge_links for g in graphs], axis=0).astype(np.int64, copy=False)
                   if len(graphs) else np.zeros((0, 2), np.int64))
    edge_batch = np.repeat(np.arange(len(graphs), dtype=np.int64), e_sizes)
    edge_index = (local_links + ptr[edge_batch][:, None]).T
    edges = [np.asarray(g.edges).reshape(len(g.edge_links), -1) if g.edges is not None
             else np.zeros((len(g.edge_links), 1), np.float32) for g in graphs]
    edge_attr = np.ascontiguousarray(np.concatenate(edges, axis=0), dtype=np.float32)
    batch = np.repeat(np.arange(len(graphs), dtype=np.int64), sizes)
    dense = None
    if len(graphs) and 0 < sizes.max() <= dense_max_nodes:
        dense = _dense_view(x, edge_attr, local_links, edge_batch, sizes, ptr, batch)
    return GraphBatch(
        x=torch.from_numpy(x),
        edge_index=torch.from_numpy(np.ascontiguousarray(edge_index)),
        edge_attr=torch.from_numpy(edge_attr),
        batch=torch.from_numpy(batch),
        ptr=torch.from_numpy(ptr),
        edge_ptr=torch.from_numpy(edge_ptr),
        dense=dense,
    )


def _dense_view(x: np.ndarray, edge_attr: np.ndarray, local_links: np.ndarray,
                edge_batch: np.ndarray, sizes: np.ndarray, ptr: np.ndarray,
                batch: np.ndarray) -> DenseGraphs | None:
    """The padded view of a collated batch; None when some graph repeats an edge."""
    b, n = len(sizes), int(sizes.max())
    src, dst = local_links[:, 0], local_links[:, 1]
    keep = src != dst
    eb, src, dst, attr = edge_batch[keep], src[keep], dst[keep], edge_attr[keep]
    adj = np.zeros((b, n, n), dtype=bool)
    adj[eb, src, dst] = True
    if int(np.count_nonzero(adj)) != len(eb):
        return None  # a multi-edge: only the sparse layer sums its terms separately
    dense_attr = np.zeros((b, n, n, edge_attr.shape[1]), dtype=np.float32)
    dense_attr[eb, src, dst] = attr
    if np.all(sizes == n):
        xd = x.reshape(b, n, x.shape[1])
        mask = np.ones((b, n), dtype=bool)
    else:
        local = np.arange(len(batch), dtype=np.int64) - ptr[batch]
        xd = np.zeros((b, n, x.shape[1]), dtype=np.float32)
        xd[batch, local] = x
        mask = np.zeros((b, n), dtype=bool)
        mask[batch, local] = True
    return DenseGraphs(x=torch.from_numpy(xd), adj=torch.from_numpy(adj),
                       edge_attr=torch.from_numpy(dense_attr), mask=torch.from_numpy(mask))
