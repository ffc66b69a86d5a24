"""``rlpipe/GraphDeploy-v0``: place a stream of service requests on an edge/cloud network.

Modules: :mod:`.env` (the environment), :mod:`.config` (its ``env.kwargs``), :mod:`.topology`
(the network generator), :mod:`.oracle` (the best set of each decision).
"""
from rlpipe.envs.graph_deploy.config import GraphDeployConfig
from rlpipe.envs.graph_deploy.env import NODE_FEATURES, NODE_KIND_NAMES, GraphDeployEnv

__all__ = ["GraphDeployEnv", "GraphDeployConfig", "NODE_FEATURES", "NODE_KIND_NAMES"]
