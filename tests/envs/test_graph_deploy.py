"""The graph service-deployment environment: determinism, topology, masks, rewards, metrics."""
import importlib
import json
import warnings

import gymnasium as gym
import networkx as nx
import numpy as np
import pytest

import rlpipe.envs
from tests.envs import episodes
from tests.envs.episodes import same_obs
from rlpipe.config import ConfigError, EnvConfig
from rlpipe.envs.contract import ProbeState, describe
from rlpipe.envs.graph_deploy import NODE_FEATURES, GraphDeployConfig, GraphDeployEnv
from rlpipe.envs.graph_deploy.topology import link_radius
from rlpipe.train.environment import env_settings

rlpipe.envs.register()

EXPECTED_FEATURES = (
    "free_cpu_frac", "free_mem_frac", "cpu_utilization", "latency_ratio", "is_source",
    "is_cloud", "feasible", "cpu_demand_ratio", "mem_demand_ratio", "util_after",
)


def oracle_action(info):
    return int(np.argmax(info["oracle_best"]))


def run_episode(env, seed=None, policy=oracle_action, rng_seed=0):
    """Play one episode (default: the oracle's decisions); see tests/envs/episodes.py."""
    return episodes.run_episode(env, seed, policy, rng_seed)


# --------------------------------------------------------------------------- registration
def test_gymnasium_make_after_import():
    env = gym.make("rlpipe/GraphDeploy-v0", num_nodes=12)
    obs, info = env.reset(seed=0)
    assert obs.nodes.shape == (12, len(NODE_FEATURES))
    assert env.action_space.n == 12
    assert env.observation_space.contains(obs)
    env.step(oracle_action(info))
    env.close()


def test_registration_is_idempotent_and_accepts_config_kwargs():
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # gymnasium warns when an id is registered twice
        importlib.reload(rlpipe.envs)
        rlpipe.envs.register()
    env = gym.make(EnvConfig().id, **env_settings(EnvConfig()))
    obs, _ = env.reset(seed=1)
    assert obs.nodes.shape == (20, 10)
    assert env.unwrapped.metric_names == (
        "Acceptance Rate", "Mean Latency", "Mean Utilization", "Load Imbalance")
    assert env.unwrapped.step_summary_names == ("Mean Utilization", "Max Utilization")
    desc = describe(env)
    assert desc.has_reference is True and desc.has_probes is True
    assert desc.node_kind_names == ("edge", "cloud")
    assert env_settings(EnvConfig()) == {f: getattr(GraphDeployConfig(), f)
                                          for f in GraphDeployConfig.__dataclass_fields__}


def test_node_feature_order():
    assert NODE_FEATURES == EXPECTED_FEATURES


def test_render_mode_refused():
    with pytest.raises(ValueError):
        GraphDeployEnv(render_mode="rgb_array")


@pytest.mark.parametrize("kwargs, key", [
    ({"num_nodes": 2}, "env.kwargs.num_nodes: must be between 3 and 2000"),
    ({"num_nodes": 2001}, "env.kwargs.num_nodes: must be between 3 and 2000"),
    ({"num_nodes": 5, "num_cloud": 5}, "env.kwargs.num_cloud: must be < env.kwargs.num_nodes"),
    ({"demand_min": 0.5, "demand_max": 0.2}, "env.kwargs.demand_min"),
    ({"action_masking": True}, "env.kwargs.action_masking: unknown key"),
])
def test_constructor_and_config_share_one_set_of_bounds(kwargs, key):
    """The constructor builds GraphDeployConfig: its defaults and bounds, its error lines."""
    with pytest.raises(ConfigError, match=key):
        GraphDeployEnv(**kwargs)
    env = GraphDeployEnv(num_nodes=3, num_cloud=2)   # the config's smallest graph
    assert env.reset(seed=0)[0].nodes.shape == (3, 10)
    assert GraphDeployEnv().config == GraphDeployConfig()


# --------------------------------------------------------------------------- settings / determinism
def test_same_seed_same_episode_different_seed_different():
    a = run_episode(GraphDeployEnv(), seed=7, policy=None)
    b = run_episode(GraphDeployEnv(), seed=7, policy=None)
    c = run_episode(GraphDeployEnv(), seed=8, policy=None)
    assert len(a[0]) == len(b[0])
    assert all(same_obs(x, y) for x, y in zip(a[0], b[0]))
    assert a[1] == b[1]
    assert not same_obs(a[0][0], c[0][0])


# --------------------------------------------------------------------------- topology
@pytest.mark.parametrize("num_nodes", [3, 5, 20, 100])
def test_generated_graphs_are_connected(num_nodes):
    for num_cloud in sorted({0, 1, min(2, num_nodes - 1)}):
        env = GraphDeployEnv(num_nodes=num_nodes, num_cloud=num_cloud)
        for seed in range(4):
            obs, _ = env.reset(seed=seed)
            g = nx.Graph()
            g.add_nodes_from(range(num_nodes))
            g.add_edges_from(env.edge_pairs.tolist())
            assert nx.is_connected(g), (num_nodes, num_cloud, seed)
            assert obs.nodes.shape == (num_nodes, 10) and obs.nodes.dtype == np.float32
            # cloud nodes are the last num_cloud indices; edge nodes lie in the unit square
            assert env.is_cloud.tolist() == [False] * (num_nodes - num_cloud) + [True] * num_cloud
            assert np.array_equal(obs.nodes[:, 5].astype(bool), env.is_cloud)
            pos = env.positions[: num_nodes - num_cloud]
            assert np.all((pos >= 0) & (pos <= 1))
            for u, v in env.edge_pairs.tolist():
                assert u < v
                if env.is_cloud[v]:
                    assert not env.is_cloud[u]  # clouds hang off edge gateways only


def test_graphs_up_to_twenty_nodes_keep_the_fixed_radius():
    """The bounded-degree radius leaves the default (20-node) graphs exactly as before."""
    for n in (5, 12, 20):
        scaled, fixed = GraphDeployEnv(num_nodes=n), GraphDeployEnv(num_nodes=n, radius_nodes=0)
        assert scaled.link_radius == fixed.link_radius == 0.3
        for seed in range(5):
            assert same_obs(scaled.reset(seed=seed)[0], fixed.reset(seed=seed)[0])


def test_link_radius_shrinks_with_the_square_root_of_the_node_count():
    assert link_radius(0.3, 20, 20) == 0.3 and link_radius(0.3, 20, 8) == 0.3
    assert link_radius(0.3, 20, 80) == pytest.approx(0.15)
    assert link_radius(0.3, 20, 320) == pytest.approx(0.075)
    assert link_radius(0.3, 0, 320) == 0.3          # 0: fixed radius at every size
    with pytest.raises(ValueError, match="radius_nodes"):
        GraphDeployEnv(radius_nodes=-1)


def test_average_degree_stays_bounded_as_graphs_grow():
    def links_per_node(n, **kw):
        env = GraphDeployEnv(num_nodes=n, **kw)
        return np.mean([len(env.reset(seed=s)[0].edge_links) for s in range(5)]) / n

    degrees = [links_per_node(n) for n in (20, 40, 80, 160, 320)]
    assert max(degrees) < 6.5, degrees                 # bounded: about pi r0^2 20 + tree links
    assert degrees[-1] < 1.6 * degrees[0], degrees
    assert links_per_node(160, radius_nodes=0) > 5 * links_per_node(160)   # the old growth


def test_edge_links_symmetric_and_edge_features():
    env = GraphDeployEnv(num_nodes=30)
    obs, _ = env.reset(seed=2)
    links, edges = obs.edge_links, obs.edges
    e = len(env.edge_pairs)
    assert links.dtype == np.int64 and links.shape == (2 * e, 2)
    assert edges.dtype == np.float32 and edges.shape == (2 * e, 1)
    as_set = {tuple(x) for x in links.tolist()}
    assert as_set == {(v, u) for u, v in as_set}
    assert len(as_set) == 2 * e  # no duplicates, no self-loops collapsing
    assert np.array_equal(links[e:], links[:e, ::-1])
    assert np.array_equal(edges[e:], edges[:e]) and np.all(edges > 0)
    # edge-edge links: latency = 100 ms * distance + 1 ms
    p = env.positions
    for k, (u, v) in enumerate(env.edge_pairs.tolist()):
        if not env.is_cloud[v]:
            expected = (100 * np.linalg.norm(p[u] - p[v]) + 1) / 100
            assert edges[k, 0] == pytest.approx(expected, rel=1e-5)
        else:
            assert 0.4 <= edges[k, 0] <= 0.6


def test_latency_feature_is_shortest_path():
    env = GraphDeployEnv()
    obs, info = env.reset(seed=4)
    e = len(env.edge_pairs)
    g = nx.Graph()
    for (u, v), w in zip(env.edge_pairs.tolist(), obs.edges[:e, 0].astype(np.float64) * 100):
        g.add_edge(u, v, weight=w)
    observations, _, infos = run_episode(env, seed=4)
    trace = infos[-1]["episode_trace"]
    for obs_t, step in zip(observations, trace["steps"]):
        dist = nx.single_source_dijkstra_path_length(g, step["source"])
        lat = np.array([dist[i] for i in range(env.num_nodes)])
        expected = np.minimum(lat / step["budget"], 3.0)
        np.testing.assert_allclose(obs_t.nodes[:, 3], expected, rtol=1e-4, atol=1e-5)
        assert obs_t.nodes[step["source"], 4] == 1.0 and obs_t.nodes[:, 4].sum() == 1.0


# --------------------------------------------------------------------------- masks / rewards
def test_action_mask_equals_feasibility_and_reward_signs():
    env = GraphDeployEnv()
    for seed in range(3):
        observations, rewards, infos = run_episode(env, seed=seed, policy=None, rng_seed=seed)
        trace = infos[-1]["episode_trace"]
        for t, (obs, info, reward) in enumerate(zip(observations, infos, rewards)):
            x = obs.nodes
            feas = x[:, 6].astype(bool)
            mask = info["action_mask"]
            assert mask.dtype == bool and mask.shape == (env.num_nodes,)
            assert np.array_equal(mask, feas) if feas.any() else mask.all()
            # independent check from the other features: free >= demand, latency <= budget
            ok = (x[:, 0] >= x[:, 7] - 1e-6) & (x[:, 1] >= x[:, 8] - 1e-6) & (x[:, 3] <= 1 + 1e-6)
            clear = (np.abs(x[:, 0] - x[:, 7]) > 1e-5) & (np.abs(x[:, 1] - x[:, 8]) > 1e-5) \
                & (np.abs(x[:, 3] - 1) > 1e-5)
            assert np.array_equal(feas[clear], ok[clear])
            # the decision taken from this state
            a = trace["steps"][t]["action"]
            step_info = infos[t + 1]
            assert step_info["valid"] == bool(feas[a])
            if step_info["valid"]:
                assert 0.0 <= reward <= 1.0
                cost = 0.6 * x[a, 3] + 0.4 * x[a, 9]  # the features make the cost computable
                assert reward == pytest.approx(1.0 - cost, abs=1e-5)
            else:
                assert reward == -1.0
            best = info["oracle_best"]
            assert step_info["reference_hit"] == bool(best[a])
            assert step_info["reference_action"] == int(np.flatnonzero(best)[0])
            assert np.array_equal(info["reference_next"], best)
            if feas.any():
                cost_all = np.where(feas, 0.6 * x[:, 3] + 0.4 * x[:, 9], np.inf)
                assert best[int(np.argmin(cost_all))] and not best[~feas].any()
            else:
                assert best.all()


def test_early_termination_after_max_rejections():
    env = GraphDeployEnv(latency_budget_min=2.0, latency_budget_max=2.0, max_rejections=3)
    obs, info = env.reset(seed=0)
    for step in range(1, 4):
        infeasible = np.flatnonzero(~info["action_mask"])
        assert len(infeasible) > 0
        obs, reward, terminated, truncated, info = env.step(int(infeasible[-1]))
        assert reward == -1.0 and info["valid"] is False and truncated is False
        assert terminated == (step == 3)
    assert info["metrics"]["Acceptance Rate"] == 0.0
    assert info["metrics"]["Mean Latency"] == 0.0
    assert len(info["episode_trace"]["steps"]) == 3
    with pytest.raises(RuntimeError):
        env.step(0)


def test_episode_length_and_invalid_action():
    env = GraphDeployEnv(requests_per_episode=7)
    observations, rewards, infos = run_episode(env, seed=0)
    assert len(rewards) == 7
    env.reset(seed=0)
    with pytest.raises(ValueError):
        env.step(env.num_nodes)


def test_services_are_released_after_their_lifetime():
    env = GraphDeployEnv(lifetime_min=2, lifetime_max=2)
    _, _, infos = run_episode(env, seed=5)
    steps = infos[-1]["episode_trace"]["steps"]
    for t, s in enumerate(steps):
        util = np.array(s["node_values"])
        live = {steps[k]["action"] for k in (t - 1, t) if k >= 0 and steps[k]["valid"]}
        assert set(np.flatnonzero(util > 0).tolist()) == live, t


# --------------------------------------------------------------------------- info / metrics / trace
def test_metrics_summary_and_trace():
    env = GraphDeployEnv()
    observations, rewards, infos = run_episode(env, seed=9, policy=None)
    for info in infos[1:-1]:
        assert "metrics" not in info and "episode_trace" not in info
        assert set(info["step_summary"]) == set(env.step_summary_names)
    last = infos[-1]
    assert tuple(last["metrics"]) == env.metric_names
    assert all(isinstance(v, float) for v in last["metrics"].values())
    assert "deployment_accuracy" not in last  # the core computes it from reference_hit
    accepted = sum(i["valid"] for i in infos[1:])
    assert last["metrics"]["Acceptance Rate"] == pytest.approx(accepted / len(rewards))
    mean_util = np.mean([i["step_summary"]["Mean Utilization"] for i in infos[1:]])
    assert last["metrics"]["Mean Utilization"] == pytest.approx(mean_util)

    trace = last["episode_trace"]
    json.dumps(trace)  # plain Python values only
    assert set(trace) == {"episode", "num_nodes", "positions", "edges", "node_kinds",
                          "node_kind_names", "node_value_name", "focus_name", "steps"}
    assert len(trace["steps"]) == len(rewards)
    assert len(trace["positions"]) == env.num_nodes == len(trace["node_kinds"])
    assert trace["node_kinds"] == env.is_cloud.astype(int).tolist()
    ne = env.num_nodes - env.num_cloud
    for s, r, info in zip(trace["steps"], rewards, infos[1:]):
        assert set(s) == {"action", "reward", "reference", "valid", "focus", "node_values",
                          "caption", "source", "cpu", "mem", "budget"}
        assert s["reward"] == r and len(s["node_values"]) == env.num_nodes and s["reference"]
        assert s["focus"] == s["source"] and s["valid"] == info["valid"]
        eu = np.array(s["node_values"][:ne])
        assert info["step_summary"]["Mean Utilization"] == pytest.approx(eu.mean())
        assert info["step_summary"]["Max Utilization"] == pytest.approx(eu.max())
    std = np.mean([np.std(s["node_values"][:ne]) for s in trace["steps"]])
    assert last["metrics"]["Load Imbalance"] == pytest.approx(std)


def test_oracle_policy_is_perfect_and_random_is_not():
    env = GraphDeployEnv()
    def accuracy(infos):
        return np.mean([i["reference_hit"] for i in infos[1:]])

    oracle_acc = [accuracy(run_episode(env, seed=s)[2]) for s in range(5)]
    random_acc = [accuracy(run_episode(env, seed=s, policy=None, rng_seed=s)[2]) for s in range(5)]
    assert oracle_acc == [1.0] * 5
    assert np.mean(random_acc) < 0.5


# --------------------------------------------------------------------------- probes
def test_probe_states():
    kwargs = env_settings(EnvConfig())
    probes = GraphDeployEnv(**kwargs).probe_states(3, 100)  # the contract's entry point
    again = GraphDeployEnv(**kwargs).probe_states(3, 100)
    assert len(probes) == 3
    for p, q in zip(probes, again):
        assert isinstance(p, ProbeState)
        n = kwargs["num_nodes"]
        assert p.obs.nodes.shape == (n, 10)
        assert same_obs(p.obs, q.obs)
        assert p.node_kinds.sum() == kwargs["num_cloud"]
        assert np.array_equal(p.node_kinds, GraphDeployEnv.node_kinds(p.obs))
        src = p.node_values["is_source"]
        assert src.sum() == 1 and np.array_equal(src.astype(bool), p.obs.nodes[:, 4].astype(bool))
        util = p.node_values["utilization"]
        assert util.dtype == np.float32 and util.max() > 0
        np.testing.assert_allclose(util, p.obs.nodes[:, 2], rtol=1e-6)
        assert p.reference.dtype == bool and p.reference.any()
    assert not same_obs(probes[0].obs, probes[1].obs)
