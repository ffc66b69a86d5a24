"""Rollout exports (experiment.export_rollouts): the arrays the update used, in the documented
files, read back by rlpipe.exports.load_rollout; off by default; trimmed on resume."""
from __future__ import annotations

import csv
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest

from rlpipe import checkpoints as ckpt
from rlpipe.train.buffer import compute_gae
from rlpipe.errors import InputFileError
from rlpipe.exports import GRAPH_ARRAYS, STEP_ARRAYS, graph_observation, list_rollouts, load_rollout
from rlpipe.train.run import train
from tests.helpers import TINY_PARAMS, deep_update, tiny, with_env


class WalkEnv(gym.Env):
    """A flat env (observation [3]) that terminates or truncates (time limit 6)."""

    observation_space = gym.spaces.Box(-1.0, 1.0, (3,), np.float32)
    action_space = gym.spaces.Discrete(2)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        return self._obs(), {}

    def _obs(self):
        return np.full(3, self.t / 10, np.float32)

    def step(self, action):
        self.t += 1
        terminated = action == 1 and self.t >= 3
        return self._obs(), float(action), terminated, False, {}


gym.register("RlpipeTest/Walk-v0", entry_point=WalkEnv, max_episode_steps=6)


def steps_csv(root: Path) -> list[dict]:
    with open(root / "training_output" / "steps.csv", newline="") as f:
        return list(csv.DictReader(f))


def exports(root: Path) -> list[tuple[int, Path]]:
    return list_rollouts(root / "training_output" / "rollouts")


@pytest.fixture(scope="module")
def graph_run(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("export_graph")
    assert train(tiny(experiment={"export_rollouts": 2}), root, console=False) == 0
    return root


def test_graph_export_holds_what_the_update_used(graph_run):
    files = exports(graph_run)
    assert [(e, p.name) for e, p in files] == [(8, "rollout_ep000008.npz"), (16, "rollout_ep000016.npz")]
    steps = steps_csv(graph_run)
    p = tiny().train
    for (episode, path), update in zip(files, (2, 4)):
        a = load_rollout(path)
        assert set(a) == set(STEP_ARRAYS) | set(GRAPH_ARRAYS)
        rows = [s for s in steps if episode - 4 < int(s["Episode"]) <= episode]
        assert len(a["step"]) == len(rows)
        assert (a["update"] == update).all()
        assert a["episode"].tolist() == [int(s["Episode"]) for s in rows]
        assert a["step"].tolist() == [int(s["Step"]) for s in rows]
        assert a["action"].tolist() == [int(s["Action"]) for s in rows]
        for name, column in (("reward", "Reward"), ("value", "Value"), ("log_prob", "Log Prob")):
            np.testing.assert_allclose(a[name], [float(s[column]) for s in rows], rtol=1e-6,
                                       err_msg=name)
        for ep in np.unique(a["episode"]):  # GAE of each (terminated) episode, recomputed
            sel = a["episode"] == ep
            assert a["done"][sel].tolist() == [False] * (sel.sum() - 1) + [True]
            adv, ret = compute_gae(a["reward"][sel].astype(np.float64), a["value"][sel], 0.0,
                                   p.gamma, p.gae_lambda)
            np.testing.assert_allclose(a["advantage"][sel], adv, rtol=1e-5, atol=1e-6)
            np.testing.assert_allclose(a["return"][sel], ret, rtol=1e-5, atol=1e-6)
        # one graph per step: 8 nodes of 10 features, edges with their links
        assert a["node_offsets"].shape == (len(rows) + 1,)
        assert np.diff(a["node_offsets"]).tolist() == [8] * len(rows)
        assert a["nodes"].shape == (8 * len(rows), 10) and a["nodes"].dtype == np.float32
        nodes, edges, links = graph_observation(a, len(rows) - 1)
        assert nodes.shape == (8, 10) and edges.shape[1] == 1 and links.shape == (len(edges), 2)
        assert 0 <= links.min() and links.max() < 8


def test_flat_export_is_parquet_with_the_observation_shape(tmp_path):
    import pyarrow.parquet as pq

    p = with_env(deep_update(TINY_PARAMS, {"train": {"episodes": 8},
                                           "experiment": {"export_rollouts": 1}}),
                 {"id": "RlpipeTest/Walk-v0"})
    from rlpipe.config import Params

    assert train(Params.from_dict(p), tmp_path, console=False) == 0
    files = exports(tmp_path)
    assert [p.name for _, p in files] == ["rollout_ep000004.parquet", "rollout_ep000008.parquet"]
    table = pq.read_table(files[-1][1])
    assert table.column_names == [*STEP_ARRAYS, "observation"]
    a = load_rollout(files[-1][1])
    n = len(a["step"])
    assert a["observation"].shape == (n, 3) and a["observation"].dtype == np.float32
    # the observation is the one the action was taken in: t/10 at step t + 1
    np.testing.assert_allclose(a["observation"][:, 0], (a["step"] - 1) / 10, rtol=1e-6)
    assert (a["update"] == 2).all() and set(a["episode"].tolist()) == {5, 6, 7, 8}
    ends = np.flatnonzero(a["done"])
    assert len(ends) == 4 and ends[-1] == n - 1
    steps = steps_csv(tmp_path)
    assert a["action"].tolist() == [int(s["Action"]) for s in steps if int(s["Episode"]) > 4]


def test_parquet_keeps_the_shape_of_array_observations_and_vector_actions(tmp_path):
    from rlpipe.events import RolloutData
    from rlpipe.exports import write_rollout

    t = 5
    obs = [np.arange(6, dtype=np.float32).reshape(2, 3) + i for i in range(t)]
    data = RolloutData(
        update=3, episode=np.ones(t, np.int64), step=np.arange(1, t + 1),
        actions=np.linspace(-1, 1, 2 * t, dtype=np.float32).reshape(t, 2),
        log_probs=np.zeros(t, np.float32), values=np.zeros(t, np.float32),
        rewards=np.ones(t, np.float32), dones=np.arange(t) == t - 1,
        advantages=np.zeros(t, np.float32), returns=np.zeros(t, np.float32), observations=obs)
    path = write_rollout(tmp_path, data, episode=1)
    assert path.name == "rollout_ep000001.parquet"
    a = load_rollout(path)
    np.testing.assert_array_equal(a["observation"], np.stack(obs))
    np.testing.assert_array_equal(a["action"], data.actions)
    assert a["done"].tolist() == [False] * 4 + [True] and (a["update"] == 3).all()


def test_export_is_off_by_default(reference):
    assert tiny().experiment.export_rollouts == 0
    assert not (reference / "training_output" / "rollouts").exists()


def test_resume_trims_exports_and_continues_them(tmp_path):
    """Every update exported; a run that lost its newest checkpoint (episode 12) resumes from 8:
    the export of episode 12 is removed and rewritten, and all equal an uninterrupted run's."""
    every = {"experiment": {"export_rollouts": 1}}
    full = tmp_path / "full"
    assert train(tiny(**every), full, console=False) == 0
    root = tmp_path / "resumed"
    assert train(tiny(train={"episodes": 12}, **every), root, console=False) == 0
    ckpt.list_checkpoints(root / "checkpoints")[0][1].unlink()
    stale = exports(root)[-1][1]
    stale.write_bytes(b"written past the checkpoint")
    assert train(tiny(**every), root, console=False) == 0
    assert [e for e, _ in exports(root)] == [e for e, _ in exports(full)] == [4, 8, 12, 16]
    for (_, a), (_, b) in zip(exports(full), exports(root)):
        la, lb = load_rollout(a), load_rollout(b)
        assert la.keys() == lb.keys()
        for k in la:
            np.testing.assert_array_equal(la[k], lb[k], err_msg=k)
    assert "removed 1 rollout exports past episode 8" in (
        root / "training_output" / "agent_training.log").read_text()


def test_load_rollout_errors_name_the_file(tmp_path):
    with pytest.raises(InputFileError, match="missing.npz: file not found"):
        load_rollout(tmp_path / "missing.npz")
    bad = tmp_path / "rollout_ep000001.parquet"
    bad.write_bytes(b"not parquet")
    with pytest.raises(InputFileError, match="rollout_ep000001.parquet: not a readable rollout export"):
        load_rollout(bad)
    np.savez(tmp_path / "other.npz", x=np.zeros(3))
    with pytest.raises(InputFileError, match="not a rollout export \\(missing update"):
        load_rollout(tmp_path / "other.npz")
