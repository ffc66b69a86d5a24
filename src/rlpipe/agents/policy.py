"""Actor-critic agents: networks plus the observation batching and the categorical policy.

Two kinds share one interface, so the algorithms and the trainer never branch on the kind:

- :class:`GraphActorCritic`: GAT actor (one logit per node) and GAT critic, for graph observations
  (``gymnasium.spaces.Graph``); the action is a node index of that observation's graph.
- :class:`FlatActorCritic`: MLP actor and critic, for flat ``Box`` observations and a ``Discrete``
  action space (any installed gymnasium env such as ``CartPole-v1``).
"""
from __future__ import annotations

from typing import Any, Sequence

import gymnasium as gym
import numpy as np
import torch
from torch.distributions import Categorical
from torch_geometric.utils import to_dense_batch

from rlpipe.agents.graph import GraphBatch, collate_graphs
from rlpipe.agents.networks import GATActor, GATCritic, MLPActor, MLPCritic
from rlpipe.config import AgentConfig

_NEG = torch.finfo(torch.float32).min


class GraphActorCritic:
    """GAT actor and critic over graph observations.

    Shapes:
        - ``collate``: list of B ``GraphInstance`` -> :class:`GraphBatch`
        - ``distribution``: a Categorical with logits [B, max_nodes] (padding masked out)
        - ``value``: [B]
    """

    kind = "graph"

    def __init__(self, node_dim: int, cfg: AgentConfig, edge_dim: int = 1):
        net = (node_dim, cfg.hidden_dim, cfg.heads, cfg.gat_layers, cfg.dropout, edge_dim, cfg.conv)
        self.actor = GATActor(*net)
        self.critic = GATCritic(*net)

    def collate(self, observations: Sequence[Any]) -> GraphBatch:
        return collate_graphs(observations)

    def distribution(self, batch: GraphBatch, masks: Sequence[np.ndarray] | None = None) -> Categorical:
        logits = self.actor(batch)
        if masks is not None:
            flat = torch.from_numpy(np.concatenate(masks)).to(torch.bool)
            logits = logits.masked_fill(~flat, _NEG)
        dense, _ = to_dense_batch(logits, batch.batch, fill_value=_NEG,
                                        batch_size=batch.num_graphs)
        return Categorical(logits=dense)

    def value(self, batch: GraphBatch) -> torch.Tensor:
        return self.critic(batch)


class FlatActorCritic:
    """MLP actor and critic over flat observations.

    Shapes:
        - ``collate``: list of B observations [obs_dim] -> tensor [B, obs_dim]
        - ``distribution``: a Categorical with logits [B, n_actions]
        - ``value``: [B]
    """

    kind = "flat"

    def __init__(self, obs_dim: int, n_actions: int, cfg: AgentConfig):
        self.actor = MLPActor(obs_dim, n_actions, cfg.mlp_hidden)
        self.critic = MLPCritic(obs_dim, cfg.mlp_hidden)

    def collate(self, observations: Sequence[Any]) -> torch.Tensor:
        return torch.from_numpy(np.asarray(observations, dtype=np.float32).reshape(len(observations), -1))

    def distribution(self, batch: torch.Tensor, masks: Sequence[np.ndarray] | None = None) -> Categorical:
        logits = self.actor(batch)
        if masks is not None:
            logits = logits.masked_fill(~torch.from_numpy(np.stack(masks)).to(torch.bool), _NEG)
        return Categorical(logits=logits)

    def value(self, batch: torch.Tensor) -> torch.Tensor:
        return self.critic(batch)


def build_agent(observation_space: gym.Space, action_space: gym.Space, cfg: AgentConfig):
    """Pick the agent kind from the spaces; raise ``ValueError`` naming what is unsupported."""
    if not isinstance(action_space, gym.spaces.Discrete):
        raise ValueError(f"only Discrete action spaces are supported, got {action_space}")
    if isinstance(observation_space, gym.spaces.Graph):
        node_dim = int(np.prod(observation_space.node_space.shape))
        edge_space = observation_space.edge_space  # None: a zero feature of size 1 (collate)
        edge_dim = int(np.prod(edge_space.shape)) if edge_space is not None else 1
        return GraphActorCritic(node_dim, cfg, edge_dim)
    if isinstance(observation_space, gym.spaces.Box):
        return FlatActorCritic(int(np.prod(observation_space.shape)), int(action_space.n), cfg)
    raise ValueError(
        f"observation space {type(observation_space).__name__} is not supported "
        "(expected gymnasium.spaces.Graph or a flat Box)"
    )
