"""The reference decision set of the service-chain environment: pure numpy functions.

A service of a chain must go on a node of its required kind with a free slot (*feasible*); its
latency is the shortest-path latency from the *anchor*, the node that hosts the chain's previous
service (or the chain's ingress node, for the first service). The **reference set** is the
feasible nodes of minimum latency from the anchor. Link latencies are whole milliseconds, so
path latencies are exact integers and ties are exact: every tied node is in the set. When no
node is feasible, every node is (the rejection is unavoidable, no choice is worse).

The cost of the search: one row of the all-pairs shortest-path matrix (computed once per episode,
:func:`rlpipe.envs.service_chain.topology.all_pairs_latency`) and a minimum over N nodes.

Nothing here keeps state or draws random numbers.
"""
from __future__ import annotations

import numpy as np

__all__ = ["feasible_mask", "reference_set", "reference_latency"]


def feasible_mask(node_kind: np.ndarray, free_slots: np.ndarray, required_kind: int) -> np.ndarray:
    r"""Nodes that can host a service of ``required_kind`` (right kind, at least one free slot).

    Shapes:
        - **input:** node_kind int :math:`[N]`, free_slots int :math:`[N]`
        - **output:** bool :math:`[N]`
    """
    return (np.asarray(node_kind) == int(required_kind)) & (np.asarray(free_slots) >= 1)


def reference_set(latency_from_anchor: np.ndarray, feasible: np.ndarray) -> np.ndarray:
    r"""Feasible nodes of minimum latency from the anchor; every node when none is feasible.

    Args:
        latency_from_anchor: shortest-path latency (whole ms) from the anchor to each node.
        feasible: which nodes can host the service.

    Shapes:
        - **input:** :math:`[N]`, bool :math:`[N]`
        - **output:** bool :math:`[N]`
    """
    feasible = np.asarray(feasible, dtype=bool)
    if not feasible.any():
        return np.ones(feasible.shape, dtype=bool)
    masked = np.where(feasible, latency_from_anchor, np.inf)
    return feasible & (masked == masked.min())


def reference_latency(latency_from_anchor: np.ndarray, feasible: np.ndarray) -> float:
    """Latency of the reference choice (``nan`` when no node is feasible)."""
    feasible = np.asarray(feasible, dtype=bool)
    if not feasible.any():
        return float("nan")
    return float(np.min(np.asarray(latency_from_anchor)[feasible]))
