"""Typed settings of ``rlpipe/GraphDeploy-v0`` (``env.kwargs`` in params.yaml)."""
from __future__ import annotations

from dataclasses import dataclass

from rlpipe.envs.settings import in_range, positive, require, require_ordered, setting


@dataclass(frozen=True)
class GraphDeployConfig:
    """``env.kwargs`` of the service-deployment environment (keyword arguments of
    :class:`~rlpipe.envs.graph_deploy.env.GraphDeployEnv`). The one source of their defaults
    and bounds: the environment builds this class from its keyword arguments."""

    #: nodes per graph, edge and cloud together.
    num_nodes: int = setting(20, in_range(3, 2000))
    #: cloud nodes (the last indices), each behind one or two edge gateways.
    num_cloud: int = setting(2, in_range(0, 100))
    #: requests (steps) per episode.
    requests_per_episode: int = setting(50, in_range(1, 100_000))
    #: the episode ends early once this many requests were rejected.
    max_rejections: int = setting(10, in_range(1, 100_000))
    #: edge nodes closer than this (unit square) are linked, besides the spanning tree.
    edge_radius: float = setting(0.3, in_range(0.0, 2.0))
    #: above this many nodes the radius shrinks as edge_radius * sqrt(radius_nodes / num_nodes),
    #: keeping the average degree bounded as graphs grow; 0 = the same radius at every size.
    radius_nodes: int = setting(20, in_range(0, 100_000))
    #: range of a request's cpu and memory demand (fractions of an edge node's capacity scale).
    demand_min: float = setting(0.1, in_range(0.0, 1.0))
    demand_max: float = setting(0.4, in_range(0.0, 1.0))
    #: range of a service's lifetime, in requests.
    lifetime_min: int = setting(10, in_range(1, 100_000))
    lifetime_max: int = setting(40, in_range(1, 100_000))
    #: range of a request's latency budget, in ms.
    latency_budget_min: float = setting(20.0, positive)
    latency_budget_max: float = setting(120.0, positive)

    def validate(self, s: str) -> None:
        require(self.num_cloud < self.num_nodes, f"{s}.num_cloud",
                f"must be < {s}.num_nodes ({self.num_nodes})", self.num_cloud)
        require_ordered(self, s, ("demand_min", "demand_max"), ("lifetime_min", "lifetime_max"),
                        ("latency_budget_min", "latency_budget_max"))
