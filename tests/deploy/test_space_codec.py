"""Spaces in metadata.json: every space rlpipe trains survives the JSON round trip (strict JSON:
infinite bounds as strings); anything else is refused in one line."""
from __future__ import annotations

import json

import gymnasium as gym
import numpy as np
import pytest

from rlpipe.deploy.space_codec import SpaceCodecError, space_from_json, space_to_json

S = gym.spaces
SPACES = [
    S.Box(-np.inf, np.inf, (10,), np.float32),
    S.Box(np.array([-1.0, 0.0]), np.array([1.0, np.inf]), dtype=np.float64),
    S.Box(-2.0, 2.0, (1,), np.float32),
    S.Discrete(5, start=-2),
    S.MultiDiscrete([3, 4], start=[1, 0]),
    S.MultiBinary(3),
    S.Dict({"a": S.Discrete(2), "b": S.Tuple([S.Box(0, 1, (2,)), S.MultiBinary(2)])}),
    S.Graph(S.Box(-np.inf, np.inf, (8,), np.float32), S.Box(0.0, 1.0, (1,), np.float32)),
    S.Graph(S.Box(0.0, 1.0, (3,), np.float32), None),
]


@pytest.mark.parametrize("space", SPACES, ids=lambda s: type(s).__name__)
def test_round_trip(space):
    text = json.dumps(space_to_json(space), allow_nan=False)
    assert space_from_json(json.loads(text)) == space


def test_unsupported_spaces_are_refused_in_one_line():
    with pytest.raises(SpaceCodecError, match="Text"):
        space_to_json(S.Text(4))
    with pytest.raises(SpaceCodecError, match="unknown space type 'Sequence'"):
        space_from_json({"type": "Sequence"})
    with pytest.raises(SpaceCodecError, match="unreadable"):
        space_from_json({"type": "Box", "shape": [2]})
