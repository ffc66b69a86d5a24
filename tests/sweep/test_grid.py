"""The sweep section and grid expansion: trials, their params, and errors that name the key."""
from __future__ import annotations

import pytest
import yaml

from rlpipe.config import ConfigError, Params, fingerprint, load_sections
from rlpipe.sweep.grid import expand, set_dotted, setting_id, setting_label
from tests.helpers import TINY_PARAMS, deep_update, with_env


def params(sweep: dict, env: dict | None = None, **over) -> Params:
    data = deep_update(TINY_PARAMS, {"sweep": sweep, **over})
    return Params.from_dict(with_env(data, env) if env else data)


def test_grid_times_seeds_in_order_with_each_trials_params():
    p = params({"seeds": [3, 5], "grid": {"train.actor_lr": [0.001, 0.003],
                                          "agent.hidden_dim": [8, 16]}, "episodes": 6})
    trials = expand(p, p.sweep)
    assert [(t.values["train.actor_lr"], t.values["agent.hidden_dim"], t.seed) for t in trials] == [
        (0.001, 8, 3), (0.001, 8, 5), (0.001, 16, 3), (0.001, 16, 5),
        (0.003, 8, 3), (0.003, 8, 5), (0.003, 16, 3), (0.003, 16, 5)]
    for t in trials:
        assert t.params.train.seed == t.seed
        assert t.params.train.actor_lr == t.values["train.actor_lr"]
        assert t.params.agent.hidden_dim == t.values["agent.hidden_dim"]
        assert t.params.train.episodes == 6                       # sweep.episodes
        assert t.params.train.num_envs == TINY_PARAMS["train"]["num_envs"]  # the base run
        assert t.params.sweep == Params.from_dict({}).sweep       # a trial holds no sweep
        assert t.trial_id == f"{t.setting_id}-seed{t.seed}"
    assert trials[0].label == "train.actor_lr=0.001,agent.hidden_dim=8"
    assert len({t.trial_id for t in trials}) == 8
    assert len({t.setting_id for t in trials}) == 4


def test_setting_ids_are_stable_and_independent_of_other_grid_points():
    a = params({"grid": {"train.actor_lr": [0.001]}})
    b = params({"grid": {"train.actor_lr": [0.003, 0.001]}, "seeds": [0, 1, 2, 7]})
    ids_a = {t.trial_id for t in expand(a, a.sweep)}
    ids_b = {t.trial_id for t in expand(b, b.sweep)}
    assert ids_a <= ids_b  # adding values or seeds keeps the finished trials' folders
    assert setting_id((("train.actor_lr", 0.001),)) == setting_id([("train.actor_lr", 0.001)])
    assert setting_id((("train.actor_lr", 0.001),)) != setting_id((("train.actor_lr", 0.003),))


def test_empty_grid_one_seed_is_one_trial_of_the_base_run():
    p = params({"seeds": [0], "grid": {}})
    [trial] = expand(p, p.sweep)
    assert trial.trial_id == "base-seed0" and trial.label == "base" and trial.setting == ()
    assert fingerprint(trial.params) == fingerprint(Params.from_dict(TINY_PARAMS))


@pytest.mark.parametrize("grid, message", [
    ({"env.kwargs.num_cloud": [1, 9]}, "sweep.grid: env.kwargs.num_cloud: must be <"),
    ({"env.kwargs.num_nodez": [9]}, "sweep.grid: env.kwargs.num_nodez: unknown key"),
    ({"env.id": ["NoSuchEnv-v0"]}, "sweep.grid: env.id: cannot make environment 'NoSuchEnv-v0'"),
])
def test_environment_settings_of_the_grid_are_checked_before_any_trial(grid, message):
    from rlpipe.sweep.stage import check_environments

    p = params({"grid": grid, "seeds": [0]})
    trials = expand(p, p.sweep)  # valid params: env.kwargs belong to the environment
    with pytest.raises(ConfigError) as e:
        check_environments(trials)
    assert str(e.value).startswith(message) and "(setting env." in str(e.value), str(e.value)


def test_list_values_and_nested_keys():
    p = params({"grid": {"agent.mlp_hidden": [[16], [32, 32]]}, "seeds": [0]},
               env={"id": "CartPole-v1"})
    trials = expand(p, p.sweep)
    assert [t.params.agent.mlp_hidden for t in trials] == [(16,), (32, 32)]
    assert setting_label(trials[1].setting) == "agent.mlp_hidden=[32, 32]"
    d = {"env": {"kwargs": None}}
    set_dotted(d, "env.kwargs.num_nodes", 9)
    assert d == {"env": {"kwargs": {"num_nodes": 9}}}
    with pytest.raises(ConfigError, match="^env.id: is not a mapping"):
        set_dotted({"env": {"id": "x"}}, "env.id.x", 1)


@pytest.mark.parametrize("sweep, key, allowed", [
    ({"grid": {"train.actor_lrr": [0.1]}}, "train.actor_lrr", "unknown key"),
    ({"grid": {"train.actor_lr": [0.001, 5.0]}}, "train.actor_lr", "between"),
    ({"grid": {"train.algo": ["ppo", "dqn"]}}, "train.algo", "one of"),
    ({"grid": {"env.num_nodes": [9]}}, "env.num_nodes", "unknown key"),
    ({"grid": {"agent.mlp_hidden": [[16], 8]}}, "agent.mlp_hidden", "a list"),
])
def test_invalid_trial_values_name_the_key_before_any_trial(sweep, key, allowed):
    p = params(sweep)
    with pytest.raises(ConfigError) as e:
        expand(p, p.sweep)
    msg = str(e.value)
    assert msg.startswith(f"sweep.grid: {key}"), msg
    assert allowed in msg and "(setting " in msg, msg


@pytest.mark.parametrize("sweep, key, allowed", [
    ({"grid": {"trian.actor_lr": [0.1]}}, "sweep.grid.trian.actor_lr", "training section"),
    ({"grid": {"summarize.window": [5]}}, "sweep.grid.summarize.window", "training section"),
    ({"grid": {"actor_lr": [0.1]}}, "sweep.grid.actor_lr", "dotted"),
    ({"grid": {"train.seed": [1, 2]}}, "sweep.grid.train.seed", "sweep.seeds"),
    ({"grid": {"train.actor_lr": 0.1}}, "sweep.grid.train.actor_lr", "non-empty list"),
    ({"grid": {"train.actor_lr": []}}, "sweep.grid.train.actor_lr", "non-empty list"),
    ({"grid": {"train.actor_lr": [0.1, 0.1]}}, "sweep.grid.train.actor_lr", "repeat"),
    ({"grid": [1]}, "sweep.grid", "mapping"),
    ({"seeds": []}, "sweep.seeds", "at least one"),
    ({"seeds": [1, 1]}, "sweep.seeds", "repeat"),
    ({"seeds": [-1]}, "sweep.seeds[0]", "between"),
    ({"address": "nowhere"}, "sweep.address", "host:port"),
    ({"address": "10.0.0.5:99999"}, "sweep.address", "host:port"),
    ({"address": "ray://10.0.0.5:10001"}, "sweep.address", "ray://"),
    ({"max_concurrent": -1}, "sweep.max_concurrent", ">= 0"),
    ({"episodes": 0}, "sweep.episodes", "between"),
    ({"cpus_per_trial": 0}, "sweep.cpus_per_trial", "between"),
    ({"max_retries": "two"}, "sweep.max_retries", "integer"),
    ({"retries": 2}, "sweep.retries", "unknown key"),
])
def test_bad_sweep_section_is_named(sweep, key, allowed):
    with pytest.raises(ConfigError) as e:
        params(sweep)
    msg = str(e.value)
    assert msg.startswith(key + ":"), msg
    assert allowed in msg, msg


def test_addresses_accepted():
    for address in ("local", "auto", "10.0.0.5:6379", "head.cluster:6379", "[::1]:6379"):
        assert params({"address": address}).sweep.address == address


def test_other_stages_accept_the_sweep_section_and_still_refuse_unknown_ones(tmp_path):
    data = deep_update(TINY_PARAMS, {"sweep": {"seeds": [1], "grid": {"train.gamma": [0.5]}}})
    (tmp_path / "p.yaml").write_text(yaml.safe_dump(data))
    assert load_sections(tmp_path / "p.yaml", ("summarize",))["summarize"].window == 4
    (tmp_path / "q.yaml").write_text(yaml.safe_dump({**data, "sweeps": {}}))
    with pytest.raises(ConfigError, match="^sweeps: unknown section"):
        load_sections(tmp_path / "q.yaml", ("summarize",))


def test_the_sweep_section_never_changes_a_training_run():
    plain = Params.from_dict(TINY_PARAMS)
    swept = params({"seeds": [9], "grid": {"train.actor_lr": [0.5]}, "episodes": 3})
    assert fingerprint(plain) == fingerprint(swept)  # resuming the single run is unaffected
