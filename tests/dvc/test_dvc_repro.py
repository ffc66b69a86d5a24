"""`dvc repro` reruns exactly the stale stages (real dvc CLI, tiny params, one shared repository).

The tests of this module run in order on one copy of the session's trained repository; each
one starts from an up-to-date pipeline, changes one thing, and checks which stages dvc ran.
"""
from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import yaml

from tests.helpers import (copy_repo, dvc, edit_params, stages_ran, stages_skipped, tree_hashes)

pytestmark = pytest.mark.dvc

ALL = ["train", "evaluate", "summarize", "visualize"]


@pytest.fixture(scope="module")
def repo(dvc_trained_repo: Path, tmp_path_factory) -> Path:
    return copy_repo(dvc_trained_repo, tmp_path_factory.mktemp("repro") / "repo")


def lock(repo: Path) -> dict:
    return yaml.safe_load((repo / "dvc.lock").read_text())["stages"]


def out_hash(repo: Path, stage: str, path: str) -> str:
    return next(o["md5"] for o in lock(repo)[stage]["outs"] if o["path"] == path)


def up_to_date(repo: Path) -> None:
    """Precondition of every test here: dvc sees nothing to do."""
    status = dvc(repo, "status").stdout
    assert "Data and pipelines are up to date." in status, status


def repro(repo: Path) -> tuple[list[str], list[str], str]:
    out = dvc(repo, "repro", timeout=600)
    text = out.stdout + out.stderr
    return stages_ran(text), stages_skipped(text), text


def test_nothing_changed_runs_nothing(repo: Path):
    up_to_date(repo)
    lock_before = (repo / "dvc.lock").read_text()
    ckpt_before = tree_hashes(repo / "checkpoints")
    ran, skipped, text = repro(repo)
    assert ran == [], text
    assert skipped == ALL, text
    assert (repo / "dvc.lock").read_text() == lock_before
    assert tree_hashes(repo / "checkpoints") == ckpt_before


def test_visualize_param_reruns_visualize_only(repo: Path):
    up_to_date(repo)
    dpi = yaml.safe_load((repo / "params.yaml").read_text())["visualize"]["dpi"]
    png_before = (repo / "plots" / "reward.png").read_bytes()
    summary_before = out_hash(repo, "summarize", "data/summary")
    edit_params(repo, {"visualize": {"dpi": dpi + 10}})

    ran, skipped, text = repro(repo)
    assert ran == ["visualize"], text
    assert skipped == ["train", "evaluate", "summarize"], text
    assert (repo / "plots" / "reward.png").read_bytes() != png_before  # drawn at the new dpi
    assert out_hash(repo, "summarize", "data/summary") == summary_before
    up_to_date(repo)


def test_summarize_param_reruns_summarize_not_train(repo: Path):
    """summarize.* reruns summarize; visualize runs only if what it reads changed.

    DVC decides per stage from file hashes: visualize reads data/summary/*.parquet (and the
    captures), which summarize.window / max_points do not change, so dvc skips visualize.
    """
    up_to_date(repo)
    window = yaml.safe_load((repo / "params.yaml").read_text())["summarize"]["window"]
    metrics_before = json.loads((repo / "metrics.json").read_text())
    summary_before = out_hash(repo, "summarize", "data/summary")
    plots_before = out_hash(repo, "visualize", "plots")
    edit_params(repo, {"summarize": {"window": window - 1}})

    ran, skipped, text = repro(repo)
    assert ran[:1] == ["summarize"] and "train" not in ran, text
    assert skipped[:1] == ["train"], text
    metrics = json.loads((repo / "metrics.json").read_text())
    assert metrics["reward"]["final_mean"] != metrics_before["reward"]["final_mean"]
    tables_changed = out_hash(repo, "summarize", "data/summary") != summary_before
    assert ("visualize" in ran) == tables_changed, text
    if not tables_changed:
        assert skipped == ["train", "evaluate", "visualize"], text
        assert out_hash(repo, "visualize", "plots") == plots_before
    up_to_date(repo)


def test_evaluate_param_reruns_evaluate_and_visualize_never_train(repo: Path):
    """evaluate.* reruns the evaluate stage and the figures that read it; the checkpoints, the
    training logs and the summary stay as they were; `dvc metrics show` lists the eval metrics."""
    up_to_date(repo)
    episodes = yaml.safe_load((repo / "params.yaml").read_text())["evaluate"]["episodes"]
    ckpt_before = tree_hashes(repo / "checkpoints")
    edit_params(repo, {"evaluate": {"episodes": episodes + 1}})

    ran, skipped, text = repro(repo)
    assert ran == ["evaluate", "visualize"], text
    assert skipped == ["train", "summarize"], text
    assert tree_hashes(repo / "checkpoints") == ckpt_before
    shown = json.loads(dvc(repo, "metrics", "show", "--json").stdout)
    evaluated = next(iter(shown.values()))["data"]["eval/metrics.json"]["data"]
    for variant in ("trained", "zero_shot_2x"):
        assert set(evaluated[variant]) == {"final", "best", "random", "reference"}
        assert evaluated[variant]["best"]["episodes"] == episodes + 1
    up_to_date(repo)


def test_train_param_reruns_all_and_resumes(repo: Path):
    """train.episodes raised: all three stages run; train continues from the persisted checkpoint."""
    up_to_date(repo)
    params = yaml.safe_load((repo / "params.yaml").read_text())
    episodes = params["train"]["episodes"]
    log_before = (repo / "training_output" / "agent_training.log").read_text()
    edit_params(repo, {"train": {"episodes": episodes + 4}})

    ran, skipped, text = repro(repo)
    assert ran == ALL, text
    assert skipped == [], text
    log = (repo / "training_output" / "agent_training.log").read_text()
    assert log.startswith(log_before)  # persist: true, the log was appended to, not replaced
    new = log[len(log_before):]
    assert f"resumed from checkpoints/ckpt_ep{episodes:06d}.pt at episode {episodes}" in new, new
    assert "not resuming" not in new
    with open(repo / "training_output" / "episodes.csv", newline="") as f:
        eps = [int(r["Episode"]) for r in csv.DictReader(f)]
    assert eps == list(range(1, episodes + 5))
    metrics = json.loads((repo / "metrics.json").read_text())
    assert metrics["run"]["episodes"] == episodes + 4
    assert metrics["run"]["resumed_count"] == 1
    assert (repo / "checkpoints" / f"ckpt_ep{episodes + 4:06d}.pt").is_file()
    up_to_date(repo)


def test_tensorboard_after_resume_holds_each_episode_once(repo: Path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    episodes = yaml.safe_load((repo / "params.yaml").read_text())["train"]["episodes"]
    tb = repo / "training_output" / "tensorboard"
    assert len(list(tb.glob("events.out.tfevents.*"))) >= 2  # one per process run
    acc = EventAccumulator(str(tb), size_guidance={"scalars": 0})
    acc.Reload()
    steps = [e.step for e in acc.Scalars("Reward / Total reward")]
    assert steps == list(range(1, episodes + 1))


def test_repro_again_runs_nothing(repo: Path):
    ran, skipped, text = repro(repo)
    assert ran == [] and skipped == ALL, text
