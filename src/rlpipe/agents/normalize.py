"""Observation normalization: running mean and variance, checkpointed with the run.

:class:`RunningMeanStd` keeps float64 statistics and merges batches with the parallel variance
formula (Chan et al.), the same as Stable-Baselines3's ``VecNormalize`` and gymnasium's
``NormalizeObservation``: ``(x - mean) / sqrt(var + eps)``, clipped to ``[-clip, clip]``.

:class:`ObservationNormalizer` applies it to what the agent batches: flat observations (float32
[D]) or the node features of graph observations (every node of every graph is one sample of the
F features; edges are left alone).

When the statistics move: the trainer updates them with the observations of every collection step
(before normalizing that step), never during an update, and freezes them for evaluation and
captures. The update therefore trains on exactly the normalized observations the actions were
sampled from. The state is three float64 tensors in the checkpoint (``obs_normalizer``), so a
resumed run normalizes bit-identically to an uninterrupted one.
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import torch
from gymnasium.spaces import GraphInstance

DEFAULT_CLIP = 10.0
DEFAULT_EPSILON = 1e-8
_INITIAL_COUNT = 1e-4  # as in SB3 / gymnasium: the first batch dominates, no division by zero


def resolve_normalization(setting: bool | str, observation_kind: str, action_kind: str) -> bool:
    """``train.normalize_observations``: ``auto`` is on for flat observations with Box actions
    (continuous control), off for graph observations and discrete actions (docs/SPACES.md)."""
    if setting == "auto":
        return observation_kind == "flat" and action_kind == "box"
    return bool(setting)


class RunningMeanStd:
    """Running mean and (population) variance of a stream of batches.

    Shapes:
        - update: x [B, *shape]
        - normalize: x [B, *shape] -> float32 [B, *shape]
    """

    def __init__(self, shape: tuple[int, ...], clip: float = DEFAULT_CLIP,
                 epsilon: float = DEFAULT_EPSILON):
        self.shape = tuple(shape)
        self.clip = float(clip)
        self.epsilon = float(epsilon)
        self.mean = np.zeros(self.shape, dtype=np.float64)
        self.var = np.ones(self.shape, dtype=np.float64)
        self.count = _INITIAL_COUNT

    def update(self, x: np.ndarray) -> None:
        x = np.asarray(x, dtype=np.float64).reshape((-1, *self.shape))
        if x.shape[0] == 0:
            return
        batch_mean = x.mean(axis=0)
        batch_var = x.var(axis=0)
        batch_count = x.shape[0]
        delta = batch_mean - self.mean
        total = self.count + batch_count
        self.mean = self.mean + delta * (batch_count / total)
        m2 = self.var * self.count + batch_var * batch_count + delta ** 2 * (self.count * batch_count / total)
        self.var = m2 / total
        self.count = total

    def normalize(self, x: np.ndarray) -> np.ndarray:
        z = (np.asarray(x, dtype=np.float64) - self.mean) / np.sqrt(self.var + self.epsilon)
        return np.clip(z, -self.clip, self.clip).astype(np.float32)

    def state_dict(self) -> dict[str, torch.Tensor]:
        """CPU float64 tensors (checkpoints load with ``weights_only=True``)."""
        return {"mean": torch.from_numpy(self.mean.copy()), "var": torch.from_numpy(self.var.copy()),
                "count": torch.tensor(self.count, dtype=torch.float64)}

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        mean = state["mean"].detach().cpu().numpy().astype(np.float64)
        if mean.shape != self.shape:
            raise ValueError(f"observation normalizer holds shape {tuple(mean.shape)}, "
                             f"the agent needs {self.shape}")
        self.mean = mean.copy()
        self.var = state["var"].detach().cpu().numpy().astype(np.float64).copy()
        self.count = float(state["count"])


class ObservationNormalizer:
    """Normalizes encoded observations (flat float32 [D] arrays or ``GraphInstance`` node features).

    Args:
        kind: ``"flat"`` or ``"graph"``.
        dim: D (flat) or the node feature size F (graph).
    """

    def __init__(self, kind: str, dim: int, clip: float = DEFAULT_CLIP):
        self.kind = kind
        self.stats = RunningMeanStd((dim,), clip=clip)

    def __call__(self, observations: Sequence[Any], update: bool) -> list[Any]:
        """Normalized copies of ``observations``; with ``update`` the statistics first absorb them."""
        if not observations:
            return []
        if self.kind == "graph":
            if update:
                self.stats.update(np.concatenate([g.nodes for g in observations], axis=0))
            return [GraphInstance(self.stats.normalize(g.nodes), g.edges, g.edge_links)
                    for g in observations]
        x = np.stack(observations)
        if update:
            self.stats.update(x)
        return list(self.stats.normalize(x))

    def state_dict(self) -> dict[str, torch.Tensor]:
        return self.stats.state_dict()

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        self.stats.load_state_dict(state)
