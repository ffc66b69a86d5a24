"""Environments of rlpipe. Importing this package registers ``rlpipe/GraphDeploy-v0`` and
``rlpipe/ServiceChain-v0``.

``gymnasium.make("rlpipe/GraphDeploy-v0", **EnvConfig.env_kwargs())`` then builds a
:class:`GraphDeployEnv`; registration is skipped if the id is already registered.
"""
from __future__ import annotations

import gymnasium

from rlpipe.envs.graph_deploy import NODE_FEATURES, GraphDeployEnv, make_probe

GRAPH_DEPLOY_ID = "rlpipe/GraphDeploy-v0"
SERVICE_CHAIN_ID = "rlpipe/ServiceChain-v0"

if GRAPH_DEPLOY_ID not in gymnasium.registry:
    gymnasium.register(id=GRAPH_DEPLOY_ID, entry_point="rlpipe.envs.graph_deploy:GraphDeployEnv")
if SERVICE_CHAIN_ID not in gymnasium.registry:
    gymnasium.register(id=SERVICE_CHAIN_ID, entry_point="rlpipe.envs.service_chain:ServiceChainEnv")

__all__ = ["GraphDeployEnv", "make_probe", "NODE_FEATURES", "GRAPH_DEPLOY_ID", "SERVICE_CHAIN_ID"]
