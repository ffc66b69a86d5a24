"""Checkpoint format versions: checkpoints of older versions load (migrated, with a log line) or
are refused with one clear line, never misread; `rlpipe inspect` and `rlpipe evaluate` on a
checkpoint of the current format."""
from __future__ import annotations

import json
import logging

import pytest
import torch

from rlpipe import checkpoints as ckpt
from rlpipe.cli import main as cli
from rlpipe.errors import CheckpointError
from rlpipe.train.run import train
from tests.helpers import REPO, cartpole_checkpoint, log_text, tiny

FIXTURES = REPO / "tests" / "fixtures"  # a stored checkpoint of each older format version


@pytest.fixture(scope="module")
def v1(tmp_path_factory):
    """A checkpoint of format version 1, the current one, written by this rlpipe."""
    assert ckpt.CHECKPOINT_FORMAT_VERSION == 1, "store a version-1 checkpoint under tests/fixtures"
    return cartpole_checkpoint(tmp_path_factory.mktemp("v1"))


@pytest.fixture
def rlpipe_log(caplog):
    """Records of the ``rlpipe`` logger (which may not propagate to the root logger)."""
    logger = logging.getLogger("rlpipe")
    logger.addHandler(caplog.handler)
    caplog.set_level(logging.INFO, logger="rlpipe")
    yield caplog
    logger.removeHandler(caplog.handler)


def test_every_older_format_has_a_stored_checkpoint_and_a_migration(v1):
    current = ckpt.CHECKPOINT_FORMAT_VERSION
    stored = {int(p.stem.split("_v")[1]): p for p in FIXTURES.glob("checkpoint_v*.pt")}
    assert sorted(stored) == list(range(1, current)), sorted(stored)
    assert sorted(ckpt.MIGRATIONS) == list(range(1, current))
    for v, path in [*sorted(stored.items()), (current, v1)]:
        raw = torch.load(path, map_location="cpu", weights_only=True)
        assert raw["format_version"] == v
        state = ckpt.load_checkpoint(path)
        assert state["format_version"] == current
        assert all(k in state for k in ckpt.REQUIRED_KEYS)


def test_a_migration_runs_on_load_and_is_logged(v1, monkeypatch, rlpipe_log):
    """As if the format were at version 2 with a 1 -> 2 migration (e.g. a new state key)."""
    def to_v2(state):
        return {**state, "obs_normalizer": None, "episode": state["episode"]}

    monkeypatch.setattr(ckpt, "CHECKPOINT_FORMAT_VERSION", 2)
    monkeypatch.setattr(ckpt, "MIGRATIONS", {1: to_v2})
    state = ckpt.load_checkpoint(v1)
    assert state["format_version"] == 2 and state["obs_normalizer"] is None
    assert state["episode"] == 2
    assert f"{v1}: checkpoint format version 1 migrated to 2 on load" in rlpipe_log.messages


def test_resume_from_a_migrated_checkpoint_says_so(monkeypatch, tmp_path):
    assert train(tiny(train={"episodes": 8}), tmp_path, console=False) == 0
    monkeypatch.setattr(ckpt, "CHECKPOINT_FORMAT_VERSION", 2)
    monkeypatch.setattr(ckpt, "MIGRATIONS", {1: dict})
    assert train(tiny(train={"episodes": 12}), tmp_path, console=False) == 0
    log = log_text(tmp_path)
    assert "checkpoints/ckpt_ep000008.pt: checkpoint format version 1 migrated to 2 on load" in log
    assert "resumed from checkpoints/ckpt_ep000008.pt at episode 8" in log


@pytest.mark.parametrize("version, current, migrations, message", [
    (3, 1, {}, "checkpoint format version 3 is not supported (this rlpipe reads version 1; "
               "written by a newer rlpipe?)"),
    ("1", 1, {}, "checkpoint format version '1' is not supported (this rlpipe reads version 1)"),
    (0, 2, {1: dict}, "checkpoint format version 0 is not supported (this rlpipe reads version 2 "
                      "and migrates from version 1)"),
    (1, 2, {1: lambda s: s["no such key"]},
     "cannot migrate checkpoint format version 1 to 2 (KeyError: 'no such key')"),
    (1, 2, {1: lambda s: None}, "cannot migrate checkpoint format version 1 to 2 (TypeError: "
                                "the migration returned NoneType, not a dict)"),
])
def test_unreadable_versions_are_refused_in_one_line(v1, tmp_path, monkeypatch, version,
                                                     current, migrations, message):
    state = torch.load(v1, map_location="cpu", weights_only=True)
    state["format_version"] = version
    path = tmp_path / "ckpt_ep000002.pt"
    torch.save(state, path)
    monkeypatch.setattr(ckpt, "CHECKPOINT_FORMAT_VERSION", current)
    monkeypatch.setattr(ckpt, "MIGRATIONS", migrations)
    with pytest.raises(CheckpointError) as e:
        ckpt.load_checkpoint(path)
    assert str(e.value) == f"{path}: {message}"


def test_cli_inspect_prints_the_checkpoint(v1, capsys):
    assert cli(["inspect", str(v1)]) == 0
    out = json.loads(capsys.readouterr().out)
    assert {k: out[k] for k in ("format_version", "episode", "update")} == {
        "format_version": ckpt.CHECKPOINT_FORMAT_VERSION, "episode": 2, "update": 2}
    assert out["params"]["env"]["id"] == "CartPole-v1" and len(out["fingerprint"]) == 16
    assert isinstance(out["best_mean_reward"], float)


def test_cli_evaluate_runs_the_stored_policy(v1, capsys, tmp_path):
    folder = tmp_path / "best"  # a store_separately folder of the same state
    ckpt.save_checkpoint(ckpt.load_checkpoint(v1), folder, store_separately=True)
    results = []
    for path in (v1, folder):
        assert cli(["evaluate", "--checkpoint", str(path), "--episodes", "3", "--seed", "7"]) == 0
        results.append(json.loads(capsys.readouterr().out))
    assert results[0] == results[1]
    out = results[0]
    assert out["episodes"] == 3 and out["return"]["mean"] >= 8.0  # CartPole: at least 8 steps
    assert set(out) == {"episodes", "return"}  # CartPole: no reference decisions, no metrics
    assert cli(["evaluate", "--checkpoint", str(v1), "--episodes", "3", "--policy", "random"]) == 0
    assert json.loads(capsys.readouterr().out)["episodes"] == 3


def test_cli_evaluate_on_a_graph_checkpoint_with_larger_graphs(reference, capsys):
    best = reference / "checkpoints" / "best.pt"
    assert cli(["evaluate", "--checkpoint", str(best), "--episodes", "2", "--env-kwarg",
                "num_nodes=12"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["episodes"] == 2 and 0.0 <= out["reference_accuracy"]["mean"] <= 1.0
    assert {"acceptance_rate", "mean_latency"} <= set(out)  # the keys of eval/metrics.json
    assert all(set(v) == {"mean", "sd"} for k, v in out.items() if k != "episodes")
