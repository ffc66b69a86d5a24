"""TensorBoard event files written by `dvc repro` (train stage) hold the contract's tags and steps."""
from __future__ import annotations

import csv
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.dvc

EPISODE_TAGS = ["Reward / Total reward", "Reward / Mean reward", "Reward / Instantaneous reward",
                "Episode / Length", "Performance / Deployment accuracy",
                "Performance / Acceptance Rate"]
UPDATE_TAGS = ["Loss / Policy loss", "Loss / Value loss", "Policy / Entropy",
               "Optim / Learning rate"]


@pytest.fixture(scope="module")
def scalars(dvc_trained_repo: Path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    tb = dvc_trained_repo / "training_output" / "tensorboard"
    files = list(tb.glob("events.out.tfevents.*"))
    assert files, f"no event file in {tb}"
    acc = EventAccumulator(str(tb), size_guidance={"scalars": 0})
    acc.Reload()
    return acc


def episodes_csv(repo: Path) -> list[dict]:
    with open(repo / "training_output" / "episodes.csv", newline="") as f:
        return list(csv.DictReader(f))


def test_episode_scalars_on_the_episode_axis(dvc_trained_repo: Path, scalars):
    params = yaml.safe_load((dvc_trained_repo / "params.yaml").read_text())
    assert params["experiment"]["write_interval"] == 1  # tiny params: every episode
    episodes = params["train"]["episodes"]
    tags = set(scalars.Tags()["scalars"])
    missing = [t for t in EPISODE_TAGS + UPDATE_TAGS if t not in tags]
    assert not missing, f"missing {missing}; have {sorted(tags)}"
    for tag in EPISODE_TAGS:
        assert [e.step for e in scalars.Scalars(tag)] == list(range(1, episodes + 1)), tag


def test_total_reward_matches_episodes_csv(dvc_trained_repo: Path, scalars):
    rows = episodes_csv(dvc_trained_repo)
    tb = {e.step: e.value for e in scalars.Scalars("Reward / Total reward")}
    assert sorted(tb) == [int(r["Episode"]) for r in rows]
    for r in rows:
        assert tb[int(r["Episode"])] == pytest.approx(float(r["Cumulative Reward"]), rel=1e-5, abs=1e-6)


def test_update_scalars_use_the_episode_of_the_update(dvc_trained_repo: Path, scalars):
    with open(dvc_trained_repo / "training_output" / "updates.csv", newline="") as f:
        update_episodes = sorted({int(r["Episode"]) for r in csv.DictReader(f)})
    steps = sorted({e.step for e in scalars.Scalars("Loss / Policy loss")})
    assert steps and set(steps) <= set(update_episodes), (steps, update_episodes)
