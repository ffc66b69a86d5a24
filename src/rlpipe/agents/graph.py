"""Batching graph observations into one tensor set for a single GNN forward pass.

Observations of the graph environment are ``gymnasium.spaces.GraphInstance`` objects (numpy).
:func:`collate_graphs` concatenates many of them the way ``torch_geometric.data.Batch`` does
(node offsets added to edge indices, a ``batch`` vector mapping nodes to graphs), but straight from
numpy, which is several times cheaper than building ``Data`` objects first.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch


@dataclass(frozen=True)
class GraphBatch:
    """Several graphs as one disconnected graph.

    Shapes:
        - x: [N_total, F] node features
        - edge_index: [2, E_total] (source row 0, target row 1), node indices offset per graph
        - edge_attr: [E_total, D_edge] (a zero column [E_total, 1] for graphs without edge features)
        - batch: [N_total] graph index of every node
        - ptr: [B + 1] node offset of each graph (graph g holds nodes ptr[g]:ptr[g+1])
    """

    x: torch.Tensor
    edge_index: torch.Tensor
    edge_attr: torch.Tensor
    batch: torch.Tensor
    ptr: torch.Tensor

    @property
    def num_graphs(self) -> int:
        return int(self.ptr.numel() - 1)

    def to(self, device: torch.device) -> "GraphBatch":
        """The same batch on ``device`` (itself when it is already there)."""
        if self.x.device == torch.device(device):
            return self
        return GraphBatch(*(t.to(device) for t in (self.x, self.edge_index, self.edge_attr,
                                                    self.batch, self.ptr)))


def collate_graphs(graphs: Sequence) -> GraphBatch:
    """Collate ``GraphInstance``-like objects (``nodes``, ``edges``, ``edge_links`` [E, 2])."""
    sizes = np.fromiter((g.nodes.shape[0] for g in graphs), dtype=np.int64, count=len(graphs))
    ptr = np.zeros(len(graphs) + 1, dtype=np.int64)
    np.cumsum(sizes, out=ptr[1:])
    x = np.concatenate([g.nodes for g in graphs], axis=0)
    links = [g.edge_links + off for g, off in zip(graphs, ptr[:-1])]
    edge_index = np.concatenate(links, axis=0).T if links else np.zeros((2, 0), np.int64)
    edges = [np.asarray(g.edges).reshape(len(g.edge_links), -1) if g.edges is not None
             else np.zeros((len(g.edge_links), 1), np.float32) for g in graphs]
    edge_attr = np.concatenate(edges, axis=0)
    batch = np.repeat(np.arange(len(graphs), dtype=np.int64), sizes)
    return GraphBatch(
        x=torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)),
        edge_index=torch.from_numpy(np.ascontiguousarray(edge_index, dtype=np.int64)),
        edge_attr=torch.from_numpy(np.ascontiguousarray(edge_attr, dtype=np.float32)),
        batch=torch.from_numpy(batch),
        ptr=torch.from_numpy(ptr),
    )
