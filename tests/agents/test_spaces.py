"""Which spaces train, how observations are flattened and actions sent to the environment."""
from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from gymnasium import spaces

from rlpipe.agents.spaces import (UnsupportedSpace, action_spec, check_spaces, describe_space,
                                  observation_spec)

GRAPH = spaces.Graph(node_space=spaces.Box(0, 1, (4,)), edge_space=spaces.Box(0, 1, (1,)))


def test_box_of_any_shape_is_flattened():
    spec = observation_spec(spaces.Box(-1, 1, (3, 4)))
    assert spec.kind == "flat" and spec.dim == 12
    obs = np.arange(12, dtype=np.float64).reshape(3, 4)
    out = spec.encode(obs)
    assert out.dtype == np.float32 and out.shape == (12,)
    np.testing.assert_array_equal(out, np.arange(12))


def test_dict_and_tuple_flatten_with_gymnasium_utilities():
    space = spaces.Dict({"pos": spaces.Box(-1, 1, (2,)), "mode": spaces.Discrete(3)})
    spec = observation_spec(space)
    assert spec.dim == 5
    obs = {"pos": np.array([0.5, -0.5], np.float32), "mode": 2}
    np.testing.assert_array_equal(spec.encode(obs), spaces.utils.flatten(space, obs))
    # Discrete becomes one-hot: the last three entries (keys are sorted: mode, pos)
    assert spec.encode(obs).tolist() == [0, 0, 1, 0.5, -0.5]
    tup = spaces.Tuple((spaces.MultiBinary(3), spaces.MultiDiscrete([2, 2])))
    assert observation_spec(tup).dim == 3 + 4
    assert observation_spec(spaces.Discrete(5)).encode(3).tolist() == [0, 0, 0, 1, 0]


def test_graph_observations_stay_graphs():
    spec = observation_spec(GRAPH)
    assert spec.kind == "graph" and spec.dim == 4


@pytest.mark.parametrize("space, named", [
    (spaces.Text(8), "Text"),
    (spaces.Sequence(spaces.Box(0, 1, (2,))), "Sequence"),
    (spaces.Tuple((GRAPH, spaces.Box(0, 1, (2,)))), "Tuple"),
    (spaces.Dict({"g": GRAPH}), "Dict"),
])
def test_unsupported_observation_spaces_are_named_in_one_line(space, named):
    with pytest.raises(UnsupportedSpace) as e:
        observation_spec(space)
    msg = str(e.value)
    assert "\n" not in msg and named in msg and "observation space" in msg


def test_long_space_descriptions_stay_one_bounded_line():
    box = spaces.Box(low=np.linspace(-1, 0, 500), high=np.ones(500))
    text = describe_space(box)
    assert "\n" not in text and len(text) <= 160


def test_discrete_action_goes_to_env_with_its_start():
    spec = action_spec(spaces.Discrete(3, start=-1))
    assert spec.kind == "discrete" and spec.n_outputs == 3 and spec.shape == ()
    assert spec.to_env(np.int64(0)) == -1 and isinstance(spec.to_env(np.int64(2)), int)


def test_multi_discrete_action_is_per_component():
    space = spaces.MultiDiscrete(np.array([[3, 4], [2, 5]]), start=np.array([[0, 1], [0, 0]]))
    spec = action_spec(space)
    assert spec.kind == "multi_discrete" and spec.nvec == (3, 4, 2, 5)
    assert spec.n_outputs == 14 and spec.shape == (4,)
    a = spec.to_env(np.array([2, 3, 1, 4]))
    assert a.shape == (2, 2) and a.tolist() == [[2, 4], [1, 4]]
    assert space.contains(a)


def test_box_action_is_clipped_reshaped_and_cast_for_the_env():
    space = spaces.Box(low=np.array([[-2.0, 0.0]]), high=np.array([[2.0, 1.0]]), dtype=np.float32)
    spec = action_spec(space)
    assert spec.kind == "box" and spec.shape == (2,) and spec.n_outputs == 2
    a = spec.to_env(np.array([5.0, -0.5], np.float32))
    assert a.shape == (1, 2) and a.dtype == np.float32 and a.tolist() == [[2.0, 0.0]]
    assert space.contains(a)
    inside = spec.to_env(np.array([0.25, 0.5], np.float32))
    assert inside.tolist() == [[0.25, 0.5]]


def test_unsupported_action_spaces():
    for space, named in [(spaces.MultiBinary(3), "MultiBinary"),
                         (spaces.Box(0, 3, (2,), dtype=np.int64), "integer Box"),
                         (spaces.Tuple((spaces.Discrete(2), spaces.Discrete(2))), "Tuple")]:
        with pytest.raises(UnsupportedSpace, match=named):
            action_spec(space)
    with pytest.raises(UnsupportedSpace, match="graph"):
        check_spaces(GRAPH, spaces.Box(-1, 1, (2,)))


def test_installed_envs_have_supported_spaces():
    for env_id in ("CartPole-v1", "Pendulum-v1", "FrozenLake-v1", "Acrobot-v1"):
        env = gym.make(env_id)
        obs, act = check_spaces(env.observation_space, env.action_space)
        assert obs.kind == "flat"
        env.close()
