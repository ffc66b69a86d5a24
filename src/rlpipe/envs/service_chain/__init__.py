"""``rlpipe/ServiceChain-v0``: place chains of services on a network, where the graph matters.

Modules: :mod:`.env` (the environment), :mod:`.config` (its ``env.kwargs``), :mod:`.topology`
(network generator, shortest paths), :mod:`.reference` (the reference decision set).
"""
from rlpipe.envs.service_chain.config import HARDWARE_KINDS, ServiceChainConfig
from rlpipe.envs.service_chain.env import NODE_FEATURES, ROLE_NAMES, ServiceChainEnv

__all__ = ["ServiceChainEnv", "ServiceChainConfig", "NODE_FEATURES", "ROLE_NAMES",
           "HARDWARE_KINDS"]
