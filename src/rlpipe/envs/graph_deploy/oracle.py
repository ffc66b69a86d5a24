"""The oracle of the graph service-deployment environment: pure, vectorised numpy functions.

For one request (source node, cpu demand, memory demand, latency budget) and the current load of
every node, the oracle scores each node and returns its *best set*:

* a node is **feasible** when ``free_cpu >= cpu_demand``, ``free_mem >= mem_demand`` and
  ``latency(source, node) <= budget``;
* the **cost** of a node is ``0.6 * latency / budget + 0.4 * util_after`` where ``util_after`` is
  the mean of ``(cpu_used + cpu_demand) / cpu_cap`` and ``(mem_used + mem_demand) / mem_cap``.
  For a feasible node both terms lie in ``[0, 1]``, so the cost does too;
* the **best set** holds the feasible nodes whose cost is within ``1e-9`` of the minimum feasible
  cost (ties count: every tied node is a correct choice). When *no* node is feasible, every node is
  in the best set: the rejection is unavoidable, so no choice is worse than another.

The environment (:mod:`rlpipe.envs.graph_deploy.env`) calls these same functions, so the rewards it
pays and the ``oracle_best`` masks it reports always agree with this module.

Nothing here keeps state or draws random numbers.
"""
from __future__ import annotations

import numpy as np

__all__ = [
    "LATENCY_WEIGHT",
    "UTIL_WEIGHT",
    "TIE_TOLERANCE",
    "util_after",
    "feasible_mask",
    "node_cost",
    "best_set",
    "oracle_best",
]

#: Weight of the normalised latency ``latency / budget`` in the cost.
LATENCY_WEIGHT = 0.6
#: Weight of the utilisation after placement in the cost.
UTIL_WEIGHT = 0.4
#: Costs within this distance of the minimum count as ties (all are in the best set).
TIE_TOLERANCE = 1e-9


def util_after(cpu_used, cpu_cap, mem_used, mem_cap, cpu_demand, mem_demand) -> np.ndarray:
    r"""Mean of cpu and memory utilisation of each node if the request were placed there.

    Args:
        cpu_used, cpu_cap, mem_used, mem_cap: per-node arrays (or scalars).
        cpu_demand, mem_demand: the request's demands (scalars).

    Returns:
        ``0.5 * ((cpu_used + cpu_demand) / cpu_cap + (mem_used + mem_demand) / mem_cap)``.

    Shapes:
        - **input:** per-node arrays :math:`[N]`, demands scalar
        - **output:** :math:`[N]`
    """
    return 0.5 * ((cpu_used + cpu_demand) / cpu_cap + (mem_used + mem_demand) / mem_cap)


def feasible_mask(latency, budget, cpu_free, mem_free, cpu_demand, mem_demand) -> np.ndarray:
    r"""Which nodes can host the request (enough free cpu and memory, latency within budget).

    Args:
        latency: shortest-path latency (ms) from the request's source to each node.
        budget: the request's latency budget (ms).
        cpu_free, mem_free: free capacity of each node.
        cpu_demand, mem_demand: the request's demands.

    Shapes:
        - **input:** per-node arrays :math:`[N]`, the rest scalar
        - **output:** bool :math:`[N]`
    """
    return (cpu_free >= cpu_demand) & (mem_free >= mem_demand) & (latency <= budget)


def node_cost(latency, budget, cpu_used, cpu_cap, mem_used, mem_cap, cpu_demand, mem_demand
              ) -> np.ndarray:
    r"""Cost of placing the request on each node: ``0.6 * latency / budget + 0.4 * util_after``.

    Only meaningful for feasible nodes (then it lies in ``[0, 1]``); it is computed for every node.

    Shapes:
        - **input:** per-node arrays :math:`[N]`, budget and demands scalar
        - **output:** :math:`[N]`
    """
    ua = util_after(cpu_used, cpu_cap, mem_used, mem_cap, cpu_demand, mem_demand)
    return LATENCY_WEIGHT * (latency / budget) + UTIL_WEIGHT * ua


def best_set(cost: np.ndarray, feasible: np.ndarray, tol: float = TIE_TOLERANCE) -> np.ndarray:
    r"""The oracle's best set: feasible nodes whose cost is within ``tol`` of the minimum.

    If no node is feasible every node is returned (any choice is equally unavoidable).

    Args:
        cost: cost of each node (values of infeasible nodes are ignored).
        feasible: bool feasibility of each node.
        tol: tie tolerance.

    Shapes:
        - **input:** :math:`[N]`, :math:`[N]`
        - **output:** bool :math:`[N]`
    """
    feasible = np.asarray(feasible, dtype=bool)
    if not feasible.any():
        return np.ones(feasible.shape, dtype=bool)
    cost = np.asarray(cost, dtype=np.float64)
    masked = np.where(feasible, cost, np.inf)
    return feasible & (masked <= masked.min() + tol)


def oracle_best(latency, budget, cpu_used, cpu_cap, mem_used, mem_cap, cpu_demand, mem_demand
                ) -> np.ndarray:
    r"""Feasibility, cost and best set in one call (convenience for tests and probes).

    Args:
        latency: latency (ms) from the request's source to each node.
        budget: latency budget (ms).
        cpu_used, cpu_cap, mem_used, mem_cap: per-node load and capacity.
        cpu_demand, mem_demand: the request's demands.

    Returns:
        bool mask of the best set, see :func:`best_set`.

    Shapes:
        - **input:** per-node arrays :math:`[N]`, the rest scalar
        - **output:** bool :math:`[N]`
    """
    latency = np.asarray(latency, dtype=np.float64)
    cpu_used = np.asarray(cpu_used, dtype=np.float64)
    cpu_cap = np.asarray(cpu_cap, dtype=np.float64)
    mem_used = np.asarray(mem_used, dtype=np.float64)
    mem_cap = np.asarray(mem_cap, dtype=np.float64)
    feas = feasible_mask(latency, budget, cpu_cap - cpu_used, mem_cap - mem_used,
                         cpu_demand, mem_demand)
    cost = node_cost(latency, budget, cpu_used, cpu_cap, mem_used, mem_cap, cpu_demand, mem_demand)
    return best_set(cost, feas)
