"""Random network topologies of bounded average degree, and their shortest-path latencies.

:func:`knn_topology` links every node to its ``k`` nearest neighbours (Euclidean, in the unit
square) and adds a Euclidean minimum spanning tree, so the network is always connected and its
average degree stays about ``k + 1`` whatever the number of nodes: a graph twice as large has
the same local density, only more of it.

Pure numpy functions (scipy for shortest paths when it is installed); the caller passes the
random generator, so an environment's ``np_random`` decides everything.
"""
from __future__ import annotations

import numpy as np

from rlpipe.envs.graph_algorithms import euclidean_mst, shortest_rows

__all__ = ["knn_topology", "all_pairs_latency", "undirected_links"]


def knn_topology(positions: np.ndarray, k: int) -> np.ndarray:
    r"""Links of the symmetric ``k``-nearest-neighbour graph plus a Euclidean MST.

    Args:
        positions: node positions.
        k: neighbours each node links to (the graph is made undirected, so degrees are >= k).

    Returns:
        the undirected links ``(u, v), u < v``, int64, in lexicographic order.

    Shapes:
        - **input:** positions :math:`[N, 2]`
        - **output:** :math:`[E, 2]`
    """
    n = positions.shape[0]
    diff = positions[:, None, :] - positions[None, :, :]
    dist = np.sqrt(np.einsum("ijk,ijk->ij", diff, diff))
    adj = np.zeros((n, n), dtype=bool)
    k = min(int(k), n - 1)
    if k > 0:
        far = dist + np.diag(np.full(n, np.inf))  # a node is not its own neighbour
        nearest = np.argsort(far, axis=1, kind="stable")[:, :k]
        adj[np.repeat(np.arange(n), k), nearest.ravel()] = True
    mst = euclidean_mst(dist)
    adj[mst[:, 0], mst[:, 1]] = True
    adj |= adj.T
    iu, ju = np.nonzero(np.triu(adj, 1))
    return np.stack([iu, ju], axis=1).astype(np.int64)


def all_pairs_latency(n: int, pairs: np.ndarray, weights: np.ndarray) -> np.ndarray:
    r"""Shortest-path latency between every two nodes of an undirected graph.

    Shapes:
        - **input:** pairs :math:`[E, 2]`, weights :math:`[E]` (>= 0)
        - **output:** float64 :math:`[N, N]` (``inf`` between disconnected nodes)
    """
    return shortest_rows(n, pairs, np.asarray(weights, dtype=np.float64),
                         np.arange(n, dtype=np.int64))


def undirected_links(pairs: np.ndarray) -> np.ndarray:
    """Both directions of every link: ``pairs`` then ``pairs`` reversed, int64 :math:`[2E, 2]`."""
    return np.ascontiguousarray(np.concatenate([pairs, pairs[:, ::-1]]).astype(np.int64))
