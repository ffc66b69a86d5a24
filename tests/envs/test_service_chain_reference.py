"""The service-chain reference solver and topology, checked against brute force on small graphs."""
import itertools

import networkx as nx
import numpy as np
import pytest

from rlpipe.envs import contract
from rlpipe.envs.service_chain import ServiceChainEnv, reference
from rlpipe.envs.service_chain.topology import all_pairs_latency, knn_topology


def brute_force_latency(n, pairs, weights, source):
    """Minimum total latency from ``source`` to every node over *all* simple paths."""
    g = nx.Graph()
    g.add_nodes_from(range(n))
    for (u, v), w in zip(pairs.tolist(), weights.tolist()):
        g.add_edge(u, v, weight=w)
    best = np.full(n, np.inf)
    best[source] = 0.0
    for target in range(n):
        for path in nx.all_simple_paths(g, source, target):
            best[target] = min(best[target], sum(g[a][b]["weight"] for a, b in zip(path, path[1:])))
    return best


def brute_force_reference(lat, feasible):
    """The reference set by enumeration: every feasible node no other feasible node beats."""
    n = len(lat)
    if not any(feasible):
        return [True] * n
    return [bool(feasible[v]) and all(lat[v] <= lat[u] for u in range(n) if feasible[u])
            for v in range(n)]


@pytest.mark.parametrize("seed", range(6))
def test_shortest_latencies_match_all_simple_paths(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(3, 8))
    pairs = knn_topology(rng.uniform(size=(n, 2)), int(rng.integers(1, 3)))
    weights = rng.integers(1, 6, size=len(pairs))
    dist = all_pairs_latency(n, pairs, weights)
    for s in range(n):
        np.testing.assert_array_equal(dist[s], brute_force_latency(n, pairs, weights, s))


def test_reference_set_by_enumeration_with_ties_and_no_feasible_node():
    lat = np.array([0.0, 3.0, 2.0, 2.0, 5.0])
    for feasible in itertools.product([False, True], repeat=5):
        feasible = np.array(feasible)
        got = reference.reference_set(lat, feasible)
        assert got.tolist() == brute_force_reference(lat, feasible)
    # ties count: nodes 2 and 3 are both 2 ms away
    assert reference.reference_set(lat, np.array([0, 1, 1, 1, 1], bool)).tolist() == \
        [False, False, True, True, False]
    assert reference.reference_latency(lat, np.zeros(5, bool)) != \
        reference.reference_latency(lat, np.zeros(5, bool))  # nan when nothing is feasible


def test_feasible_mask_needs_kind_and_a_free_slot():
    kinds, free = np.array([0, 1, 1, 2]), np.array([1, 0, 2, 1])
    assert reference.feasible_mask(kinds, free, 1).tolist() == [False, False, True, False]


@pytest.mark.parametrize("seed", range(3))
def test_environment_reference_matches_brute_force_along_episodes(seed):
    """In real episodes on 7-node networks: every step's reference set equals the brute-force
    set computed from the network, the anchor, the kinds and the slots."""
    env = ServiceChainEnv(num_nodes=7, neighbours=2, chains_per_episode=4)
    rng = np.random.default_rng(seed)
    obs, info = env.reset(seed=seed)
    e = len(obs.edge_links) // 2
    pairs = obs.edge_links[:e]
    weights = np.rint(obs.edges[:e, 0] * env.config.link_latency_max)
    dist = {s: brute_force_latency(7, pairs, weights, s) for s in range(7)}
    done = False
    while not done:
        x = obs.nodes
        anchor = int(np.argmax(x[:, 7]))
        feasible = x[:, 6] > 0.5
        assert info[contract.REFERENCE_NEXT].tolist() == brute_force_reference(dist[anchor], feasible)
        action = int(rng.integers(7))
        obs, reward, done, _, info = env.step(action)


@pytest.mark.parametrize("n", [20, 40, 200])
def test_topology_connected_with_bounded_degree(n):
    degrees = []
    for seed in range(5):
        pos = np.random.default_rng(seed).uniform(size=(n, 2))
        pairs = knn_topology(pos, 3)
        assert np.all(pairs[:, 0] < pairs[:, 1])
        assert len({tuple(p) for p in pairs.tolist()}) == len(pairs)
        g = nx.Graph(pairs.tolist())
        g.add_nodes_from(range(n))
        assert nx.is_connected(g)
        assert min(d for _, d in g.degree()) >= 3
        degrees.append(2 * len(pairs) / n)
    assert 3.0 <= np.mean(degrees) <= 5.0  # the same density at every size
