"""Aggregation of finished trials: the episodes table, per-setting metrics, the figures."""
from __future__ import annotations

import json
import math
import statistics
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from rlpipe.config import Params
from rlpipe.io_utils import StagedWrites
from rlpipe.sweep.aggregate import collect, setting_metrics
from rlpipe.sweep.figures import RANGES, draw_all, figure_name, t_interval
from rlpipe.sweep.grid import expand
from rlpipe.sweep.execute import write_results
from tests.helpers import EPISODES, TINY_PARAMS, deep_update, write_csv

WINDOW = 3


def fake_sweep(root: Path, with_accuracy: bool = True):
    """Trial folders as finished runs leave them: episodes.csv and run.json, made-up numbers."""
    p = Params.from_dict(deep_update(TINY_PARAMS, {"sweep": {
        "seeds": [0, 1, 2], "grid": {"train.actor_lr": [0.001, 0.003], "train.algo": ["ppo"]},
        "window": WINDOW}}))
    trials = expand(p, p.sweep)
    rewards = {}
    for i, t in enumerate(trials):
        out = root / "trials" / t.trial_id / "training_output"
        out.mkdir(parents=True)
        rows, r = [], []
        for ep in range(1, 6):
            reward = float(i * 10 + ep)
            r.append(reward)
            acc = 0.1 * ep + 0.01 * i if with_accuracy else None
            rows.append([ep, 0.5, reward, 0.1, 0.2, 0.3, 7, reward / 2, acc])
        write_csv(out / "episodes.csv", EPISODES, rows)
        (out / "run.json").write_text(json.dumps({"status": "finished", "wall_seconds": 1.0 + i}))
        rewards[t.trial_id] = r
    return p, trials, rewards


def test_episodes_table_has_ids_seed_and_each_grid_key(tmp_path):
    _, trials, rewards = fake_sweep(tmp_path)
    table, summaries = collect(tmp_path / "trials", trials, WINDOW)
    assert table.column_names[:5] == ["trial_id", "seed", "setting", "train.actor_lr", "train.algo"]
    assert table.column_names[5:] == EPISODES
    assert table.num_rows == 5 * len(trials)
    assert str(table.schema.field("train.actor_lr").type) == "double"
    assert str(table.schema.field("seed").type) == "int64"
    rows = table.to_pylist()
    t = trials[4]
    mine = [r for r in rows if r["trial_id"] == t.trial_id]
    assert [r["Cumulative Reward"] for r in mine] == rewards[t.trial_id]
    assert {(r["seed"], r["train.actor_lr"], r["train.algo"], r["setting"]) for r in mine} == {
        (t.seed, t.values["train.actor_lr"], "ppo", t.label)}
    assert summaries["final_reward"].tolist() == [statistics.mean(r[-WINDOW:]) for r in rewards.values()]


def test_metrics_per_setting_mean_and_sd_across_seeds(tmp_path):
    _, trials, rewards = fake_sweep(tmp_path)
    _, summaries = collect(tmp_path / "trials", trials, WINDOW)
    order = list(dict.fromkeys(t.label for t in trials))
    metrics = setting_metrics(summaries, order)["settings"]
    assert list(metrics) == ["train.actor_lr=0.001,train.algo=ppo", "train.actor_lr=0.003,train.algo=ppo"]
    for label, entry in metrics.items():
        mine = [t for t in trials if t.label == label]
        finals = [statistics.mean(rewards[t.trial_id][-WINDOW:]) for t in mine]
        assert entry["seeds"] == 3
        assert entry["final_reward"]["mean"] == pytest.approx(statistics.mean(finals))
        assert entry["final_reward"]["sd"] == pytest.approx(statistics.stdev(finals))
        walls = [1.0 + trials.index(t) for t in mine]
        assert entry["wall_seconds"]["sd"] == pytest.approx(statistics.stdev(walls))
        accs = [statistics.mean(0.1 * ep + 0.01 * trials.index(t) for ep in (3, 4, 5)) for t in mine]
        assert entry["accuracy"]["mean"] == pytest.approx(statistics.mean(accs))


def test_no_accuracy_no_sd_for_one_seed(tmp_path):
    _, trials, _ = fake_sweep(tmp_path, with_accuracy=False)
    _, summaries = collect(tmp_path / "trials", trials[:1], WINDOW)
    entry = setting_metrics(summaries, [trials[0].label])["settings"][trials[0].label]
    assert set(entry) == {"final_reward", "wall_seconds", "seeds"}
    assert set(entry["final_reward"]) == {"mean"}


def test_t_interval():
    lo, hi = t_interval([1.0, 2.0, 3.0])
    assert (lo, hi) == pytest.approx((2 - 4.302652729911275 / 3 ** 0.5, 2 + 4.302652729911275 / 3 ** 0.5))
    assert t_interval([5.0]) == (5.0, 5.0)


def test_the_band_of_a_bounded_metric_stays_in_its_range():
    # 2 seeds: t with 1 degree of freedom; raw [0.85 -+ 12.7 * 0.05] would leave [0, 1]
    lo, hi = t_interval([0.8, 0.9], 0.0, 1.0)
    assert (lo, hi) == (pytest.approx(0.85 - 12.706204736174698 * 0.05), 1.0)
    assert t_interval([0.0, 0.3], 0.0, 1.0)[0] == 0.0
    assert RANGES["accuracy"] == (0.0, 1.0) and RANGES["reward"] == (-math.inf, math.inf)


def test_write_results_writes_every_output_and_readable_metrics(tmp_path):
    p, trials, _ = fake_sweep(tmp_path)
    (tmp_path / "figures").mkdir()
    (tmp_path / "figures" / "final_by_old.key.png").write_bytes(b"old")
    write_results(tmp_path, trials, trials[:5], p.sweep, say=lambda m: None)
    assert pq.read_table(tmp_path / "results" / "episodes.parquet").num_rows == 25
    assert (tmp_path / "results" / "trials.csv").read_text().startswith(
        "trial_id,seed,setting,train.actor_lr,train.algo,episodes,final_reward,accuracy,wall_seconds\n")
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["trials"] == {"total": 6, "finished": 5}
    assert metrics["settings"]["train.actor_lr=0.003,train.algo=ppo"]["seeds"] == 2
    means = {k: v["final_reward"]["mean"] for k, v in metrics["settings"].items()}
    best = max(means, key=means.get)
    assert metrics["best"] == {"metric": "final_reward", "direction": "maximize",
                               "value": means[best], "setting": best}
    fragment = yaml.safe_load((tmp_path / "best_params.yaml").read_text())
    winner = next(t for t in trials if t.label == best)
    assert fragment == {"train": {k.split(".")[1]: v for k, v in winner.values.items()}}
    pngs = sorted(p.name for p in (tmp_path / "figures").iterdir())
    assert pngs == sorted(["learning_curves.png", figure_name("train.actor_lr"),
                           figure_name("train.algo")])
    for name in pngs:
        assert (tmp_path / "figures" / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not list(tmp_path.rglob("*.tmp"))


def test_a_failed_figure_leaves_the_previous_outputs(tmp_path, monkeypatch):
    p, trials, _ = fake_sweep(tmp_path)
    write_results(tmp_path, trials, trials, p.sweep, say=lambda m: None)
    before = (tmp_path / "metrics.json").read_bytes()

    def broken(*a, **k):
        raise RuntimeError("figure failed")

    monkeypatch.setattr("rlpipe.sweep.figures.final_by_key", broken)
    with pytest.raises(RuntimeError):
        write_results(tmp_path, trials, trials[:2], p.sweep, say=lambda m: None)
    assert (tmp_path / "metrics.json").read_bytes() == before
    assert not [p for p in tmp_path.rglob("*") if p.name.endswith(".tmp")]


def test_draw_all_names(tmp_path):
    _, trials, _ = fake_sweep(tmp_path)
    table, summaries = collect(tmp_path / "trials", trials, WINDOW)
    staged = StagedWrites()
    names = draw_all(table.to_pandas(), summaries, ["train.actor_lr"],
                     [t.label for t in trials], WINDOW, lambda n: staged.path(tmp_path / n))
    staged.commit()
    assert names == ["learning_curves.png", "final_by_train.actor_lr.png"]


def test_grid_key_columns_with_mixed_or_list_values():
    from rlpipe.sweep.aggregate import episodes_table

    p = Params.from_dict(deep_update(TINY_PARAMS, {"sweep": {"seeds": [0], "grid": {
        "checkpoint.interval": [4, "auto"], "agent.mlp_hidden": [[8], [8, 8]],
        "train.actor_lr": [0.001, 1]}}}))
    trials = expand(p, p.sweep)
    one = pa.table({"Episode": pa.array([1, 2], pa.int64())})
    table = episodes_table(trials, [one] * len(trials), list(trials[0].values))
    assert str(table.schema.field("checkpoint.interval").type) == "string"
    assert str(table.schema.field("agent.mlp_hidden").type) == "string"
    assert str(table.schema.field("train.actor_lr").type) == "double"
    assert set(table.column("checkpoint.interval").to_pylist()) == {"4", "auto"}
    assert set(table.column("agent.mlp_hidden").to_pylist()) == {"[8]", "[8, 8]"}
