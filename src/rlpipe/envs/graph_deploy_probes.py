"""Fixed probe states of ``rlpipe/GraphDeploy-v0`` for captures (environment contract)."""
from __future__ import annotations

import numpy as np
from gymnasium import spaces

from rlpipe.envs.contract import ProbeState
from rlpipe.envs.graph_deploy import GraphDeployEnv


def make_probe(env_kwargs: dict, n: int, seed: int, warmup_steps: int = 10) -> list[ProbeState]:
    """Fixed probe states for captures: ``n`` environments reset with ``seed + i``, then loaded
    by ``warmup_steps`` oracle decisions (the last state before the episode would end, if
    it ends sooner).

    Args:
        env_kwargs (dict): keyword arguments of :class:`GraphDeployEnv`.
        n (int): number of probe states.
        seed (int): seed of the first probe.
        warmup_steps (int): oracle steps taken before the state is recorded.

    Returns:
        :class:`~rlpipe.envs.contract.ProbeState` list: ``obs`` (GraphInstance), ``reference``
        (the oracle's best set, bool [N]), ``node_kinds`` (0 edge, 1 cloud), ``node_values``
        ``{"utilization": float32 [N] (cpu), "is_source": float32 [N]}``. All arrays are copies.
    """
    env = GraphDeployEnv(**env_kwargs)

    def snapshot(obs, info) -> ProbeState:
        is_source = np.zeros(env.num_nodes, dtype=np.float32)
        is_source[env.source] = 1.0
        return ProbeState(
            obs=spaces.GraphInstance(obs.nodes.copy(), np.array(obs.edges), np.array(obs.edge_links)),
            reference=np.array(info["oracle_best"], dtype=bool),
            node_kinds=env.is_cloud.astype(np.int64),
            node_values={"utilization": env.utilization.astype(np.float32), "is_source": is_source},
        )

    probes = []
    for i in range(n):
        obs, info = env.reset(seed=int(seed) + i)
        state = snapshot(obs, info)
        for _ in range(warmup_steps):
            obs, _, terminated, _, info = env.step(int(np.argmax(info["oracle_best"])))
            if terminated:  # keep the last state that still has a request to decide
                break
            state = snapshot(obs, info)
        probes.append(state)
    env.close()
    return probes
