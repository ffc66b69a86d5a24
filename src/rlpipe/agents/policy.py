"""Actor-critic agents: networks plus observation preparation, batching and the action distribution.

Two kinds share one interface, so the algorithms and the trainer never branch on the kind or on
the action space:

- :class:`GraphActorCritic`: GAT actor (one logit per node) and GAT critic, for graph observations
  (``gymnasium.spaces.Graph``); the action is a node index of that observation's graph.
- :class:`FlatActorCritic`: MLP actor and critic, for every observation space that flattens to a
  vector (see :mod:`rlpipe.agents.spaces`) and ``Discrete``, ``MultiDiscrete`` or ``Box`` actions.

The interface, in the order the trainer uses it:

- ``preprocess(raw observations, update)``: encode (flatten) and, with observation normalization
  on, normalize; ``update=True`` (collection only) first updates the running statistics.
- ``collate(prepared)``: one batch on ``agent.device``.
- ``distribution(batch, masks)``: an action distribution (:mod:`rlpipe.agents.distributions`).
- ``value(batch)``: state values [B].
- ``batch_store(prepared)`` / ``select(store, idx)``: a rollout's observations kept for the update,
  and one minibatch of them, on the device.
- ``actions.to_env(action)``: the agent's action as the environment takes it.
"""
from __future__ import annotations

from typing import Any, Sequence

import gymnasium as gym
import numpy as np
import torch

from rlpipe.agents.distributions import CategoricalActions, DiagGaussianActions, MultiCategoricalActions
from rlpipe.agents.graph import GraphBatch, collate_graphs
from rlpipe.agents.mlp import MLPActor, MLPCritic
from rlpipe.agents.normalize import ObservationNormalizer
from rlpipe.agents.spaces import BOX, DISCRETE, ActionSpec, ObservationSpec, check_spaces
from rlpipe.config import AgentConfig

_NEG = torch.finfo(torch.float32).min


class _ActorCritic:
    """What both kinds share: specs, device, normalizer, preprocessing."""

    kind = ""

    def __init__(self, observations: ObservationSpec, actions: ActionSpec):
        self.observations = observations
        self.actions = actions
        self.device = torch.device("cpu")
        self.normalizer: ObservationNormalizer | None = None

    def to(self, device: torch.device | str) -> "_ActorCritic":
        self.device = torch.device(device)
        self.actor.to(self.device)
        self.critic.to(self.device)
        return self

    def enable_normalization(self) -> None:
        self.normalizer = ObservationNormalizer(self.kind, self.observations.dim)

    def preprocess(self, observations: Sequence[Any], update: bool = False) -> list[Any]:
        encoded = [self.observations.encode(o) for o in observations]
        return encoded if self.normalizer is None else self.normalizer(encoded, update)

    def exportable(self, observations: list[Any]) -> list[Any]:
        """Observations for rollout exports: graphs and arrays as the environment returned them;
        other spaces (Dict, Tuple, Discrete...) flattened by gymnasium. Never normalized."""
        if not observations or isinstance(observations[0], np.ndarray) or self.kind == "graph":
            return observations
        return [self.observations.encode(o) for o in observations]

    def _mask(self, masks: Sequence[np.ndarray], concat: bool) -> torch.Tensor:
        arr = np.concatenate(masks) if concat else np.stack(masks)
        return torch.from_numpy(arr).to(torch.bool).to(self.device)

    def value(self, batch) -> torch.Tensor:
        return self.critic(batch)


class GraphActorCritic(_ActorCritic):
    """GAT actor and critic over graph observations.

    Batches whose graphs have at most :attr:`dense_max_nodes` nodes run the dense attention
    kernels (:mod:`rlpipe.agents.dense_gat`), larger ones the CSR kernels
    (:mod:`rlpipe.agents.sparse_gat`); all use the layers' own parameters, so the choice never
    shows in checkpoints. A rollout is collated once (``batch_store``) and its minibatches are
    selected from that batch (``select``).

    Shapes:
        - ``collate``: list of B ``GraphInstance`` -> :class:`GraphBatch`
        - ``distribution``: categorical over logits [B, max_nodes] (padding masked out)
        - ``value``: [B]
        - ``batch_store``: list of T observations -> :class:`GraphBatch` of T graphs
        - ``select``: that batch (or the list) and k indices -> :class:`GraphBatch` of k graphs
    """

    kind = "graph"

    def __init__(self, observations: ObservationSpec, actions: ActionSpec, cfg: AgentConfig):
        # torch_geometric loads here, with the first graph agent: flat runs never import it
        from rlpipe.agents.dense_gat import DENSE_MAX_NODES
        from rlpipe.agents.networks import GATActor, GATCritic

        super().__init__(observations, actions)
        net = (observations.dim, cfg.hidden_dim, cfg.heads, cfg.gat_layers, cfg.dropout,
               observations.edge_dim, cfg.conv)
        self.actor = GATActor(*net)
        self.critic = GATCritic(*net)
        #: Largest graph (nodes) batched densely; 0 = never dense.
        self.dense_max_nodes = DENSE_MAX_NODES

    def collate(self, observations: Sequence[Any]) -> GraphBatch:
        return collate_graphs(observations, self.dense_max_nodes).to(self.device)

    def distribution(self, batch: GraphBatch, masks: Sequence[np.ndarray] | None = None) -> CategoricalActions:
        logits = self.actor.padded_logits(batch, _NEG)
        if masks is not None:
            logits = logits.masked_fill(~self._padded_mask(masks, logits.shape[1]), _NEG)
        return CategoricalActions(logits)

    def _padded_mask(self, masks: Sequence[np.ndarray], width: int) -> torch.Tensor:
        """Per-graph action masks as one bool [B, width] tensor, False past each graph's end."""
        if all(len(m) == width for m in masks):
            return self._mask(masks, concat=False)
        out = np.zeros((len(masks), width), dtype=bool)
        for row, m in zip(out, masks):
            row[:len(m)] = m
        return torch.from_numpy(out).to(self.device)

    def batch_store(self, observations: list[Any]) -> GraphBatch:
        return self.collate(observations)

    def select(self, store: GraphBatch | list[Any], idx: torch.Tensor) -> GraphBatch:
        if isinstance(store, GraphBatch):
            return store.select(idx.to(store.x.device))
        return self.collate([store[i] for i in idx.tolist()])


class FlatActorCritic(_ActorCritic):
    """MLP actor and critic over flattened observations.

    Shapes:
        - ``collate``: list of B observations float32 [D] -> tensor [B, D]
        - ``distribution``: categorical [B, n], per-component categoricals [B, K] or a diagonal
          Gaussian [B, D_action]
        - ``value``: [B]
    """

    kind = "flat"

    def __init__(self, observations: ObservationSpec, actions: ActionSpec, cfg: AgentConfig):
        super().__init__(observations, actions)
        box = actions.kind == BOX
        self.actor = MLPActor(observations.dim, actions.n_outputs, cfg.mlp_hidden,
                              log_std_dim=actions.n_outputs if box else 0,
                              log_std_init=cfg.log_std_init)
        self.critic = MLPCritic(observations.dim, cfg.mlp_hidden)

    def collate(self, observations: Sequence[Any]) -> torch.Tensor:
        x = np.asarray(observations, dtype=np.float32).reshape(len(observations), -1)
        return torch.from_numpy(x).to(self.device)

    def distribution(self, batch: torch.Tensor, masks: Sequence[np.ndarray] | None = None):
        out = self.actor(batch)
        kind = self.actions.kind
        if kind == DISCRETE:
            if masks is not None:
                out = out.masked_fill(~self._mask(masks, concat=False), _NEG)
            return CategoricalActions(out)
        if kind == BOX:
            return DiagGaussianActions(out, self.actor.log_std)
        return MultiCategoricalActions(out, self.actions.nvec)

    def batch_store(self, observations: list[Any]) -> torch.Tensor:
        return self.collate(observations)

    def select(self, store: torch.Tensor | list[Any], idx: torch.Tensor) -> torch.Tensor:
        if torch.is_tensor(store):
            return store[idx.to(store.device)]
        return self.collate([store[i] for i in idx.tolist()])


def build_agent(observation_space: gym.Space, action_space: gym.Space, cfg: AgentConfig,
                normalize_observations: bool = False,
                device: torch.device | str = "cpu") -> GraphActorCritic | FlatActorCritic:
    """Pick the agent kind from the spaces, on ``device``.

    Raises :class:`~rlpipe.agents.spaces.UnsupportedSpace` (a ``ValueError``) naming the space
    that cannot be trained.
    """
    obs_spec, act_spec = check_spaces(observation_space, action_space)
    cls = GraphActorCritic if obs_spec.kind == "graph" else FlatActorCritic
    agent = cls(obs_spec, act_spec, cfg)
    if normalize_observations:
        agent.enable_normalization()
    return agent.to(device)
