"""Params validation: every bad value is named with what is allowed."""
from __future__ import annotations

import pytest
import yaml

from rlpipe.config import ConfigError, Params, fingerprint, load_params, load_sections
from tests.helpers import TINY_PARAMS, deep_update


def test_defaults_load_and_repo_params_are_valid():
    assert Params.from_dict({}).train.algo == "ppo"
    load_params("params.yaml")  # the shipped params.yaml validates


@pytest.mark.parametrize("over, key, allowed", [
    ({"train": {"lr": 0.1}}, "train.lr", "unknown key"),
    ({"train": {"algo": "dqn"}}, "train.algo", "one of 'ppo', 'a2c'"),
    ({"train": {"episodes": 0}}, "train.episodes", "between 1"),
    ({"train": {"episodes": "ten"}}, "train.episodes", "expected an integer"),
    ({"train": {"actor_lr": -1.0}}, "train.actor_lr", "between"),
    ({"train": {"actor_lr": "fast"}}, "train.actor_lr", "expected a number"),
    ({"train": {"normalize_advantages": "yes"}}, "train.normalize_advantages", "true/false"),
    ({"checkpoint": {"interval": "atuo"}}, "checkpoint.interval", "'auto'"),
    ({"experiment": {"write_interval": 1.5}}, "experiment.write_interval", "an integer or 'auto'"),
    ({"experiment": {"directory": "../elsewhere"}}, "experiment.directory", "inside the repository"),
    ({"checkpoint": {"directory": "/tmp/x"}}, "checkpoint.directory", "inside the repository"),
    ({"env": {"kwargs": [1, 2]}}, "env.kwargs", "expected a mapping"),
    ({"env": {"num_nodes": 9}}, "env.num_nodes", "unknown key"),  # settings live in env.kwargs
    ({"visualize": {"figures": "reward"}}, "visualize.figures", "expected a list"),
    ({"capture": {"episodes": [0]}}, "capture.episodes[0]", "> 0"),
    ({"agent": {"mlp_hidden": 64}}, "agent.mlp_hidden", "a list of an integer"),
    ({"trian": {}}, "trian", "unknown section"),
    ({"train": [1, 2]}, "train", "expected a mapping"),
])
def test_bad_values_are_named(over, key, allowed):
    with pytest.raises(ConfigError) as e:
        Params.from_dict(deep_update(TINY_PARAMS, over) if not isinstance(over.get("train"), list) else over)
    msg = str(e.value)
    assert msg.startswith(key + ":"), msg
    assert allowed in msg, msg


def test_scientific_notation_string_is_a_number():
    assert Params.from_dict({"train": {"actor_lr": "3e-4"}}).train.actor_lr == 3e-4


def test_empty_and_invalid_yaml_files(tmp_path):
    (tmp_path / "p.yaml").write_text("")
    with pytest.raises(ConfigError, match="empty"):
        load_params(tmp_path / "p.yaml")
    (tmp_path / "p.yaml").write_text("train: {episodes: [")
    with pytest.raises(ConfigError, match="invalid YAML"):
        load_params(tmp_path / "p.yaml")
    with pytest.raises(ConfigError, match="file not found"):
        load_params(tmp_path / "missing.yaml")


def test_load_sections_checks_only_named_sections(tmp_path):
    (tmp_path / "p.yaml").write_text(yaml.safe_dump({"train": {"episodes": -1}, "summarize": {"window": 5}}))
    assert load_sections(tmp_path / "p.yaml", ("summarize",))["summarize"].window == 5
    with pytest.raises(ConfigError, match="train.episodes"):
        load_sections(tmp_path / "p.yaml", ("train",))


def test_fingerprint_ignores_budget_logging_and_captures_only():
    base = Params.from_dict(TINY_PARAMS)
    same = Params.from_dict(deep_update(TINY_PARAMS, {
        "train": {"episodes": 999, "on_mismatch": "error"}, "experiment": {"write_interval": 7},
        "checkpoint": {"interval": 3}, "capture": {"every": 2}, "visualize": {"dpi": 50}}))
    assert fingerprint(base) == fingerprint(same)
    for over in ({"train": {"actor_lr": 0.01}}, {"env": {"kwargs": {"num_nodes": 9}}}, {"agent": {"heads": 3}},
                 {"train": {"seed": 1}}):
        assert fingerprint(Params.from_dict(deep_update(TINY_PARAMS, over))) != fingerprint(base)


def test_a_stage_reads_one_setting_of_another_section(tmp_path):
    """visualize reads `train.gamma` alone: the rest of train is neither read nor validated."""
    path = tmp_path / "params.yaml"
    path.write_text("train:\n  gamma: 0.5\n  no_such_key: 1\nvisualize:\n  dpi: 60\n")
    got = load_sections(path, ("visualize", "train.gamma"))
    assert got["train.gamma"] == 0.5 and got["visualize"].dpi == 60
    path.write_text("visualize: {}\n")
    assert load_sections(path, ("train.gamma",))["train.gamma"] == 0.2  # the default
    path.write_text("train:\n  gamma: 2.0\n")
    with pytest.raises(ConfigError, match="train.gamma"):
        load_sections(path, ("train.gamma",))
