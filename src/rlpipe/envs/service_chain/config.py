"""Settings of ``rlpipe/ServiceChain-v0`` (``env.kwargs`` in params.yaml), checked on build."""
from __future__ import annotations

from dataclasses import dataclass

from rlpipe.envs.settings import in_range, positive, require_ordered, setting

#: Hardware kinds of nodes; every service requires one of them.
HARDWARE_KINDS = ("compute", "storage", "accelerator")


@dataclass(frozen=True)
class ServiceChainConfig:
    """``env.kwargs`` of ``rlpipe/ServiceChain-v0``: network, chains, capacity, reward scale."""

    #: Nodes of the network (actions are node indices).
    num_nodes: int = setting(20, in_range(len(HARDWARE_KINDS), 1000))
    #: Each node links to its this many nearest neighbours (plus a spanning tree); the average
    #: degree stays about ``neighbours + 1`` at any size.
    neighbours: int = setting(3, in_range(1, 16))
    #: Whole milliseconds of a link's latency: uniform integer in [min, max].
    link_latency_min: int = setting(1, in_range(1, 10_000))
    link_latency_max: int = setting(5, in_range(1, 10_000))
    #: Service chains (requests) per episode; each is placed one service per step.
    chains_per_episode: int = setting(12, in_range(1, 100_000))
    #: Services per chain: uniform integer in [min, max].
    chain_length_min: int = setting(3, in_range(1, 64))
    chain_length_max: int = setting(5, in_range(1, 64))
    #: Service slots of a node: uniform integer in [min, max].
    capacity_min: int = setting(1, in_range(1, 1000))
    capacity_max: int = setting(3, in_range(1, 1000))
    #: Steps a placed service holds its slot: uniform integer in [min, max].
    lifetime_min: int = setting(8, in_range(1, 100_000))
    lifetime_max: int = setting(24, in_range(1, 100_000))
    #: Reward of a feasible placement: ``1 - min(latency / latency_scale, 1.5)`` (ms).
    latency_scale: float = setting(10.0, positive)
    #: The episode ends once this many services were rejected (infeasible choices).
    max_rejections: int = setting(10, in_range(1, 100_000))

    def validate(self, s: str) -> None:
        require_ordered(self, s, ("link_latency_min", "link_latency_max"),
                        ("chain_length_min", "chain_length_max"), ("capacity_min", "capacity_max"),
                        ("lifetime_min", "lifetime_max"))
