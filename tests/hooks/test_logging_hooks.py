"""Logging hooks: files read back, CSV == TensorBoard, track() reaches both, captures' shapes."""
from __future__ import annotations

import csv
import json
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

import rlpipe
from rlpipe.config import Params
from rlpipe.train.run import train
from tests.helpers import EPISODES, STEPS, TINY_PARAMS, UPDATES, deep_update, with_env


class CountingEnv(gym.Env):
    """A flat env without oracle: reports a custom metric only from its 4th episode on and
    calls rlpipe.track() every step."""

    observation_space = gym.spaces.Box(-1.0, 1.0, (3,), np.float32)
    action_space = gym.spaces.Discrete(3)

    def __init__(self):
        self.episodes = 0

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        self.episodes += 1
        return self.np_random.uniform(-1, 1, 3).astype(np.float32), {}

    def step(self, action):
        self.t += 1
        rlpipe.track("Env Steps Seen", float(self.t))
        done = self.t >= 5 + int(self.np_random.integers(3))
        info = {}
        if done:
            info["metrics"] = {"Action Share": float(action == 1)}
            if self.episodes >= 4:
                info["metrics"]["Late Metric"] = 0.5
        return (self.np_random.uniform(-1, 1, 3).astype(np.float32), float(action == 1), done, False, info)


gym.register("RlpipeTest/Counting-v0", entry_point=CountingEnv)


def read_csv(path: Path) -> tuple[list[str], list[list[str]]]:
    rows = list(csv.reader(path.open()))
    return rows[0], rows[1:]


@pytest.fixture(scope="module")
def graph_run(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("graph")
    assert train(Params.from_dict(TINY_PARAMS), root, console=False) == 0
    return root / "training_output"


@pytest.fixture(scope="module")
def flat_run(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("flat")
    p = with_env(deep_update(TINY_PARAMS, {"train": {"episodes": 12}}), {"id": "RlpipeTest/Counting-v0"})
    assert train(Params.from_dict(p), root, console=False) == 0
    return root / "training_output"


def test_episode_csv_header_and_rows(graph_run):
    header, rows = read_csv(graph_run / "episodes.csv")
    assert header == EPISODES + ["Acceptance Rate", "Mean Latency", "Mean Utilization", "Load Imbalance"]
    assert [int(r[0]) for r in rows] == list(range(1, 17))
    for r in rows:
        assert len(r) == len(header)
        cum, length, imm = float(r[2]), int(r[6]), float(r[1])
        assert imm == pytest.approx(cum / length)
        assert 0.0 <= float(r[8]) <= 1.0
    # losses are empty for the first rollout (4 envs), then filled
    assert all(r[3] == "" for r in rows[:4]) and all(r[3] != "" for r in rows[4:])
    # Mean Episode Reward = mean of the last summary_window (4) returns
    returns = [float(r[2]) for r in rows]
    assert float(rows[9][7]) == pytest.approx(np.mean(returns[6:10]))


def test_updates_and_steps_csv(graph_run):
    header, ups = read_csv(graph_run / "updates.csv")
    assert header == UPDATES
    assert [int(u[0]) for u in ups] == [1, 2, 3, 4] and [int(u[2]) for u in ups] == [4, 8, 12, 16]
    _, eps = read_csv(graph_run / "episodes.csv")
    assert int(ups[-1][1]) == sum(int(e[6]) for e in eps)  # Global Step = all env steps
    header, steps = read_csv(graph_run / "steps.csv")
    assert header == STEPS + ["Mean Utilization", "Max Utilization"]
    assert len(steps) == sum(int(e[6]) for e in eps)
    assert [int(s[2]) for s in steps] == list(range(1, len(steps) + 1))
    for s in steps:
        assert s[9] in ("0", "1") and s[8] != ""
    text = (graph_run / "steps.csv").read_text() + (graph_run / "updates.csv").read_text()
    assert "tensor" not in text and "[" not in text and "array" not in text


def test_tensorboard_matches_csv(graph_run):
    acc = EventAccumulator(str(graph_run / "tensorboard"))
    acc.Reload()
    tags = set(acc.Tags()["scalars"])
    for tag in ("Reward / Total reward", "Loss / Policy loss", "Policy / Entropy",
                "Performance / Deployment accuracy", "Performance / Acceptance Rate"):
        assert tag in tags
    _, eps = read_csv(graph_run / "episodes.csv")
    tb = {e.step: e.value for e in acc.Scalars("Reward / Total reward")}
    assert sorted(tb) == list(range(1, 17))
    for r in eps:
        assert tb[int(r[0])] == pytest.approx(float(r[2]), rel=1e-6)
    _, ups = read_csv(graph_run / "updates.csv")
    tb_loss = {e.step: e.value for e in acc.Scalars("Loss / Policy loss")}
    assert tb_loss == pytest.approx({int(u[2]): float(u[3]) for u in ups}, rel=1e-6)


def test_text_log_events(graph_run):
    log = (graph_run / "agent_training.log").read_text().splitlines()
    assert "run start" in log[0] and "params digest" in log[0]
    assert any("checkpoint saved" in l for l in log)
    assert any("new best mean episode reward" in l for l in log)
    assert "finished: 16 episodes" in log[-1]
    assert all(l[:4].isdigit() and l[4] == "-" for l in log)  # timestamped


def test_captures_shapes(graph_run):
    cap = graph_run / "captures"
    index = json.loads((cap / "index.json").read_text())["captures"]
    assert [e["episode"] for e in index] == [8, 16]
    emb = np.load(cap / index[-1]["embeddings"])
    n = emb["embeddings"].shape[0]
    assert emb["embeddings"].shape == (n, 16)
    for key in ("graph", "node", "node_kind", "value_is_source", "value_utilization", "chosen",
                "reference", "probs"):
        assert emb[key].shape == (n,), key
    assert emb["node_kind_names"].tolist() == ["edge", "cloud"]
    assert emb["node_kind"].sum() == len(np.unique(emb["graph"]))  # one cloud node per probe graph
    assert emb["chosen"].sum() == len(np.unique(emb["graph"]))  # one chosen node per probe graph
    att = np.load(cap / index[-1]["attention"])
    nodes = int(att["num_nodes"])
    assert int(att["layers"]) == 2 and att["node_labels"].shape == (nodes,)
    assert att["node_kinds"].tolist() == [0] * (nodes - 1) + [1]
    assert att["node_labels"].tolist()[-2:] == [f"E{nodes - 2}", "C0"]
    for l in range(2):
        ei, alpha = att[f"edge_index_{l}"], att[f"alpha_{l}"]
        assert ei.shape[0] == 2 and alpha.shape == (ei.shape[1], 2)
        self_loops = (ei[0] == ei[1]).sum()
        assert self_loops == nodes  # GATConv's self-loops are included
        # attention of each target node sums to 1 per head
        sums = np.zeros((nodes, 2))
        np.add.at(sums, ei[1], alpha)
        np.testing.assert_allclose(sums, 1.0, rtol=1e-4)
    trace = json.loads((cap / index[-1]["trace"]).read_text())
    assert trace["episode"] == 16 and len(trace["steps"]) > 0 and len(trace["positions"]) == 8


def test_flat_env_without_oracle_and_custom_metrics(flat_run):
    header, rows = read_csv(flat_run / "episodes.csv")
    assert header == EPISODES + ["Action Share", "Late Metric"]
    assert all(r[8] == "" for r in rows)  # Deployment Accuracy empty, not 0
    late = header.index("Late Metric")
    # column appeared at episode 4 of each env: earlier rows empty, later rows 0.5
    assert rows[0][late] == "" and rows[-1][late] == "0.5"
    uh, ups = read_csv(flat_run / "updates.csv")
    assert uh[-1] == "Env Steps Seen" and all(float(u[-1]) > 1.0 for u in ups)
    acc = EventAccumulator(str(flat_run / "tensorboard"))
    acc.Reload()
    tb = {e.step: e.value for e in acc.Scalars("Custom / Env Steps Seen")}
    assert tb == pytest.approx({int(u[2]): float(u[-1]) for u in ups}, rel=1e-6)
    cap = flat_run / "captures"
    emb = np.load(cap / json.loads((cap / "index.json").read_text())["captures"][-1]["embeddings"])
    assert emb["embeddings"].shape[1] == 64 and emb["action"].shape == emb["value"].shape


def test_fresh_start_replaces_tensorboard_history(tmp_path):
    p = deep_update(TINY_PARAMS, {"train": {"episodes": 8}})
    assert train(Params.from_dict(p), tmp_path, console=False) == 0
    p2 = deep_update(p, {"train": {"actor_lr": 0.02, "episodes": 4}})  # other params: fresh run
    assert train(Params.from_dict(p2), tmp_path, console=False) == 0
    acc = EventAccumulator(str(tmp_path / "training_output" / "tensorboard"))
    acc.Reload()
    assert [e.step for e in acc.Scalars("Reward / Total reward")] == [1, 2, 3, 4]
