"""Which gymnasium spaces rlpipe trains, and how observations and actions cross the env boundary.

Observations:

- ``Graph``: kept as ``GraphInstance`` (GAT agent).
- ``Box`` of any shape: flattened to float32 [D] (MLP agent).
- ``Discrete``, ``MultiDiscrete``, ``MultiBinary`` and ``Tuple``/``Dict`` of these and of ``Box``:
  flattened with gymnasium's own ``spaces.utils.flatten`` (a ``Discrete`` becomes a one-hot
  vector), so the MLP agent sees one float32 vector [D].
- Anything else (``Text``, ``Sequence``, ``OneOf``, a ``Tuple``/``Dict`` holding a ``Graph``...)
  is refused with :class:`UnsupportedSpace`.

Actions (:class:`ActionSpec`): ``Discrete`` (categorical), ``MultiDiscrete`` (one categorical per
component, flattened), ``Box`` (diagonal Gaussian over the flattened box; see
:mod:`rlpipe.agents.distributions` for why the action is clipped, not squashed).

This module imports no torch: the train stage checks the spaces before loading torch_geometric.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import gymnasium as gym
import numpy as np

from rlpipe.action_log import ActionLayout

DISCRETE, MULTI_DISCRETE, BOX = "discrete", "multi_discrete", "box"
_MAX_DESCRIPTION = 160


class UnsupportedSpace(ValueError):
    """A space rlpipe cannot train; the message is one line naming the space."""


def describe_space(space: gym.Space) -> str:
    """A one-line, bounded description of ``space`` (numpy arrays in a repr can wrap lines)."""
    text = " ".join(repr(space).split())
    return text if len(text) <= _MAX_DESCRIPTION else text[:_MAX_DESCRIPTION - 3] + "..."


# --------------------------------------------------------------------------- observations
_FLATTENABLE = (gym.spaces.Box, gym.spaces.Discrete, gym.spaces.MultiDiscrete, gym.spaces.MultiBinary)


def _flattenable(space: gym.Space) -> bool:
    if isinstance(space, _FLATTENABLE):
        return True
    if isinstance(space, gym.spaces.Tuple):
        return all(_flattenable(s) for s in space.spaces)
    if isinstance(space, gym.spaces.Dict):
        return all(_flattenable(s) for s in space.spaces.values())
    return False


@dataclass(frozen=True)
class ObservationSpec:
    """How the agent sees an observation space.

    Attributes:
        kind: ``"graph"`` (GAT agent) or ``"flat"`` (MLP agent).
        dim: node feature size F (graph) or the flattened size D (flat).
        edge_dim: edge feature size (graph; a graph without edge features gets one zero feature).
        encode: raw observation -> what the agent batches (GraphInstance, or float32 [D]).
    """

    kind: str
    dim: int
    encode: Callable[[Any], Any]
    edge_dim: int = 1


def observation_spec(space: gym.Space) -> ObservationSpec:
    """The :class:`ObservationSpec` of ``space``; raise :class:`UnsupportedSpace` otherwise."""
    if isinstance(space, gym.spaces.Graph):
        if not isinstance(space.node_space, gym.spaces.Box):
            raise UnsupportedSpace(f"observation space {describe_space(space)}: graph node "
                                   "features must be a Box")
        edges = space.edge_space  # None: a zero feature of size 1 (collate_graphs)
        return ObservationSpec("graph", int(np.prod(space.node_space.shape)), lambda o: o,
                               int(np.prod(edges.shape)) if edges is not None else 1)
    if isinstance(space, gym.spaces.Box):
        dim = int(np.prod(space.shape))
        return ObservationSpec("flat", dim, lambda o: np.asarray(o, dtype=np.float32).reshape(dim))
    if _flattenable(space):
        dim = int(gym.spaces.utils.flatdim(space))

        def encode(o, space=space, dim=dim):
            return np.asarray(gym.spaces.utils.flatten(space, o), dtype=np.float32).reshape(dim)

        return ObservationSpec("flat", dim, encode)
    raise UnsupportedSpace(
        f"observation space {describe_space(space)} is not supported (rlpipe trains Graph, Box, "
        "Discrete, MultiDiscrete, MultiBinary, and Tuple/Dict of the flat ones)")


# --------------------------------------------------------------------------- actions
@dataclass(frozen=True)
class ActionSpec:
    """How the agent acts in an action space.

    Attributes:
        kind: ``"discrete"``, ``"multi_discrete"`` or ``"box"``.
        n_outputs: width of the actor's output (logits, or Gaussian means).
        shape: shape of one stored action: () discrete, (K,) multi-discrete, (D,) box.
        nvec: choices per component (multi-discrete), or (n,) for discrete.
        start: the space's ``start`` (added when the action is sent to the env).
        low, high: float64 [D] bounds (box; may be infinite).
        env_shape, env_dtype: the space's own shape and dtype (what ``to_env`` returns).

    Shapes:
        - an agent action: int64 [] (discrete), int64 [K] (multi-discrete), float32 [D] (box)
    """

    kind: str
    n_outputs: int
    shape: tuple[int, ...]
    nvec: tuple[int, ...] = ()
    start: Any = 0
    low: np.ndarray | None = None
    high: np.ndarray | None = None
    env_shape: tuple[int, ...] = ()
    env_dtype: Any = np.int64

    def layout(self) -> ActionLayout:
        """How the logs record these actions (:mod:`rlpipe.action_log`)."""
        if self.kind == BOX:
            return ActionLayout(BOX, low=tuple(map(float, self.low)), high=tuple(map(float, self.high)))
        start = np.broadcast_to(np.asarray(self.start, np.int64).reshape(-1), (len(self.nvec),))
        return ActionLayout(self.kind, nvec=self.nvec, start=tuple(int(v) for v in start))

    def to_env(self, action: np.ndarray) -> Any:
        """The agent's action as the environment takes it: an int (discrete), an integer array
        of the space's shape (multi-discrete), or the Gaussian sample *clipped* to the bounds
        (box). The agent keeps the unclipped sample for its log-probability."""
        if self.kind == DISCRETE:
            return int(action) + int(self.start)
        if self.kind == MULTI_DISCRETE:
            return (np.asarray(action, dtype=np.int64).reshape(self.env_shape)
                    + self.start).astype(self.env_dtype)
        return np.clip(np.asarray(action, dtype=np.float64), self.low, self.high) \
            .reshape(self.env_shape).astype(self.env_dtype)


def action_spec(space: gym.Space) -> ActionSpec:
    """The :class:`ActionSpec` of ``space``; raise :class:`UnsupportedSpace` otherwise."""
    if isinstance(space, gym.spaces.Discrete):
        return ActionSpec(DISCRETE, int(space.n), (), (int(space.n),), int(space.start))
    if isinstance(space, gym.spaces.MultiDiscrete):
        nvec = tuple(int(n) for n in np.asarray(space.nvec).reshape(-1))
        start = np.asarray(getattr(space, "start", np.zeros_like(space.nvec)), dtype=np.int64)
        return ActionSpec(MULTI_DISCRETE, sum(nvec), (len(nvec),), nvec, start,
                          env_shape=tuple(space.shape), env_dtype=space.dtype)
    if isinstance(space, gym.spaces.Box):
        if not np.issubdtype(space.dtype, np.floating):
            raise UnsupportedSpace(f"action space {describe_space(space)}: an integer Box is not "
                                   "supported (use Discrete or MultiDiscrete)")
        dim = int(np.prod(space.shape))
        return ActionSpec(BOX, dim, (dim,), low=np.asarray(space.low, np.float64).reshape(dim),
                          high=np.asarray(space.high, np.float64).reshape(dim),
                          env_shape=tuple(space.shape), env_dtype=space.dtype)
    raise UnsupportedSpace(f"action space {describe_space(space)} is not supported (rlpipe trains "
                           "Discrete, MultiDiscrete and Box actions)")


def check_spaces(observation_space: gym.Space, action_space: gym.Space) -> tuple[ObservationSpec, ActionSpec]:
    """Both specs, or :class:`UnsupportedSpace` naming the first space that cannot be trained."""
    obs, act = observation_spec(observation_space), action_spec(action_space)
    if obs.kind == "graph" and act.kind != DISCRETE:
        raise UnsupportedSpace(f"action space {describe_space(action_space)} with graph "
                               "observations: the graph agent picks one node (Discrete actions)")
    return obs, act
