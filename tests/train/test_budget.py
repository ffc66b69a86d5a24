"""Step budgets (train.total_steps) beside episode budgets: the arithmetic, the params errors, a
run that ends on the rollout reaching its steps, and an exact resume when the budget is raised."""
from __future__ import annotations

import json

import pytest

from rlpipe.config import ConfigError, Params
from rlpipe.train.budget import EPISODES, STEPS, Budget, Interval
from rlpipe.train.run import train
from tests.helpers import TINY_PARAMS, assert_same_run, deep_update, log_text, newest_state, tiny


def steps_params(total: int, **over) -> Params:
    return tiny(train={"episodes": None, "total_steps": total}, **over)


def test_budget_arithmetic():
    ep, st = Budget(EPISODES, 10), Budget(STEPS, 100)
    assert ep.envs_for_next_rollout(8, 4) == 2 and st.envs_for_next_rollout(8, 4) == 4
    assert ep.done(10, 0) and not ep.done(9, 10**6)
    assert st.done(1, 100) and not st.done(10**6, 99)
    assert st.progress(3, 150) == 1.0 and ep.progress(5, 0) == 0.5
    assert st.interval("auto", 10) == Interval(10, STEPS)
    assert st.interval(4, 10) == Interval(4, EPISODES)   # integers stay in episodes
    assert st.interval(0, 10).every == 0 and not st.interval(-1, 10).crossed(0, 9, 0, 90)
    assert Interval(10, STEPS).crossed(3, 4, 95, 101) and not Interval(10, STEPS).crossed(3, 9, 91, 99)


def test_params_set_exactly_one_budget():
    assert Params.from_dict({"train": {"total_steps": 500}}).train.episodes is None
    assert Params.from_dict({}).train.episodes == 480
    for train_section in ({"episodes": 5, "total_steps": 10}, {"episodes": None},
                          {"episodes": None, "total_steps": None}):
        with pytest.raises(ConfigError, match=r"^train\.episodes, train\.total_steps: set exactly one"):
            Params.from_dict(deep_update(TINY_PARAMS, {"train": train_section}))
    with pytest.raises(ConfigError, match=r"^train\.total_steps: must be between"):
        Params.from_dict({"train": {"total_steps": 0}})


@pytest.fixture(scope="module")
def steps_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("steps_run")
    assert train(steps_params(120), root, console=False) == 0
    return root


def test_a_step_budget_ends_on_the_rollout_that_reaches_it(steps_run):
    state = newest_state(steps_run)
    per_rollout = TINY_PARAMS["train"]["num_envs"]
    assert state["global_step"] >= 120 and state["episode"] % per_rollout == 0
    with open(steps_run / "training_output" / "updates.csv") as f:
        steps = [int(line.split(",")[1]) for line in f.read().splitlines()[1:]]
    assert steps[-2] < 120 <= steps[-1]  # not one rollout more than needed
    live = json.loads((steps_run / "live" / "metrics.json").read_text())
    assert live["target_steps"] == 120 and live["progress"] == 1.0
    assert "120 environment steps" in log_text(steps_run)
    captures = json.loads((steps_run / "training_output" / "captures" / "index.json").read_text())
    assert captures["captures"][-1]["episode"] == state["episode"]  # capture.last: the last one


def test_raising_a_step_budget_continues_exactly(steps_run, tmp_path):
    assert train(steps_params(60), tmp_path, console=False) == 0
    assert train(steps_params(120), tmp_path, console=False) == 0
    assert "resumed from" in log_text(tmp_path)
    assert_same_run(steps_run, tmp_path)
