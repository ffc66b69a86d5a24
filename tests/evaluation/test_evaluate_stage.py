"""The evaluate stage on the session's tiny graph run: outputs, same episodes for every policy,
the command's JSON equal to the stage's, environments without reference or metrics, and bad
params that fail before anything is written."""
from __future__ import annotations

import csv
import json
import re
import shutil
from pathlib import Path

import pytest
import yaml

from rlpipe.cli import main as cli
from rlpipe.config import ConfigError, EvaluateConfig, Params, build
from rlpipe.errors import CheckpointError
from rlpipe.evaluation import seeds as S
from rlpipe.evaluation.stage import run
from tests.helpers import TINY_PARAMS, cartpole_checkpoint, project_params, run_stage

TINY_EVAL = TINY_PARAMS["evaluate"]


def evaluate_cfg(**over) -> EvaluateConfig:
    return build(EvaluateConfig, {**TINY_EVAL, **over}, "evaluate")


def sections(**over) -> dict:
    return {"evaluate": evaluate_cfg(**over), "checkpoint.directory": "checkpoints"}


def with_checkpoints(reference: Path, tmp_path: Path) -> Path:
    shutil.copytree(reference / "checkpoints", tmp_path / "checkpoints")
    return tmp_path


def rows(root: Path) -> list[dict]:
    with open(root / "eval" / "episodes.csv", newline="") as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def evaluated(reference, tmp_path_factory) -> Path:
    root = with_checkpoints(reference, tmp_path_factory.mktemp("evaluated"))
    assert run(sections(), root) == 0
    return root


def test_metrics_per_variant_and_policy(evaluated):
    metrics = json.loads((evaluated / "eval" / "metrics.json").read_text())
    assert set(metrics) == {"trained", "zero_shot_2x"}
    for variant in metrics.values():
        assert set(variant) == {"final", "best", "random", "reference"}
        for block in variant.values():
            assert block["episodes"] == TINY_EVAL["episodes"]
            assert {"return", "reference_accuracy", "acceptance_rate", "mean_latency"} <= set(block)
            assert all(set(v) == {"mean", "sd"} for k, v in block.items() if k != "episodes")
        assert variant["reference"]["reference_accuracy"] == {"mean": 1.0, "sd": 0.0}
        assert variant["random"]["return"]["mean"] < variant["reference"]["return"]["mean"]


def test_every_policy_plays_the_same_held_out_episodes(evaluated):
    table = rows(evaluated)
    assert len(table) == 2 * 4 * TINY_EVAL["episodes"]
    expected = [str(S.episode_seed(0, j)) for j in range(TINY_EVAL["episodes"])]
    by_policy = {}
    for r in table:
        by_policy.setdefault((r["Variant"], r["Policy"]), []).append(r["Seed"])
    assert all(seeds == expected for seeds in by_policy.values())
    assert not any(S.is_training_seed(int(s)) for s in expected)


def test_the_command_prints_the_stage_keys_and_numbers(evaluated, capsys):
    metrics = json.loads((evaluated / "eval" / "metrics.json").read_text())
    args = ["evaluate", "--checkpoint", str(evaluated / "checkpoints" / "best.pt"),
            "--episodes", str(TINY_EVAL["episodes"]), "--env-kwarg", "num_nodes=16"]
    assert cli(args) == 0
    assert json.loads(capsys.readouterr().out) == metrics["zero_shot_2x"]["best"]
    assert cli([*args[:-2], "--policy", "reference"]) == 0
    assert json.loads(capsys.readouterr().out) == metrics["trained"]["reference"]


def test_evaluating_again_writes_the_same_bytes(evaluated, tmp_path):
    root = with_checkpoints(evaluated, tmp_path)
    assert run(sections(), root) == 0
    for name in ("metrics.json", "episodes.csv"):
        assert (root / "eval" / name).read_bytes() == (evaluated / "eval" / name).read_bytes()


def test_one_checkpoint_and_no_baselines(reference, tmp_path):
    root = with_checkpoints(reference, tmp_path)
    assert run(sections(checkpoints="best", baselines=[], variants={"trained": {}}), root) == 0
    metrics = json.loads((root / "eval" / "metrics.json").read_text())
    assert list(metrics) == ["trained"] and list(metrics["trained"]) == ["best"]


def test_an_environment_without_reference_or_metrics_reports_returns_only(tmp_path):
    """CartPole: the reference baseline is left out."""
    cartpole_checkpoint(tmp_path)
    cfg = sections(checkpoints="final", variants={"trained": {}})
    assert run(cfg, tmp_path) == 0
    metrics = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert list(metrics["trained"]) == ["final", "random"]
    assert all(set(b) == {"episodes", "return"} for b in metrics["trained"].values())
    assert rows(tmp_path)[0].keys() == {"Variant", "Policy", "Episode", "Seed", "Return", "Length"}


@pytest.mark.parametrize("over, key", [
    ({"episodes": -1}, "evaluate.episodes"),
    ({"colour": 1}, "evaluate.colour"),
    ({"policy": "best"}, "evaluate.policy"),
    ({"baselines": ["oracle"]}, "evaluate.baselines[0]"),
    ({"variants": {}}, "evaluate.variants"),
    ({"variants": {"big": 40}}, "evaluate.variants.big"),
])
def test_bad_params_name_the_key(over, key):
    with pytest.raises(ConfigError, match=rf"^{re.escape(key)}: "):
        Params.from_dict({"evaluate": {**TINY_EVAL, **over}})


@pytest.mark.parametrize("variants, key", [
    ({"big": {"num_nodes": -3}}, "evaluate.variants.big.num_nodes"),
    ({"big": {"colour": "red"}}, "evaluate.variants.big.colour"),
])
def test_a_variant_the_environment_refuses_fails_before_anything_is_written(
        reference, tmp_path, variants, key):
    root = with_checkpoints(reference, tmp_path)
    with pytest.raises(ConfigError, match=rf"^{re.escape(key)}: "):
        run({**sections(), "evaluate": evaluate_cfg(variants={"trained": {}, **variants})}, root)
    assert not (root / "eval").exists()


def test_missing_checkpoints_fail_in_one_line_before_anything_is_written(tmp_path):
    with pytest.raises(CheckpointError, match="no periodic checkpoint"):
        run(sections(), tmp_path)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(project_params(
        {"evaluate": {"variants": {"trained": {}, "huge": {"num_nodes": 0}}}})))
    proc = run_stage("evaluate", tmp_path)
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert proc.stderr.startswith("evaluate: error: checkpoints: no periodic checkpoint")
    assert not (tmp_path / "eval").exists()
