"""Gymnasium spaces as JSON and back, for an exported policy's ``metadata.json``.

The spaces rlpipe trains (:mod:`rlpipe.agents.spaces`): ``Box``, ``Discrete``, ``MultiDiscrete``,
``MultiBinary``, ``Tuple`` and ``Dict`` of these, and ``Graph`` with ``Box`` node and edge
features. Bounds are written as nested lists (``inf`` as the strings ``"inf"`` / ``"-inf"``, so
the file stays strict JSON). Imports no torch.
"""
from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np


class SpaceCodecError(ValueError):
    """A space (or its JSON) this codec does not handle; one line naming it."""


def _num(v: float) -> Any:
    return ("inf" if v > 0 else "-inf") if np.isinf(v) else float(v)


def _bounds(a: np.ndarray) -> Any:
    return np.vectorize(_num, otypes=[object])(a).tolist() if a.ndim else _num(float(a))


def _unbounds(v: Any) -> np.ndarray:
    return np.vectorize(float, otypes=[np.float64])(np.asarray(v, dtype=object))


def space_to_json(space: gym.Space) -> dict[str, Any]:
    """A JSON-ready dict that :func:`space_from_json` turns back into an equal space."""
    if isinstance(space, gym.spaces.Box):
        return {"type": "Box", "shape": list(space.shape), "dtype": str(space.dtype),
                "low": _bounds(space.low), "high": _bounds(space.high)}
    if isinstance(space, gym.spaces.Discrete):
        return {"type": "Discrete", "n": int(space.n), "start": int(space.start)}
    if isinstance(space, gym.spaces.MultiDiscrete):
        return {"type": "MultiDiscrete", "nvec": np.asarray(space.nvec).tolist(),
                "start": np.asarray(space.start).tolist(), "dtype": str(space.dtype)}
    if isinstance(space, gym.spaces.MultiBinary):
        return {"type": "MultiBinary", "n": np.asarray(space.n).tolist()}
    if isinstance(space, gym.spaces.Tuple):
        return {"type": "Tuple", "spaces": [space_to_json(s) for s in space.spaces]}
    if isinstance(space, gym.spaces.Dict):
        return {"type": "Dict", "spaces": {k: space_to_json(s) for k, s in space.spaces.items()}}
    if isinstance(space, gym.spaces.Graph):
        edge = None if space.edge_space is None else space_to_json(space.edge_space)
        return {"type": "Graph", "node_space": space_to_json(space.node_space), "edge_space": edge}
    raise SpaceCodecError(f"space {type(space).__name__} cannot be written to metadata.json")


def space_from_json(data: dict[str, Any]) -> gym.Space:
    """The space :func:`space_to_json` wrote; :class:`SpaceCodecError` for anything else."""
    try:
        kind = data["type"]
        if kind == "Box":
            dtype = np.dtype(data["dtype"])
            return gym.spaces.Box(_unbounds(data["low"]).astype(dtype),
                                  _unbounds(data["high"]).astype(dtype),
                                  shape=tuple(data["shape"]), dtype=dtype)
        if kind == "Discrete":
            return gym.spaces.Discrete(int(data["n"]), start=int(data["start"]))
        if kind == "MultiDiscrete":
            return gym.spaces.MultiDiscrete(np.asarray(data["nvec"]), dtype=np.dtype(data["dtype"]),
                                            start=np.asarray(data["start"]))
        if kind == "MultiBinary":
            return gym.spaces.MultiBinary(data["n"])
        if kind == "Tuple":
            return gym.spaces.Tuple([space_from_json(s) for s in data["spaces"]])
        if kind == "Dict":
            return gym.spaces.Dict({k: space_from_json(s) for k, s in data["spaces"].items()})
        if kind == "Graph":
            edge = data["edge_space"]
            return gym.spaces.Graph(space_from_json(data["node_space"]),
                                    None if edge is None else space_from_json(edge))
    except SpaceCodecError:
        raise
    except (KeyError, TypeError, ValueError) as e:
        raise SpaceCodecError(f"unreadable space description ({type(e).__name__}: {e})") from None
    raise SpaceCodecError(f"unknown space type {data.get('type')!r}")
