"""A short run on a tiny graph learns: deployment accuracy rises well above its start."""
from __future__ import annotations

import csv

import numpy as np
import pytest

from rlpipe.config import Params
from rlpipe.train.run import train
from tests.helpers import TINY_PARAMS, deep_update


@pytest.mark.parametrize("algo, episodes", [("ppo", 96), ("a2c", 160)])
def test_short_run_improves_accuracy(tmp_path, algo, episodes):
    p = deep_update(TINY_PARAMS, {
        "env": {"kwargs": {"num_nodes": 6, "num_cloud": 1, "requests_per_episode": 10, "max_rejections": 10}},
        "train": {"algo": algo, "episodes": episodes, "num_envs": 8, "update_epochs": 8,
                  "minibatches": 2, "actor_lr": 0.01 if algo == "a2c" else 0.003},
        "experiment": {"write_interval": 0, "step_log_interval": 0},
        "checkpoint": {"interval": 0}, "capture": {"every": 0, "last": 0},
    })
    assert train(Params.from_dict(p), tmp_path, console=False) == 0
    rows = list(csv.DictReader((tmp_path / "training_output" / "episodes.csv").open()))
    acc = np.array([float(r["Deployment Accuracy"]) for r in rows])
    first, last = acc[:16].mean(), acc[-16:].mean()
    assert last > first + 0.25 and last > 0.6, (first, last)
