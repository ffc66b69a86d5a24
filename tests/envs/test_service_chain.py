"""rlpipe/ServiceChain-v0: contract, determinism, local observations, rewards, probes, traces."""
import copy
import json

import gymnasium as gym
import networkx as nx
import numpy as np
import pytest

import rlpipe.envs
from tests.envs import episodes
from tests.envs.episodes import same_obs
from rlpipe.config import ConfigError, build
from rlpipe.envs import contract
from rlpipe.envs.service_chain import (HARDWARE_KINDS, NODE_FEATURES, ROLE_NAMES,
                                       ServiceChainConfig, ServiceChainEnv)

rlpipe.envs.register()
SERVICE_CHAIN_ID = "rlpipe/ServiceChain-v0"


def reference_action(info):
    return int(np.argmax(info[contract.REFERENCE_NEXT]))


def run_episode(env, seed=None, policy=reference_action, rng_seed=0):
    """Play one episode (default: the reference's decisions); see tests/envs/episodes.py."""
    return episodes.run_episode(env, seed, policy, rng_seed)


# --------------------------------------------------------------------------- registration, config
def test_gymnasium_make_and_declarations():
    assert rlpipe.envs.BUILTIN[SERVICE_CHAIN_ID] == "rlpipe.envs.service_chain:ServiceChainEnv"
    env = gym.make(SERVICE_CHAIN_ID, num_nodes=12)
    obs, info = env.reset(seed=0)
    assert obs.nodes.shape == (12, len(NODE_FEATURES)) and env.action_space.n == 12
    assert env.observation_space.contains(obs)
    d = contract.describe(env)
    assert d.has_reference and d.has_probes
    assert d.metric_names == ("Acceptance Rate", "Mean Latency", "Excess Latency",
                              "Mean Utilization")
    assert d.step_summary_names == ("Latency", "Mean Utilization", "Max Utilization")
    assert d.node_kind_names == ROLE_NAMES
    assert env.unwrapped.config_class is ServiceChainConfig


@pytest.mark.parametrize("kwargs, message", [
    ({"num_nodez": 5}, "env.kwargs.num_nodez: unknown key"),
    ({"num_nodes": 2}, "env.kwargs.num_nodes: must be between 3 and 1000"),
    ({"neighbours": 1.5}, "env.kwargs.neighbours: expected an integer"),
    ({"capacity_min": 4}, "env.kwargs.capacity_min: must be <= env.kwargs.capacity_max (3)"),
    ({"latency_scale": 0}, "env.kwargs.latency_scale: must be > 0"),
])
def test_config_errors_name_the_key(kwargs, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        build(ServiceChainConfig, kwargs, "env.kwargs")
    with pytest.raises(ConfigError):
        ServiceChainEnv(**kwargs)


def test_render_mode_refused_and_step_guards():
    with pytest.raises(ValueError):
        ServiceChainEnv(render_mode="rgb_array")
    env = ServiceChainEnv(num_nodes=5)
    with pytest.raises(RuntimeError):
        env.step(0)
    env.reset(seed=0)
    with pytest.raises(ValueError):
        env.step(5)


# --------------------------------------------------------------------------- determinism
def test_same_seed_same_episode_different_seed_different():
    a = run_episode(ServiceChainEnv(), seed=7, policy=None)
    b = run_episode(ServiceChainEnv(), seed=7, policy=None)
    c = run_episode(ServiceChainEnv(), seed=8, policy=None)
    assert len(a[0]) == len(b[0]) and a[1] == b[1]
    assert all(same_obs(x, y) for x, y in zip(a[0], b[0]))
    assert not same_obs(a[0][0], c[0][0])


def test_generator_state_alone_restores_the_next_episode():
    """What the trainer saves (the bit generator's state) is all a resumed env needs, and
    ``step`` draws nothing from it."""
    env = ServiceChainEnv()
    obs, info = env.reset(seed=3)
    state = copy.deepcopy(env.np_random.bit_generator.state)
    while True:
        obs, _, done, _, info = env.step(reference_action(info))
        if done:
            break
    assert env.np_random.bit_generator.state == state  # steps draw nothing
    expected = run_episode(env, policy=None, rng_seed=5)
    fresh = ServiceChainEnv()
    fresh.reset(seed=99)
    fresh.np_random.bit_generator.state = json.loads(json.dumps(state))
    again = run_episode(fresh, policy=None, rng_seed=5)
    assert all(same_obs(x, y) for x, y in zip(expected[0], again[0]))
    assert expected[1] == again[1]


# --------------------------------------------------------------------------- observation
def test_observation_is_local_state_only():
    """Node features are the node's own kind, match, slots, feasibility and the anchor flag;
    nothing about its distance to the anchor. Edge features are link latencies."""
    env = ServiceChainEnv()
    obs, info = env.reset(seed=1)
    rng = np.random.default_rng(0)
    for _ in range(20):
        x = obs.nodes
        assert x.dtype == np.float32 and x.shape == (20, 8)
        kinds = x[:, :3]
        assert np.all(kinds.sum(1) == 1)
        assert np.array_equal(np.argmax(kinds, 1), env._kind)
        free = env._cap - env._used
        np.testing.assert_allclose(x[:, 4], free / env.config.capacity_max)
        np.testing.assert_allclose(x[:, 5], env._used / env._cap, rtol=1e-6)
        assert np.array_equal(x[:, 6] > 0.5, (x[:, 3] > 0.5) & (free >= 1))
        assert x[:, 7].sum() == 1 and int(np.argmax(x[:, 7])) == env._anchor
        assert np.array_equal(info["action_mask"], x[:, 6] > 0.5) or not (x[:, 6] > 0.5).any()
        obs, _, done, _, info = env.step(int(rng.integers(20)))
        if done:
            break
    e = len(obs.edge_links) // 2
    assert np.array_equal(obs.edge_links[e:], obs.edge_links[:e, ::-1])
    lat = obs.edges[:e, 0] * env.config.link_latency_max
    np.testing.assert_allclose(lat, np.rint(lat), atol=1e-5)
    assert lat.min() >= 1 and lat.max() <= 5


def test_chains_follow_their_anchor_and_kinds_alternate():
    env = ServiceChainEnv()
    observations, _, infos = run_episode(env, seed=2)
    kinds = env._req_kind
    assert np.all(kinds[1:][~env._first[1:]] != kinds[:-1][~env._first[1:]])
    for t in range(len(infos) - 1):
        anchor = int(np.argmax(observations[t].nodes[:, 7]))
        if env._first[t]:
            assert anchor == env._ingress[env._chain[t]]
        else:  # the reference policy never rejects here: the anchor is the previous placement
            assert anchor == env._trace[t - 1]["action"]


# --------------------------------------------------------------------------- rewards, reports
def test_reference_action_has_the_best_reward_and_reports_follow_the_contract():
    env = ServiceChainEnv()
    rng = np.random.default_rng(4)
    obs, info = env.reset(seed=4)
    done = False
    while not done:
        ref = info[contract.REFERENCE_NEXT]
        lat = env._dist[int(np.argmax(obs.nodes[:, 7]))]
        outcomes = []
        for a in range(env.num_nodes):
            trial = copy.deepcopy(env)
            _, r, _, _, i = trial.step(a)
            outcomes.append((r, i))
        best = max(r for r, _ in outcomes)
        for a, (r, i) in enumerate(outcomes):
            assert isinstance(i["reference_hit"], bool) and isinstance(i["valid"], bool)
            assert i["reference_hit"] == bool(ref[a])
            assert i["reference_action"] == int(np.flatnonzero(ref)[0])
            assert i["valid"] == bool(obs.nodes[a, 6] > 0.5)
            expected = 1.0 - min(lat[a] / env.config.latency_scale, 1.5) if i["valid"] else -1.0
            assert r == pytest.approx(expected) and i["step_summary"]["Latency"] == lat[a]
            if ref[a] and i["valid"]:
                assert r == best
            elif i["valid"] and not ref[a]:
                assert r <= best
            assert set(i["step_summary"]) == set(env.step_summary_names)
        obs, _, done, _, info = env.step(int(rng.integers(env.num_nodes)))


def test_last_step_metrics_and_trace():
    env = ServiceChainEnv(chains_per_episode=3)
    observations, rewards, infos = run_episode(env, seed=5, policy=None, rng_seed=1)
    last = infos[-1]
    assert set(last["metrics"]) == set(env.metric_names)
    valid = [i["valid"] for i in infos[1:]]
    assert last["metrics"]["Acceptance Rate"] == pytest.approx(np.mean(valid))
    trace = last["episode_trace"]
    json.dumps(trace)
    assert trace["num_nodes"] == 20 and len(trace["positions"]) == 20
    assert trace["node_kind_names"] == list(HARDWARE_KINDS) and len(trace["node_kinds"]) == 20
    assert trace["node_value_name"] == "load" and trace["focus_name"].startswith("anchor")
    assert len(trace["steps"]) == len(rewards)
    for s, r, i in zip(trace["steps"], rewards, infos[1:]):
        assert set(s) == {"action", "reward", "reference", "valid", "focus", "node_values",
                          "caption"}
        assert s["reward"] == r and s["valid"] == i["valid"]
        assert i["reference_action"] == s["reference"][0]
        assert len(s["node_values"]) == 20 and isinstance(s["caption"], str)
    g = nx.Graph(trace["edges"])
    assert nx.is_connected(g)


def test_rejections_end_the_episode_and_slots_are_released():
    env = ServiceChainEnv(max_rejections=3)
    obs, info = env.reset(seed=0)
    wrong = int(np.flatnonzero(obs.nodes[:, 6] < 0.5)[0])
    for k in range(3):
        obs, r, done, _, info = env.step(wrong)
        assert r == -1.0 and info["valid"] is False and done == (k == 2)
    env = ServiceChainEnv(lifetime_min=2, lifetime_max=2, chains_per_episode=30)
    obs, info = env.reset(seed=0)
    placed = []
    for _t in range(10):
        a = reference_action(info)
        placed.append(a if obs.nodes[a, 6] > 0.5 else None)
        obs, _, _, _, info = env.step(a)
        live = [p for p in placed[-2:] if p is not None]   # placed at t-1 and t
        assert env._used.sum() == len(live)


# --------------------------------------------------------------------------- probes, kinds
def test_probe_states_are_fixed_and_well_formed():
    env = ServiceChainEnv(num_nodes=15)
    a = contract.probe_states(env, 4, 123)
    b = contract.probe_states(ServiceChainEnv(num_nodes=15), 4, 123)
    assert len(a) == 4
    for p, q in zip(a, b):
        assert same_obs(p.obs, q.obs)
        assert p.reference.dtype == bool and p.reference.shape == (15,) and p.reference.any()
        assert p.node_kinds.shape == (15,) and set(p.node_kinds.tolist()) <= {0, 1, 2}
        assert (p.node_kinds == 0).sum() == 1
        assert p.node_values["load"].shape == (15,)
    assert not same_obs(a[0].obs, a[1].obs)


def test_node_kinds_are_roles():
    env = ServiceChainEnv()
    obs, _ = env.reset(seed=0)
    roles = contract.node_kinds(env, obs, 20)
    x = obs.nodes
    assert roles[int(np.argmax(x[:, 7]))] == 0
    others = x[:, 7] < 0.5
    assert np.array_equal(roles[others] == 1, x[others, 6] > 0.5)
