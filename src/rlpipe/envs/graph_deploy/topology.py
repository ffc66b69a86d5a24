"""The edge/cloud network of ``rlpipe/GraphDeploy-v0``, drawn anew every episode.

``num_edge`` *edge* nodes uniform in the unit square, linked when closer than the connection
radius (:func:`link_radius`) and along a Euclidean minimum spanning tree (always connected), link
latency ``100 ms * distance + 1 ms``; each of the ``num_cloud`` *cloud* nodes is linked to one or
two random edge gateways with latency uniform in 40-60 ms. Edge nodes have cpu and memory
capacity uniform in ``[0.5, 1.0]``, cloud nodes 8.0. Node order: edge nodes first, then the cloud
nodes (the last indices), drawn at ``x = 1.3`` (right of the square).

Pure numpy; the caller passes the random generator, so the environment's ``np_random`` decides
everything.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from rlpipe.envs.graph_algorithms import euclidean_mst

__all__ = ["Network", "draw_network", "link_radius"]

EDGE_LATENCY_PER_UNIT = 100.0   # ms per unit of Euclidean distance between edge nodes
EDGE_LATENCY_BASE = 1.0         # ms added to every edge-edge link
CLOUD_LATENCY = (40.0, 60.0)    # ms, uniform, of each cloud-gateway link
EDGE_CAPACITY = (0.5, 1.0)      # uniform cpu and memory capacity of edge nodes
CLOUD_CAPACITY = 8.0            # cpu and memory capacity of cloud nodes
CLOUD_X = 1.3                   # drawing position of cloud nodes: x = 1.3, y spread over [0, 1]


def link_radius(edge_radius: float, radius_nodes: int, num_nodes: int) -> float:
    """Connection radius of a ``num_nodes`` graph: ``edge_radius`` up to ``radius_nodes`` nodes
    (exactly: no arithmetic on it), ``edge_radius * sqrt(radius_nodes / num_nodes)`` above;
    ``radius_nodes = 0`` keeps ``edge_radius`` at every size."""
    if radius_nodes <= 0 or num_nodes <= radius_nodes:
        return edge_radius
    return edge_radius * math.sqrt(radius_nodes / num_nodes)


@dataclass(frozen=True)
class Network:
    """One episode's network (``N`` nodes, ``E`` undirected links)."""

    positions: np.ndarray   # float64 [N, 2], drawing positions
    pairs: np.ndarray       # int64 [E, 2], links (u, v), u < v: edge-edge links, then cloud links
    latency: np.ndarray     # float64 [E], link latency in ms
    cpu_cap: np.ndarray     # float64 [N]
    mem_cap: np.ndarray     # float64 [N]


def draw_network(rng: np.random.Generator, num_edge: int, num_cloud: int, radius: float
                 ) -> Network:
    """Draw a network from ``rng`` (the module docstring describes it)."""
    ne, nc, n = num_edge, num_cloud, num_edge + num_cloud
    pos_e = rng.uniform(0.0, 1.0, size=(ne, 2))
    diff = pos_e[:, None, :] - pos_e[None, :, :]
    dist = np.sqrt(np.einsum("ijk,ijk->ij", diff, diff))
    adj = dist <= radius
    mst = euclidean_mst(dist)
    adj[mst[:, 0], mst[:, 1]] = True
    iu, ju = np.nonzero(np.triu(adj, 1))
    edge_pairs = np.stack([iu, ju], axis=1).astype(np.int64)
    edge_lat = EDGE_LATENCY_PER_UNIT * dist[iu, ju] + EDGE_LATENCY_BASE

    cpu_cap = np.full(n, CLOUD_CAPACITY)
    mem_cap = np.full(n, CLOUD_CAPACITY)
    cpu_cap[:ne] = rng.uniform(*EDGE_CAPACITY, size=ne)
    mem_cap[:ne] = rng.uniform(*EDGE_CAPACITY, size=ne)

    cloud_pairs, cloud_lat = [], []
    for c in range(nc):
        k = min(int(rng.integers(1, 3)), ne)
        gws = np.sort(rng.choice(ne, size=k, replace=False))
        lats = rng.uniform(*CLOUD_LATENCY, size=k)
        for g, lat in zip(gws, lats):
            cloud_pairs.append((int(g), ne + c))
            cloud_lat.append(float(lat))
    pairs = np.concatenate([edge_pairs, np.asarray(cloud_pairs, dtype=np.int64).reshape(-1, 2)])
    latency = np.concatenate([edge_lat, np.asarray(cloud_lat, dtype=np.float64)])

    pos = np.empty((n, 2))
    pos[:ne] = pos_e
    pos[ne:, 0] = CLOUD_X
    pos[ne:, 1] = (np.arange(nc) + 1.0) / (nc + 1.0)
    return Network(pos, pairs, latency, cpu_cap, mem_cap)
