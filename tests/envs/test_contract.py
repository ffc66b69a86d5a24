"""The environment contract: declarations with fallbacks, step reports, probe states."""
from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

from rlpipe.envs import contract


class Bare(gym.Env):
    observation_space = gym.spaces.Box(-1, 1, (2,), np.float32)
    action_space = gym.spaces.Discrete(2)


class Declared(Bare):
    metric_names = ("Score",)
    step_summary_names = ("Load",)
    has_reference = True
    node_kind_names = ("a", "b")

    def node_kinds(self, obs):
        return np.array([0, 1, 1])

    def probe_states(self, n, seed):
        return [contract.ProbeState(obs=np.full(2, seed + i, np.float32)) for i in range(n)]


def test_every_part_has_a_fallback():
    d = contract.describe(Bare())
    assert d == contract.EnvDescription()
    assert d.node_kind_names == ("node",) and not d.has_reference and not d.has_probes
    assert contract.probe_states(Bare(), 3, 0) is None
    assert contract.node_kinds(Bare(), None, 4).tolist() == [0, 0, 0, 0]


def test_declarations_are_read_through_wrappers():
    env = gym.wrappers.TimeLimit(Declared(), 5)
    d = contract.describe(env)
    assert d.metric_names == ("Score",) and d.step_summary_names == ("Load",)
    assert d.has_reference and d.has_probes and d.node_kind_names == ("a", "b")
    assert contract.node_kinds(env, None, 3).tolist() == [0, 1, 1]
    assert contract.node_kinds(env, None, 5).tolist() == [0] * 5   # wrong size: one kind
    assert [float(p.obs[0]) for p in contract.probe_states(env, 2, 7)] == [7.0, 8.0]


def test_probe_states_must_be_probe_state_objects():
    class Wrong(Bare):
        def probe_states(self, n, seed):
            return [{"obs": 1}]

    with pytest.raises(TypeError, match="expected rlpipe.envs.contract.ProbeState"):
        contract.probe_states(Wrong(), 1, 0)


def test_step_reports_and_accuracy():
    info = {"reference_hit": True, "reference_action": 3, "valid": False,
            "step_summary": {"Load": 0.5}}
    r = contract.read_step(info, has_reference=True)
    assert (r.reference_action, r.reference_hit, r.valid, r.summary) == (3, True, False, {"Load": 0.5})
    r = contract.read_step(info, has_reference=False)       # undeclared: not read
    assert (r.reference_action, r.reference_hit, r.valid) == (-1, None, None)
    assert contract.reference_accuracy([True, False, True, True]) == 0.75
    assert contract.reference_accuracy([]) is None
    assert contract.episode_metrics({"metrics": {"Score": 2}}) == {"Score": 2.0}
    assert contract.episode_metrics({}) == {}
