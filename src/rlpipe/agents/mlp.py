"""MLP actor and critic for flat observations (and the layer stack the GAT heads use too).

This module imports no torch_geometric: a run on a flat-observation environment (CartPole,
MuJoCo) never pays for loading it (seconds per process: the train stage, each env worker's
parent, each sweep trial).
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn


def mlp(sizes: Sequence[int], act: type[nn.Module] = nn.Tanh, last_gain: float = 1.0) -> nn.Sequential:
    """Linear layers of ``sizes`` with ``act`` between them; orthogonal weights (gain sqrt 2,
    ``last_gain`` for the last layer) and zero biases, as CleanRL and SB3 initialise them."""
    layers: list[nn.Module] = []
    for i in range(len(sizes) - 1):
        lin = nn.Linear(sizes[i], sizes[i + 1])
        last = i == len(sizes) - 2
        nn.init.orthogonal_(lin.weight, gain=last_gain if last else 2 ** 0.5)
        nn.init.zeros_(lin.bias)
        layers.append(lin)
        if not last:
            layers.append(act())
    return nn.Sequential(*layers)


class MLPActor(nn.Module):
    """The policy's parameters from a flat observation: logits (``Discrete``, ``MultiDiscrete``)
    or Gaussian means (``Box``).

    With ``log_std_dim > 0`` the actor also holds ``log_std``, a learned state-independent
    log standard deviation per action dimension (``Box`` actions), initialised to ``log_std_init``.

    Shapes:
        - input: obs [B, obs_dim]
        - output: [B, n_outputs]; :meth:`embed` gives the last hidden layer [B, hidden[-1]]
        - log_std: [log_std_dim]
    """

    def __init__(self, obs_dim: int, n_outputs: int, hidden: Sequence[int] = (64, 64),
                 log_std_dim: int = 0, log_std_init: float = 0.0):
        super().__init__()
        self.body = mlp([obs_dim, *hidden], act=nn.Tanh)
        self.body.append(nn.Tanh())
        self.head = mlp([hidden[-1], n_outputs], last_gain=0.01)
        if log_std_dim > 0:
            self.log_std = nn.Parameter(torch.full((log_std_dim,), float(log_std_init)))

    def embed(self, obs: torch.Tensor) -> torch.Tensor:
        return self.body(obs)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(obs))


class MLPCritic(nn.Module):
    """State value from a flat observation.

    Shapes:
        - input: obs [B, obs_dim]
        - output: values [B]
    """

    def __init__(self, obs_dim: int, hidden: Sequence[int] = (64, 64)):
        super().__init__()
        self.net = mlp([obs_dim, *hidden, 1], act=nn.Tanh, last_gain=1.0)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.net(obs).squeeze(-1)
