"""Environments of rlpipe, and the contract every environment is read through.

Importing this package is cheap (no gymnasium, no numpy): the summarize and visualize stages
import it for :data:`DEFAULT_ENV_ID`. :func:`register` registers the built-in environments with
gymnasium (skipping ids that are already registered); :func:`rlpipe.train.environment.make_env`
calls it before building an environment.

Built-in environments:
    - ``rlpipe/GraphDeploy-v0``: :class:`rlpipe.envs.graph_deploy.GraphDeployEnv`
    - ``rlpipe/ServiceChain-v0``: :class:`rlpipe.envs.service_chain.ServiceChainEnv`
"""
from __future__ import annotations

DEFAULT_ENV_ID = "rlpipe/GraphDeploy-v0"

#: gymnasium id -> entry point of every built-in environment
BUILTIN = {
    DEFAULT_ENV_ID: "rlpipe.envs.graph_deploy:GraphDeployEnv",
    "rlpipe/ServiceChain-v0": "rlpipe.envs.service_chain:ServiceChainEnv",
}


def register() -> None:
    """Register the built-in environments with gymnasium (idempotent)."""
    import gymnasium

    for env_id, entry_point in BUILTIN.items():
        if env_id not in gymnasium.registry:
            gymnasium.register(id=env_id, entry_point=entry_point)


__all__ = ["BUILTIN", "DEFAULT_ENV_ID", "register"]
