"""Any gymnasium space through the real train stage: Box actions (Pendulum-v1), MultiDiscrete
actions with Dict observations (a tiny env defined in tests/train/spaces_envs.py), observation
normalization with exact resume, evaluation, figures, and one-line refusals."""
from __future__ import annotations

import csv
import os

import numpy as np
import pytest
import torch
import yaml

from rlpipe.config import Params
from rlpipe.train.run import train
from tests.helpers import (REPO, TINY_PARAMS, assert_same_run, deep_update, newest_state, run_stage,
                           with_env)

DIALS = "tests.train.spaces_envs:Dials-v0"
STAGE_ENV = {"PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}


def flat_params(env_id: str, **sections) -> dict:
    """TINY_PARAMS for a flat environment (no graph settings), with ``sections`` merged in."""
    base = with_env(deep_update(TINY_PARAMS, {
        "agent": {"mlp_hidden": [16, 16]}, "train": {"episodes": 8, "num_envs": 2},
        "checkpoint": {"interval": 2}}), {"id": env_id})
    return deep_update(base, sections)


def read_csv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def header(path) -> list[str]:
    return path.read_text().splitlines()[0].split(",")


def stage(root, params: dict, name: str = "train"):
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    return run_stage(name, root, env=STAGE_ENV, timeout=600)


@pytest.fixture(scope="module")
def pendulum_run(tmp_path_factory):
    """Pendulum-v1 (Box actions, normalization auto = on) through train, summarize, visualize."""
    root = tmp_path_factory.mktemp("pendulum")
    params = {**flat_params("Pendulum-v1"), "evaluate": {"episodes": 4, "variants": {"trained": {}}}}
    for name in ("train", "evaluate", "summarize", "visualize"):
        proc = stage(root, params, name)
        assert proc.returncode == 0, proc.stderr
        (root / f"{name}.out").write_text(proc.stdout + proc.stderr)
    return root


def test_box_actions_train_and_log_summaries_never_vectors(pendulum_run):
    out = pendulum_run / "training_output"
    eps = read_csv(out / "episodes.csv")
    assert [int(r["Episode"]) for r in eps] == list(range(1, 9))
    assert all(int(r["Episode Length"]) == 200 for r in eps)
    cols = header(out / "steps.csv")
    assert cols[:10] == ["Episode", "Step", "Global Step", "Action", "Reward", "Value",
                         "Log Prob", "Entropy", "Oracle Action", "Feasible"]
    assert cols[10:12] == ["Action Mean", "Action Norm"]
    steps = read_csv(out / "steps.csv")
    assert len(steps) == 8 * 200 and all(r["Action"] == "" for r in steps)
    norms = np.array([float(r["Action Norm"]) for r in steps])
    means = np.array([float(r["Action Mean"]) for r in steps])
    assert np.all(norms <= 2.0) and np.allclose(norms, np.abs(means))  # 1-D box, clipped to 2
    acts = read_csv(out / "actions.csv")
    assert header(out / "actions.csv") == ["Episode", "Dimension", "Bin", "Low", "High", "Count"]
    per_episode = {}
    for r in acts:
        per_episode[int(r["Episode"])] = per_episode.get(int(r["Episode"]), 0) + int(r["Count"])
    assert per_episode == {e: 200 for e in range(1, 9)}
    state = newest_state(pendulum_run)
    assert state["obs_normalizer"]["mean"].dtype == torch.float64
    assert "log_std" in state["actor"]
    log = (out / "agent_training.log").read_text()
    assert "device: cpu" in log and "observation normalization on" in log


def test_every_figure_of_a_box_run_is_drawn(pendulum_run):
    out = (pendulum_run / "visualize.out").read_text()
    for name in ("reward.png", "loss.png", "actions.png", "entropy.png", "value.png",
                 "embeddings_pca.png", "embeddings_tsne.png", "episode.gif"):
        assert f"wrote plots/{name}" in out, out
    # only the figures that need what a flat Box environment does not have are placeholders
    assert "2 placeholders" in out and "performance.png" in out and "attention.png" in out
    import pyarrow.parquet as pq

    table = pq.read_table(pendulum_run / "data" / "summary" / "actions.parquet")
    assert table.num_rows > 0 and str(table.schema.field("Count").type) == "int64"


def test_multi_discrete_actions_and_dict_observations_train(tmp_path):
    params = flat_params(DIALS, experiment={"export_rollouts": 4})
    proc = stage(tmp_path, params)
    assert proc.returncode == 0, proc.stderr
    out = tmp_path / "training_output"
    steps = read_csv(out / "steps.csv")
    assert len(steps) == 8 * 12
    assert all(0 <= int(r["Action"]) < 12 for r in steps)  # flat index over nvec (3, 4)
    acts = read_csv(out / "actions.csv")
    assert {int(r["Dimension"]) for r in acts} == {0, 1}
    assert all(r["Low"] == r["High"] for r in acts)
    for e in range(1, 9):
        for d in (0, 1):
            assert sum(int(r["Count"]) for r in acts
                       if int(r["Episode"]) == e and int(r["Dimension"]) == d) == 12
    state = newest_state(tmp_path)
    assert state.get("obs_normalizer") is None  # auto: off for discrete actions
    from rlpipe.exports import list_rollouts, load_rollout

    arrays = load_rollout(list_rollouts(out / "rollouts")[-1][1])
    n = len(arrays["step"])
    assert arrays["action"].shape == (n, 2) and arrays["observation"].shape == (n, 4)  # Box 2 + one-hot 2
    for name in ("summarize", "visualize"):
        proc = stage(tmp_path, params, name)
        assert proc.returncode == 0, proc.stderr
    for name in ("actions.png", "reward.png", "entropy.png", "value.png", "embeddings_pca.png",
                 "episode.gif"):
        assert f"wrote plots/{name}" in proc.stdout, proc.stdout


def test_resume_with_normalization_is_bit_identical(tmp_path):
    data = flat_params("Pendulum-v1", train={"normalize_observations": True})
    full, cut = tmp_path / "full", tmp_path / "cut"
    assert train(Params.from_dict(data), full, console=False) == 0
    half = {**data, "train": {**data["train"], "episodes": 4}}
    assert train(Params.from_dict(half), cut, console=False) == 0
    assert train(Params.from_dict(data), cut, console=False) == 0
    assert_same_run(full, cut)
    a, b = newest_state(full)["obs_normalizer"], newest_state(cut)["obs_normalizer"]
    assert all(torch.equal(a[k], b[k]) for k in ("mean", "var", "count"))
    assert float(a["count"]) > 8 * 200  # every collected observation went in


def test_the_evaluate_stage_reports_returns_only(pendulum_run):
    """Pendulum has neither reference decisions nor episode metrics: returns, no reference
    baseline; the evaluation figure is drawn from them."""
    import json

    metrics = json.loads((pendulum_run / "eval" / "metrics.json").read_text())
    assert list(metrics) == ["trained"] and list(metrics["trained"]) == ["final", "best", "random"]
    assert all(set(b) == {"episodes", "return"} for b in metrics["trained"].values())
    assert "evaluation.png: " not in (pendulum_run / "visualize.out").read_text()  # no placeholder


def test_evaluate_uses_the_checkpointed_normalizer(pendulum_run):
    from rlpipe.evaluation.report import summarize
    from rlpipe.evaluation.runner import evaluate, params_from_checkpoint

    def mean_return(state, policy):
        return summarize(evaluate(params, state, policy, 2, 0))["return"]["mean"]

    state = newest_state(pendulum_run)
    params = params_from_checkpoint(state)
    first = evaluate(params, state, "greedy", 2, 0)
    assert first == evaluate(params, state, "greedy", 2, 0)
    moved = {**state, "obs_normalizer": {**state["obs_normalizer"],
                                         "mean": state["obs_normalizer"]["mean"] + 5.0}}
    assert mean_return(moved, "greedy") != summarize(first)["return"]["mean"]
    assert np.isfinite(mean_return(state, "sample"))
    assert np.isfinite(mean_return(None, "random"))


@pytest.mark.parametrize("env_id, space", [("tests.train.spaces_envs:Bits-v0", "MultiBinary"),
                                           ("tests.train.spaces_envs:Words-v0", "Text")])
def test_unsupported_spaces_are_refused_in_one_line(tmp_path, env_id, space):
    proc = stage(tmp_path, flat_params(env_id))
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and env_id in lines[0] and space in lines[0], proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "training_output").exists() and not (tmp_path / "checkpoints").exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error on a machine without GPU")
def test_cuda_without_gpu_is_a_params_error(tmp_path):
    proc = stage(tmp_path, flat_params("Pendulum-v1", train={"device": "cuda"}))
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "train.device" in lines[0], proc.stderr
    assert not (tmp_path / "training_output").exists()
