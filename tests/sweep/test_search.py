"""The search without Ray: its params, the reporting hook in a trial, the study file, best params."""
from __future__ import annotations

import json
import math

import pytest
import yaml

from rlpipe.config import ConfigError, Params
from rlpipe.paths import EPISODES_CSV
from rlpipe.sweep.best import best_params_text, fragment, set_args
from rlpipe.sweep.files import apply_snapshot, read_files
from rlpipe.sweep.objective import last_window_mean
from rlpipe.sweep.report import read_column, read_reports
from rlpipe.sweep.search import ask, check_space_params, open_study, repair_journal, study_id
from rlpipe.sweep.space import corners, to_optuna
from rlpipe.sweep.trial import run_trial
from tests.helpers import TINY_PARAMS, assert_same_run, deep_update, log_text, tiny

LR = {"train.actor_lr": {"low": 1e-4, "high": 1e-2, "log": True}}


def search_params(**sweep) -> Params:
    return Params.from_dict(deep_update(TINY_PARAMS, {"sweep": {
        "search": "optuna", "space": LR, "seeds": [0, 1], **sweep}}))


@pytest.mark.parametrize("space, message", [
    ({"train.actor_lr": {"low": 1e-4, "high": 1e-2, "scale": "log"}},
     "sweep.space.train.actor_lr: unknown distribution key 'scale'"),
    ({"train.actor_lr": {"low": 0.1, "high": 0.01}},
     "sweep.space.train.actor_lr: low must be <= high, got low=0.1 > high=0.01"),
    ({"train.actor_lr": "loguniform"}, "sweep.space.train.actor_lr: must be {low, high, log}"),
    ({"train.actor_lr": {"low": 0, "high": 1, "log": True}}, "a log range needs low > 0"),
    ({"sweep.trials": [1, 2]}, "sweep.space.sweep.trials: must name a training section"),
    ({"train.seed": [1, 2]}, "seeds come from sweep.seeds"),
    ({}, "sweep.space: must name at least one key"),
])
def test_bad_spaces_name_the_key(space, message):
    with pytest.raises(ConfigError, match=None) as e:
        Params.from_dict({"sweep": {"search": "optuna", "space": space}})
    assert message in str(e.value)


def test_bad_objective_names_the_key():
    with pytest.raises(ConfigError, match=r"^sweep.objective.metric: must be one of"):
        Params.from_dict({"sweep": {"objective": {"metric": "eval_return"}}})
    with pytest.raises(ConfigError, match=r"^sweep.objective.direction"):
        Params.from_dict({"sweep": {"objective": {"direction": "up"}}})


@pytest.mark.parametrize("space, message", [
    ({"train.actor_lrr": [0.1]}, "sweep.space.train.actor_lrr: train.actor_lrr: unknown key"),
    ({"train.num_envs": {"low": 0, "high": 4}}, "sweep.space.train.num_envs: train.num_envs"),
])
def test_space_values_that_are_no_training_setting_fail_before_any_trial(space, message):
    p = search_params(space=space)
    with pytest.raises(ConfigError) as e:
        check_space_params(p, p.sweep)
    assert str(e.value).startswith(message), e.value


def test_space_corners_and_distributions():
    space = {"train.actor_lr": {"low": 1e-4, "high": 1e-2, "log": True},
             "agent.hidden_dim": {"low": 8, "high": 64, "step": 8}, "train.algo": ["ppo", "a2c"]}
    assert corners(space) == [{"train.actor_lr": 1e-4, "agent.hidden_dim": 8, "train.algo": "ppo"},
                              {"train.actor_lr": 1e-2, "agent.hidden_dim": 64, "train.algo": "a2c"}]
    d = to_optuna(space)
    assert type(d["agent.hidden_dim"]).__name__ == "IntDistribution" and d["agent.hidden_dim"].step == 8
    assert d["train.actor_lr"].log and d["train.algo"].choices == ("ppo", "a2c")


def test_study_id_ignores_the_trial_count_but_not_the_space():
    a, b = search_params(trials=5), search_params(trials=50)
    assert study_id(a, a.sweep) == study_id(b, b.sweep)
    c = search_params(space={"train.actor_lr": [0.001, 0.01]})
    assert study_id(c, c.sweep) != study_id(a, a.sweep)


@pytest.mark.parametrize("sampler", ["tpe", "random"])
def test_a_study_reopened_after_its_driver_died_asks_what_an_uninterrupted_one_would(
        tmp_path, sampler):
    """Trial k is drawn from the sampler seed and k, not from a generator that a killed driver
    loses: reopening the journal and asking gives the uninterrupted study's settings."""
    cfg = search_params(sampler=sampler, sampler_seed=7, trials=6, pruner="none").sweep
    dists = to_optuna(cfg.space)

    def run(folder, kill_after: int | None):
        study = open_study(folder, "s", cfg, lambda _: None)
        asked = []
        for k in range(6):
            if k == kill_after:   # the driver died: a new process opens the same journal
                study = open_study(folder, "s", cfg, lambda _: None)
            trial = ask(study, cfg, dists)
            asked.append(trial.params)
            study.tell(trial, float(sum(v for v in trial.params.values()
                                        if isinstance(v, (int, float)))))
        return asked

    uninterrupted = run(tmp_path / "a", None)
    assert run(tmp_path / "b", 3) == uninterrupted
    assert len({json.dumps(p, sort_keys=True) for p in uninterrupted}) > 1  # it does draw


def test_a_torn_journal_line_is_cut(tmp_path):
    path = tmp_path / "study.journal"
    path.write_bytes(b'{"op_code":0}\n{"op_code":1}\n{"op_co')
    assert repair_journal(path)
    assert path.read_bytes() == b'{"op_code":0}\n{"op_code":1}\n'
    assert not repair_journal(path)


def test_best_params_is_a_params_fragment_every_key_of_which_params_accept():
    best = {"metric": "final_reward", "direction": "maximize", "value": 1.5, "seeds": 2,
            "setting": "t003", "params": {"train.actor_lr": 0.00123, "agent.hidden_dim": 32,
                                          "train.algo": "a2c"}}
    text = best_params_text(best, "optuna tpe")
    data = yaml.safe_load(text)
    assert data == fragment(best["params"])
    merged = deep_update(TINY_PARAMS, data)
    p = Params.from_dict(merged)  # a copy into params.yaml is accepted as it is
    assert (p.train.actor_lr, p.agent.hidden_dim, p.train.algo) == (0.00123, 32, "a2c")
    assert set_args(best["params"]) == ["train.actor_lr=0.00123", "agent.hidden_dim=32",
                                        "train.algo=a2c"]
    assert "dvc exp run -S 'train.actor_lr=0.00123' -S 'agent.hidden_dim=32'" in text
    assert yaml.safe_load(best_params_text(None, "grid")) == {}


class Home:
    def __init__(self, root):
        self.root = root

    def send(self, files, listing, appends) -> bool:
        apply_snapshot(self.root, files, listing, appends)
        return True


def reference_values(reference, window, steps):
    reward = read_column(reference / "training_output" / EPISODES_CSV, "Cumulative Reward")
    return {s: last_window_mean(reward[:s], window) for s in steps}


def test_a_pruned_trial_stops_with_its_checkpoint_and_resumes_identically(tmp_path, reference):
    """Reports at each checkpoint (4, 8, ...) give the window mean of the episodes so far; the
    driver's "prune" at 8 stops the trial there with that checkpoint home; resumed (as a rerun
    would after a kill), it reports the same values and ends identical to an uninterrupted run."""
    search = {"metric": "final_reward", "window": 3, "every": 0}
    home, seen = Home(tmp_path / "home"), []

    def report(step, value):
        seen.append((step, value))
        return step < 8

    result = run_trial(tiny().to_dict(), [], home.send, report=report, search=search)
    assert result["pruned_at"] == 8 and result["exit_code"] is None
    expected = reference_values(reference, 3, (4, 8, 12, 16))
    assert [s for s, _ in seen] == [4, 8]
    assert all(v == pytest.approx(expected[s], rel=1e-6) for s, v in seen)
    assert read_reports(home.root) == pytest.approx({4: expected[4], 8: expected[8]})
    assert (home.root / "checkpoints" / "ckpt_ep000008.pt").exists()
    run = home.root / "training_output" / "run.json"
    assert not run.exists() or json.loads(run.read_text())["status"] != "finished"

    seen.clear()
    result = run_trial(tiny().to_dict(), read_files(home.root, "checkpoints"), home.send,
                       report=lambda s, v: seen.append((s, v)) or True, search=search)
    assert result["exit_code"] == 0 and result["pruned_at"] is None
    assert "resumed from checkpoints/ckpt_ep000008.pt" in log_text(home.root)
    assert [s for s, _ in seen] == [12, 16]
    assert all(v == pytest.approx(expected[s], rel=1e-6) for s, v in seen)
    assert sorted(read_reports(home.root)) == [4, 8, 12, 16]
    assert_same_run(home.root, reference)
    assert not math.isnan(expected[16])


@pytest.mark.parametrize("sweep, message", [
    ({"objective": {"metric": "accuracy"}},
     "sweep: error in params: sweep.objective.metric: accuracy is not reported by CartPole-v1"),
    ({"space": {"train.actor_lrr": {"low": 0.001, "high": 0.01}}},
     "sweep: error in params: sweep.space.train.actor_lrr: train.actor_lrr: unknown key"),
    ({"space": {"train.actor_lr": {"low": 0.001, "high": 0.01, "dist": "beta"}}},
     "sweep: error in params: sweep.space.train.actor_lr: unknown distribution key 'dist'"),
])
def test_the_stage_refuses_bad_search_params_before_any_trial(tmp_path, sweep, message):
    from tests.sweep.sweep_helpers import run_sweep, write_sweep_params

    write_sweep_params(tmp_path / "params.yaml", {"sweep": {
        "search": "optuna", "trials": 2, "space": {"train.actor_lr": [0.001, 0.01]}, **sweep}})
    proc = run_sweep(tmp_path)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith(message), proc.stderr
    assert not (tmp_path / "sweeps").exists()  # no trial started, no study file written


def test_objective_metrics_are_the_names_the_params_accept():
    """sweep.objective.metric is checked by the section (config_sweep, no sweep import) against
    the names that rlpipe.sweep.objective defines the sources of."""
    from rlpipe.config_sweep import OBJECTIVE_METRICS
    from rlpipe.sweep.objective import METRICS

    assert tuple(METRICS) == OBJECTIVE_METRICS
