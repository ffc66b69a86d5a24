"""A graph environment defined entirely outside the project runs `dvc repro` end to end.

The environment below knows nothing of rlpipe: a gymnasium ``Graph`` observation (4 node
features, 2 edge features), ``Discrete`` actions over nodes, its own episode metric, and none of
the contract's optional parts (no reference decisions, no probe states, no trace, no node
kinds). It lives in its own module in the repository, registers itself on import, and is
selected with gymnasium's ``module:EnvName-v0`` id - zero edits to the project.
"""
from __future__ import annotations

import csv
import json
import textwrap

import numpy as np
import pytest
import yaml

from tests.helpers import EPISODES, dvc, git, make_dvc_repo, project_params

pytestmark = [pytest.mark.dvc, pytest.mark.slow]

ENV_MODULE = textwrap.dedent('''
    """A user's graph environment: visit the node with the most 'reward' features."""
    import gymnasium as gym
    import numpy as np
    from gymnasium import spaces


    class TreasureGraph(gym.Env):
        def __init__(self, nodes=7, steps=6):
            self.n, self.steps = nodes, steps
            self.observation_space = spaces.Graph(
                node_space=spaces.Box(-5.0, 5.0, (4,), np.float32),
                edge_space=spaces.Box(0.0, 1.0, (2,), np.float32))
            self.action_space = spaces.Discrete(nodes)

        def _obs(self):
            return spaces.GraphInstance(self.x.copy(), self.e.copy(), self.links.copy())

        def reset(self, *, seed=None, options=None):
            super().reset(seed=seed)
            r = self.np_random
            self.x = r.normal(size=(self.n, 4)).astype(np.float32)
            ring = [(i, (i + 1) % self.n) for i in range(self.n)]
            pairs = ring + [(v, u) for u, v in ring]
            self.links = np.array(pairs, dtype=np.int64)
            self.e = r.random((len(pairs), 2)).astype(np.float32)
            self.t, self.found = 0, 0
            return self._obs(), {}

        def step(self, action):
            best = int(np.argmax(self.x[:, 0]))
            hit = int(action) == best
            self.found += hit
            self.t += 1
            self.x[:, 0] = self.np_random.normal(size=self.n).astype(np.float32)
            done = self.t >= self.steps
            info = {"metrics": {"Treasure Rate": self.found / self.t}} if done else {}
            return self._obs(), float(hit), done, False, info


    gym.register("TreasureGraph-v0", entry_point=TreasureGraph)
''')


def test_outside_graph_env_runs_dvc_repro_with_every_figure(tmp_path):
    repo = make_dvc_repo(tmp_path / "repo")
    (repo / "treasure_env.py").write_text(ENV_MODULE)
    params = project_params()
    params["env"] = {"id": "treasure_env:TreasureGraph-v0", "kwargs": {"nodes": 7, "steps": 6}}
    params["evaluate"]["variants"] = {"trained": {}, "zero_shot_2x": {"nodes": 14}}  # its setting
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "custom env")

    out = dvc(repo, "repro", timeout=600)
    text = out.stdout + out.stderr
    assert "Traceback" not in text

    rows = list(csv.reader((repo / "training_output" / "episodes.csv").open()))
    assert rows[0] == EPISODES + ["Treasure Rate"]
    assert len(rows) == 1 + params["train"]["episodes"]
    assert all(r[8] == "" for r in rows[1:])               # Deployment Accuracy: empty
    assert all(0.0 <= float(r[9]) <= 1.0 for r in rows[1:])

    # every figure drawn, none a placeholder
    assert "(0 placeholders)" in text, text
    for name in ("reward.png", "loss.png", "actions.png", "entropy.png", "value.png",
                 "performance.png", "evaluation.png", "attention.png", "embeddings_pca.png",
                 "embeddings_tsne.png", "episode.gif"):
        assert (repo / "plots" / name).stat().st_size > 5_000, name

    # embeddings and attention come from this environment's own states (7 nodes, 4 features)
    cap = repo / "training_output" / "captures"
    entry = json.loads((cap / "index.json").read_text())["captures"][-1]
    emb = np.load(cap / entry["embeddings"])
    probes = params["capture"]["probe_graphs"] if "probe_graphs" in params["capture"] else 8
    graphs = len(np.unique(emb["graph"]))
    assert graphs == min(probes, 6) and emb["embeddings"].shape[0] == 7 * graphs
    assert emb["node_kind_names"].tolist() == ["node"] and "reference" not in emb
    att = np.load(cap / entry["attention"])
    assert int(att["num_nodes"]) == 7
    assert att["node_labels"].tolist() == [f"N{i}" for i in range(7)]
    self_loops = att["edge_index_0"][0] == att["edge_index_0"][1]
    assert self_loops.sum() == 7 and (~self_loops).sum() == 14   # the ring, both directions
    trace = json.loads((cap / entry["trace"]).read_text())
    assert len(trace["steps"]) == 6 and set(trace["steps"][0]) == {"action", "reward"}
