"""Observation normalization: running statistics, exact state round trip, graph node features."""
from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from gymnasium.spaces import GraphInstance

from rlpipe.agents.normalize import ObservationNormalizer, RunningMeanStd


def test_batched_updates_match_the_statistics_of_all_data():
    rng = np.random.default_rng(0)
    data = rng.normal([3.0, -2.0], [0.5, 4.0], size=(1000, 2))
    rms = RunningMeanStd((2,))
    for chunk in np.array_split(data, 37):
        rms.update(chunk)
    np.testing.assert_allclose(rms.mean, data.mean(0), atol=1e-5)
    np.testing.assert_allclose(rms.var, data.var(0), rtol=1e-4)
    z = rms.normalize(data)
    assert z.dtype == np.float32
    np.testing.assert_allclose(z.mean(0), 0, atol=1e-3)
    np.testing.assert_allclose(z.std(0), 1, atol=1e-3)


def test_normalized_values_are_clipped():
    rms = RunningMeanStd((1,), clip=5.0)
    rms.update(np.zeros((100, 1)) + np.linspace(-1, 1, 100)[:, None])
    assert rms.normalize(np.array([[1e6], [-1e6]])).tolist() == [[5.0], [-5.0]]


def test_state_round_trip_is_exact_and_loads_weights_only():
    rng = np.random.default_rng(1)
    a = RunningMeanStd((3,))
    for _ in range(5):
        a.update(rng.normal(size=(7, 3)))
    buf = io.BytesIO()
    torch.save({"obs_normalizer": a.state_dict()}, buf)
    buf.seek(0)
    state = torch.load(buf, weights_only=True)["obs_normalizer"]
    assert all(t.dtype == torch.float64 and t.device.type == "cpu" for t in state.values())
    b = RunningMeanStd((3,))
    b.load_state_dict(state)
    more = rng.normal(size=(9, 3))
    a.update(more)
    b.update(more)
    x = rng.normal(size=(4, 3))
    assert a.normalize(x).tobytes() == b.normalize(x).tobytes()
    assert a.mean.tobytes() == b.mean.tobytes() and a.count == b.count


def test_state_of_another_shape_is_refused():
    with pytest.raises(ValueError, match="shape"):
        RunningMeanStd((3,)).load_state_dict(RunningMeanStd((4,)).state_dict())


def test_flat_normalizer_updates_only_when_asked():
    norm = ObservationNormalizer("flat", 2)
    obs = [np.array([1.0, 2.0], np.float32), np.array([3.0, 6.0], np.float32)]
    out = norm(obs, update=True)
    count = norm.stats.count
    assert len(out) == 2 and out[0].dtype == np.float32
    np.testing.assert_allclose(out[0] + out[1], 0, atol=1e-3)
    norm(obs, update=False)
    assert norm.stats.count == count


def test_graph_normalizer_scales_node_features_and_keeps_edges():
    rng = np.random.default_rng(2)
    graphs = [GraphInstance(rng.normal(5.0, 2.0, size=(n, 3)).astype(np.float32),
                            rng.random((n - 1, 1)).astype(np.float32),
                            np.stack([np.arange(n - 1), np.arange(1, n)], 1)) for n in (4, 6)]
    norm = ObservationNormalizer("graph", 3)
    out = norm(graphs, update=True)
    nodes = np.concatenate([g.nodes for g in out])
    np.testing.assert_allclose(nodes.mean(0), 0, atol=1e-3)
    for g, o in zip(graphs, out):
        assert o.nodes.shape == g.nodes.shape and o.edges is g.edges and o.edge_links is g.edge_links
