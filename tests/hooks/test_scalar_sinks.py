"""TensorBoard and Weights & Biases: hyperparameters, total timesteps, sampling intervals, the W&B
settings (mode, wandb.init arguments, its own interval) and its errors."""
from __future__ import annotations

import csv
import sys
import types
from pathlib import Path

import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from rlpipe.config import ConfigError, Params
from rlpipe.errors import RlpipeError
from rlpipe.train.run import train
from tests.helpers import TINY_PARAMS, deep_update

QUICK = {"train": {"episodes": 8}, "capture": {"every": 0, "last": 0}}


def params(**over) -> Params:
    return Params.from_dict(deep_update(deep_update(TINY_PARAMS, QUICK), over))


def events(root: Path) -> EventAccumulator:
    acc = EventAccumulator(str(root / "training_output" / "tensorboard"), size_guidance={"scalars": 0})
    acc.Reload()
    return acc


def episode_rows(root: Path) -> list[dict]:
    with open(root / "training_output" / "episodes.csv", newline="") as f:
        return list(csv.DictReader(f))


def update_rows(root: Path) -> list[dict]:
    with open(root / "training_output" / "updates.csv", newline="") as f:
        return list(csv.DictReader(f))


class FakeWandb:
    """A stand-in for the wandb module that records what it is given."""

    def __init__(self, fail: Exception | None = None):
        self.inits, self.logged, self.summary, self.finished = [], [], {}, 0
        self.fail = fail

    def module(self) -> types.ModuleType:
        fake = types.ModuleType("wandb")
        outer = self

        class Run:
            summary = outer.summary

            def log(self, values, step):
                outer.logged.append((step, dict(values)))

            def finish(self):
                outer.finished += 1

        def init(**kw):
            outer.inits.append(kw)
            if outer.fail is not None:
                raise outer.fail
            return Run()

        fake.init = init
        return fake


@pytest.fixture
def fake_wandb(monkeypatch) -> FakeWandb:
    fake = FakeWandb()
    monkeypatch.setitem(sys.modules, "wandb", fake.module())
    return fake


# --------------------------------------------------------------------------- TensorBoard
def test_tensorboard_hparams_final_metrics_and_total_timesteps(tmp_path):
    from tensorboard.plugins.hparams import plugin_data_pb2

    assert train(params(), tmp_path, console=False) == 0
    acc = events(tmp_path)
    start = plugin_data_pb2.HParamsPluginData.FromString(
        acc.SummaryMetadata("_hparams_/session_start_info").plugin_data.content).session_start_info
    assert start.hparams["train.actor_lr"].number_value == pytest.approx(0.003)
    assert start.hparams["train.algo"].string_value == "ppo"
    assert start.hparams["env.kwargs.num_nodes"].number_value == 8
    assert start.hparams["agent.mlp_hidden"].string_value == "[64, 64]"
    experiment = plugin_data_pb2.HParamsPluginData.FromString(
        acc.SummaryMetadata("_hparams_/experiment").plugin_data.content).experiment
    metric_tags = [m.name.tag for m in experiment.metric_infos]
    assert metric_tags == ["Final / Mean episode reward", "Final / Best mean reward",
                           "Final / Episodes", "Final / Total timesteps"]
    rows, ups = episode_rows(tmp_path), update_rows(tmp_path)
    final = {t: [(e.step, e.value) for e in acc.Scalars(t)] for t in metric_tags}
    assert final["Final / Episodes"] == [(8, 8.0)]
    assert final["Final / Total timesteps"] == [(8, float(ups[-1]["Global Step"]))]
    assert final["Final / Mean episode reward"][0][1] == pytest.approx(
        float(rows[-1]["Mean Episode Reward"]), rel=1e-6)
    # the total-timesteps scalar: the Global Step of each update, on the episode axis
    steps = {e.step: e.value for e in acc.Scalars("Run / Total timesteps")}
    assert steps == {int(u["Episode"]): float(u["Global Step"]) for u in ups}


def test_write_interval_samples_every_nth_episode(tmp_path):
    assert train(params(train={"episodes": 16}, experiment={"write_interval": 5}), tmp_path,
                 console=False) == 0
    acc = events(tmp_path)
    assert [e.step for e in acc.Scalars("Reward / Total reward")] == [5, 10, 15]
    rows = {int(r["Episode"]): float(r["Cumulative Reward"]) for r in episode_rows(tmp_path)}
    for e in acc.Scalars("Reward / Total reward"):
        assert e.value == pytest.approx(rows[e.step], rel=1e-6)
    # updates (every 4 episodes) land on the first update at or after each multiple of 5
    assert [e.step for e in acc.Scalars("Loss / Policy loss")] == [8, 12, 16]


def test_write_interval_off_writes_no_event_file(tmp_path):
    assert train(params(experiment={"write_interval": 0}), tmp_path, console=False) == 0
    tb = tmp_path / "training_output" / "tensorboard"
    assert not list(tb.glob("events.out.tfevents.*"))
    assert len(episode_rows(tmp_path)) == 8  # the CSVs do not depend on it


# --------------------------------------------------------------------------- Weights & Biases
def test_wandb_gets_init_arguments_its_own_interval_and_a_summary(tmp_path, fake_wandb):
    p = params(train={"episodes": 16}, experiment={"write_interval": 1, "wandb": {
        "mode": "offline", "project": "proj", "entity": "team", "group": "sweep-1",
        "tags": ["gat", "ppo"], "name": "my-run", "notes": "a note", "interval": 4}})
    assert train(p, tmp_path, console=False) == 0
    (init,) = fake_wandb.inits
    assert {k: init[k] for k in ("mode", "project", "entity", "group", "tags", "name", "notes")} == {
        "mode": "offline", "project": "proj", "entity": "team", "group": "sweep-1",
        "tags": ["gat", "ppo"], "name": "my-run", "notes": "a note"}
    assert init["config"]["train"]["actor_lr"] == 0.003
    assert init["dir"] == str(tmp_path / "training_output" / "wandb")
    totals = {s: v["Reward / Total reward"] for s, v in fake_wandb.logged if "Reward / Total reward" in v}
    rows = {int(r["Episode"]): float(r["Cumulative Reward"]) for r in episode_rows(tmp_path)}
    assert totals == pytest.approx({e: rows[e] for e in (4, 8, 12, 16)})  # every 4th episode
    assert [e.step for e in events(tmp_path).Scalars("Reward / Total reward")] == list(range(1, 17))
    timesteps = {s: v["Run / Total timesteps"] for s, v in fake_wandb.logged if "Run / Total timesteps" in v}
    assert timesteps == {int(u["Episode"]): float(u["Global Step"]) for u in update_rows(tmp_path)}
    assert fake_wandb.summary["Final / Episodes"] == 16.0
    assert fake_wandb.finished == 1


def test_wandb_does_not_depend_on_tensorboard(tmp_path, fake_wandb):
    """TensorBoard off, W&B on: the mirror still logs (it used to be silently off)."""
    p = params(experiment={"write_interval": 0, "wandb": {"mode": "offline", "interval": 1}})
    assert train(p, tmp_path, console=False) == 0
    assert not list((tmp_path / "training_output" / "tensorboard").glob("events.out.tfevents.*"))
    logged = sorted(s for s, v in fake_wandb.logged if "Reward / Total reward" in v)
    assert logged == list(range(1, 9))
    init = fake_wandb.inits[0]
    assert init["name"].startswith("rlpipe-") and init["name"].endswith("-from-0")
    assert init["entity"] is None and init["group"] is None and init["tags"] is None


def test_wandb_offline_for_real_writes_a_run(tmp_path):
    wandb = pytest.importorskip("wandb", reason="the W&B mirror is an optional extra (rlpipe[wandb])")
    p = params(experiment={"write_interval": 0, "wandb": {"mode": "offline", "tags": ["t"]}})
    assert train(p, tmp_path, console=False) == 0
    runs = list((tmp_path / "training_output" / "wandb" / "wandb").glob("offline-run-*/run-*.wandb"))
    assert len(runs) == 1 and runs[0].stat().st_size > 0
    assert wandb.run is None  # finished


def test_wandb_disabled_never_imports_it(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "wandb", None)  # any import of wandb fails
    assert train(params(experiment={"wandb": {"mode": "disabled"}}), tmp_path, console=False) == 0
    assert not (tmp_path / "training_output" / "wandb").exists()


def test_wandb_without_package_is_a_named_params_error(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "wandb", None)
    with pytest.raises(ConfigError, match=r"^experiment\.wandb\.mode: offline needs the wandb package"):
        train(params(experiment={"wandb": {"mode": "offline"}}), tmp_path, console=False)


def test_wandb_init_failure_is_one_line(tmp_path, monkeypatch):
    fake = FakeWandb(fail=RuntimeError("api_key not configured (no-tty)\nmore text"))
    monkeypatch.setitem(sys.modules, "wandb", fake.module())
    with pytest.raises(RlpipeError) as e:
        train(params(experiment={"wandb": {"mode": "online"}}), tmp_path, console=False)
    assert str(e.value) == ("experiment.wandb: wandb.init failed in mode online "
                            "(RuntimeError: api_key not configured (no-tty))")


@pytest.mark.parametrize("wandb, key, allowed", [
    (True, "experiment.wandb", "expected a mapping of settings (mode, project, entity, group, tags"),
    ({"mode": "cloud"}, "experiment.wandb.mode", "one of 'offline', 'online', 'disabled'"),
    ({"interval": 0}, "experiment.wandb.interval", "an integer >= 1 or 'auto'"),
    ({"tags": "a"}, "experiment.wandb.tags", "a list of a string"),
    ({"projekt": "x"}, "experiment.wandb.projekt", "unknown key"),
])
def test_wandb_params_errors_name_the_key(wandb, key, allowed):
    with pytest.raises(ConfigError) as e:
        params(experiment={"wandb": wandb})
    assert str(e.value).startswith(key + ":") and allowed in str(e.value), str(e.value)
