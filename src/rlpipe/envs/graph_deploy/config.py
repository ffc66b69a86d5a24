"""Typed settings of ``rlpipe/GraphDeploy-v0`` (``env.kwargs`` in params.yaml)."""
from __future__ import annotations

from dataclasses import dataclass

from rlpipe.config import _check, _field, in_range, positive


@dataclass(frozen=True)
class GraphDeployConfig:
    """``env.kwargs`` of the service-deployment environment (keyword arguments of
    :class:`~rlpipe.envs.graph_deploy.env.GraphDeployEnv`). The one source of their defaults
    and bounds: the environment builds this class from its keyword arguments."""

    #: nodes per graph, edge and cloud together.
    num_nodes: int = _field(20, in_range(3, 2000))
    #: cloud nodes (the last indices), each behind one or two edge gateways.
    num_cloud: int = _field(2, in_range(0, 100))
    #: requests (steps) per episode.
    requests_per_episode: int = _field(50, in_range(1, 100_000))
    #: the episode ends early once this many requests were rejected.
    max_rejections: int = _field(10, in_range(1, 100_000))
    #: edge nodes closer than this (unit square) are linked, besides the spanning tree.
    edge_radius: float = _field(0.3, in_range(0.0, 2.0))
    #: above this many nodes the radius shrinks as edge_radius * sqrt(radius_nodes / num_nodes),
    #: keeping the average degree bounded as graphs grow; 0 = the same radius at every size.
    radius_nodes: int = _field(20, in_range(0, 100_000))
    #: range of a request's cpu and memory demand (fractions of an edge node's capacity scale).
    demand_min: float = _field(0.1, in_range(0.0, 1.0))
    demand_max: float = _field(0.4, in_range(0.0, 1.0))
    #: range of a service's lifetime, in requests.
    lifetime_min: int = _field(10, in_range(1, 100_000))
    lifetime_max: int = _field(40, in_range(1, 100_000))
    #: range of a request's latency budget, in ms.
    latency_budget_min: float = _field(20.0, positive)
    latency_budget_max: float = _field(120.0, positive)

    def validate(self, s: str) -> None:
        _check(self.num_cloud < self.num_nodes, f"{s}.num_cloud",
               f"must be < {s}.num_nodes ({self.num_nodes})", self.num_cloud)
        _check(self.demand_min <= self.demand_max, f"{s}.demand_min",
               f"must be <= {s}.demand_max ({self.demand_max})", self.demand_min)
        _check(self.lifetime_min <= self.lifetime_max, f"{s}.lifetime_min",
               f"must be <= {s}.lifetime_max ({self.lifetime_max})", self.lifetime_min)
        _check(self.latency_budget_min <= self.latency_budget_max, f"{s}.latency_budget_min",
               f"must be <= {s}.latency_budget_max ({self.latency_budget_max})",
               self.latency_budget_min)
