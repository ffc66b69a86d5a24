"""Graph algorithms the built-in environments share: a Euclidean minimum spanning tree and
shortest-path lengths. One implementation of each in the package.

Pure numpy functions (scipy for shortest paths when it is installed); they run in the training
hot loop, at every episode's reset.
"""
from __future__ import annotations

import numpy as np

try:  # scipy comes with scikit-learn; a pure numpy Floyd-Warshall is the fallback
    from scipy.sparse import csr_matrix as _csr_matrix
    from scipy.sparse.csgraph import shortest_path as _shortest_path
except ImportError:  # pragma: no cover - exercised only without scipy
    _csr_matrix = None
    _shortest_path = None

__all__ = ["euclidean_mst", "shortest_rows"]


def euclidean_mst(dist: np.ndarray) -> np.ndarray:
    """Prim's algorithm on a dense distance matrix; returns ``[n-1, 2]`` pairs ``(u < v)``."""
    n = dist.shape[0]
    if n <= 1:
        return np.zeros((0, 2), dtype=np.int64)
    in_tree = np.zeros(n, dtype=bool)
    in_tree[0] = True
    best = dist[0].copy()
    best[0] = np.inf
    parent = np.zeros(n, dtype=np.int64)
    pairs = np.empty((n - 1, 2), dtype=np.int64)
    for k in range(n - 1):
        j = int(np.argmin(best))
        pairs[k] = (min(parent[j], j), max(parent[j], j))
        in_tree[j] = True
        best[j] = np.inf
        upd = (dist[j] < best) & ~in_tree
        best[upd] = dist[j][upd]
        parent[upd] = j
    return pairs


def shortest_rows(n: int, pairs: np.ndarray, weights: np.ndarray, sources: np.ndarray
                  ) -> np.ndarray:
    """Shortest-path lengths from each of ``sources`` to all ``n`` nodes (undirected graph).

    Shapes:
        - **input:** pairs :math:`[E, 2]`, weights :math:`[E]`, sources :math:`[S]`
        - **output:** :math:`[S, n]`
    """
    if _shortest_path is not None:
        m = _csr_matrix((weights, (pairs[:, 0], pairs[:, 1])), shape=(n, n))
        return np.asarray(_shortest_path(m, method="D", directed=False, indices=sources),
                          dtype=np.float64).reshape(len(sources), n)
    d = np.full((n, n), np.inf)
    np.fill_diagonal(d, 0.0)
    d[pairs[:, 0], pairs[:, 1]] = np.minimum(d[pairs[:, 0], pairs[:, 1]], weights)
    d[pairs[:, 1], pairs[:, 0]] = d[pairs[:, 0], pairs[:, 1]]
    for k in range(n):  # Floyd-Warshall, O(n^3) vectorised per pivot
        np.minimum(d, d[:, k:k + 1] + d[k:k + 1, :], out=d)
    return d[sources]
