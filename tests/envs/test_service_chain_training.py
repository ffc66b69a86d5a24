"""rlpipe/ServiceChain-v0 through the real trainer: accuracy column, metrics, exact resume,
and the no-message-passing ablation (agent.gat_layers: 0) end to end."""
from __future__ import annotations

import csv

import pytest

from rlpipe.config import ConfigError
from rlpipe.train.run import train
from tests.helpers import TINY_PARAMS, assert_same_run, deep_update, newest_state, with_env

ENV = {"id": "rlpipe/ServiceChain-v0", "kwargs": {"num_nodes": 8, "chains_per_episode": 3}}


def params(**over):
    from rlpipe.config import Params

    return Params.from_dict(deep_update(with_env(TINY_PARAMS, ENV), over))


def rows(root):
    with open(root / "training_output" / "episodes.csv", newline="") as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    root = tmp_path_factory.mktemp("service_chain_run")
    assert train(params(train={"episodes": 12}), root, console=False) == 0
    return root


def test_episodes_csv_has_accuracy_and_the_env_metrics(uninterrupted):
    got = rows(uninterrupted)
    assert len(got) == 12
    for r in got:
        assert 0.0 <= float(r["Deployment Accuracy"]) <= 1.0
        for name in ("Acceptance Rate", "Mean Latency", "Excess Latency", "Mean Utilization"):
            assert r[name] != ""


def test_resume_is_exact(uninterrupted, tmp_path):
    assert train(params(train={"episodes": 8}), tmp_path, console=False) == 0
    assert newest_state(tmp_path)["episode"] == 8
    assert train(params(train={"episodes": 12}), tmp_path, console=False) == 0
    assert_same_run(uninterrupted, tmp_path)


def test_ablation_trains_and_has_no_attention_layers(tmp_path):
    assert train(params(train={"episodes": 4}, agent={"gat_layers": 0}), tmp_path,
                 console=False) == 0
    state = newest_state(tmp_path)
    assert not any(k.startswith("encoder.convs") for k in state["actor"])
    assert len(rows(tmp_path)) == 4


def test_bad_env_kwargs_name_the_key(tmp_path):
    with pytest.raises(ConfigError, match="env.kwargs.neighbours: must be between 1 and 16"):
        train(params(env={"kwargs": {"neighbours": 0}}), tmp_path, console=False)
    assert not (tmp_path / "training_output").exists()


def test_the_evaluate_stage_reports_accuracy_metrics_and_both_baselines(uninterrupted, tmp_path):
    import json
    import shutil

    from rlpipe.config import EvaluateConfig, build
    from rlpipe.evaluation.stage import run

    shutil.copytree(uninterrupted / "checkpoints", tmp_path / "checkpoints")
    cfg = build(EvaluateConfig, {"episodes": 3, "variants": {"trained": {}, "zero_shot_2x": {
        "num_nodes": 16}}}, "evaluate")
    assert run({"evaluate": cfg, "checkpoint.directory": "checkpoints"}, tmp_path) == 0
    metrics = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    for variant in metrics.values():
        assert list(variant) == ["final", "best", "random", "reference"]
        assert variant["reference"]["reference_accuracy"]["mean"] == 1.0
        assert len(variant["final"]) > 3  # episodes, return, accuracy and the env's metrics
