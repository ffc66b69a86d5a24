"""The oracle's pure functions, checked against costs computed by hand."""
import numpy as np
import pytest

from rlpipe.envs.graph_deploy import oracle


def tiny_case():
    """4 nodes, one request: source node 0, cpu = mem demand 0.3, budget 40 ms.

    node 0: latency 0,  cpu used 0.8 of 1.0 -> free 0.2 < 0.3: infeasible (cpu)
    node 1: latency 20, used 0.2 of 1.0     -> util_after 0.5,   cost 0.6*0.5  + 0.4*0.5   = 0.50
    node 2: latency 10, used 0.575 of 1.0   -> util_after 0.875, cost 0.6*0.25 + 0.4*0.875 = 0.50
    node 3: latency 50 > 40 (cloud, 8.0 capacity): infeasible (latency)
    node 4: latency 30, used 0.0 of 0.5     -> util_after 0.6,   cost 0.6*0.75 + 0.4*0.6   = 0.69
    """
    return dict(
        latency=np.array([0.0, 20.0, 10.0, 50.0, 30.0]),
        budget=40.0,
        cpu_used=np.array([0.8, 0.2, 0.575, 0.0, 0.0]),
        cpu_cap=np.array([1.0, 1.0, 1.0, 8.0, 0.5]),
        mem_used=np.array([0.0, 0.2, 0.575, 0.0, 0.0]),
        mem_cap=np.array([1.0, 1.0, 1.0, 8.0, 0.5]),
        cpu_demand=0.3,
        mem_demand=0.3,
    )


def test_feasibility_by_hand():
    c = tiny_case()
    feas = oracle.feasible_mask(c["latency"], c["budget"], c["cpu_cap"] - c["cpu_used"],
                                c["mem_cap"] - c["mem_used"], c["cpu_demand"], c["mem_demand"])
    assert feas.tolist() == [False, True, True, False, True]


def test_costs_by_hand():
    c = tiny_case()
    cost = oracle.node_cost(**c)
    assert cost[1] == pytest.approx(0.6 * 20 / 40 + 0.4 * 0.5)
    assert cost[2] == pytest.approx(0.6 * 10 / 40 + 0.4 * 0.875)
    assert cost[4] == pytest.approx(0.6 * 30 / 40 + 0.4 * 0.5 * (0.3 / 0.5 + 0.3 / 0.5))
    ua = oracle.util_after(c["cpu_used"], c["cpu_cap"], c["mem_used"], c["mem_cap"], 0.3, 0.3)
    assert ua[2] == pytest.approx(0.875)


def test_best_set_ties_count():
    c = tiny_case()
    # nodes 1 and 2 tie at 0.50 (up to float rounding); node 0 would be cheaper but is infeasible
    assert oracle.oracle_best(**c).tolist() == [False, True, True, False, False]


def test_best_set_breaks_tie_beyond_tolerance():
    c = tiny_case()
    c["latency"] = c["latency"].copy()
    c["latency"][1] += 1e-4  # cost of node 1 grows by 1.5e-6 > 1e-9
    assert oracle.oracle_best(**c).tolist() == [False, False, True, False, False]


def test_best_set_direct():
    cost = np.array([0.5, 0.2, 0.2 + 5e-10, 0.2 + 1e-6, 0.1])
    feas = np.array([True, True, True, True, False])
    assert oracle.best_set(cost, feas).tolist() == [False, True, True, False, False]


def test_no_feasible_node_means_every_node_is_best():
    c = tiny_case()
    c["budget"] = 5.0  # only node 0 within budget, and it lacks cpu
    best = oracle.oracle_best(**c)
    assert best.dtype == bool and best.all()
    assert oracle.best_set(np.zeros(3), np.zeros(3, dtype=bool)).tolist() == [True] * 3


def test_feasible_costs_lie_in_unit_interval():
    rng = np.random.default_rng(0)
    n = 1000
    cap = rng.uniform(0.5, 1.0, n)
    used = cap * rng.uniform(0, 1, n)
    lat = rng.uniform(0, 150, n)
    cost = oracle.node_cost(lat, 100.0, used, cap, used, cap, 0.2, 0.2)
    feas = oracle.feasible_mask(lat, 100.0, cap - used, cap - used, 0.2, 0.2)
    assert feas.any() and (~feas).any()
    assert np.all((cost[feas] >= 0) & (cost[feas] <= 1))
