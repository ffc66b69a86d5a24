"""`dvc exp run -S`, `dvc exp show`, `dvc metrics diff`, `dvc exp apply` on the real pipeline.

Two workspace experiments from the trained baseline ("run 1"), in order, on one copy of it:
`lr-high` (train.actor_lr) and `fewer-nodes` (env.kwargs.num_nodes). Both change params of the training
fingerprint, so train must start afresh although the workspace holds the baseline checkpoints
(persist: true) and say so in agent_training.log.
"""
from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import yaml

from tests.helpers import copy_repo, dvc, exp_rows, git, stages_ran, tree_hashes

pytestmark = pytest.mark.dvc


@pytest.fixture(scope="module")
def repo(dvc_trained_repo: Path, tmp_path_factory) -> Path:
    return copy_repo(dvc_trained_repo, tmp_path_factory.mktemp("exps") / "repo")


@pytest.fixture(scope="module")
def base(dvc_trained_repo: Path) -> dict:
    """The baseline's params: the experiments' values are derived from them, never equal."""
    return yaml.safe_load((dvc_trained_repo / "params.yaml").read_text())


@pytest.fixture(scope="module")
def high_lr(base) -> float:
    return round(base["train"]["actor_lr"] * 2, 6)


@pytest.fixture(scope="module")
def fewer_nodes(base) -> int:
    return base["env"]["kwargs"]["num_nodes"] - 2


def back_to_baseline(repo: Path) -> None:
    """Workspace = the committed baseline again (params, dvc.lock, and every output)."""
    git(repo, "checkout", "--", ".")
    dvc(repo, "checkout", "--force")
    assert "Data and pipelines are up to date." in dvc(repo, "status").stdout


def episodes_logged(repo: Path) -> list[int]:
    with open(repo / "training_output" / "episodes.csv", newline="") as f:
        return [int(r["Episode"]) for r in csv.DictReader(f)]


def run_fresh_experiment(repo: Path, name: str, setting: str) -> str:
    log = repo / "training_output" / "agent_training.log"
    before = log.read_text()
    out = dvc(repo, "exp", "run", "-n", name, "-S", setting, timeout=600)
    text = out.stdout + out.stderr
    assert stages_ran(text) == ["train", "evaluate", "summarize", "visualize"], text
    new = log.read_text()
    # the workspace's persisted checkpoints come from other params: fingerprint guard -> restart
    assert "not resuming" in new and "starting a fresh run" in new, new
    assert new.count("run start:") == before.count("run start:") + 1
    episodes = yaml.safe_load((repo / "params.yaml").read_text())["train"]["episodes"]
    assert episodes_logged(repo) == list(range(1, episodes + 1))
    return text


def test_exp_run_train_param(repo: Path, high_lr):
    text = run_fresh_experiment(repo, "lr-high", f"train.actor_lr={high_lr}")
    assert "Ran experiment(s): lr-high" in text, text
    assert yaml.safe_load((repo / "params.yaml").read_text())["train"]["actor_lr"] == high_lr
    metrics = json.loads((repo / "metrics.json").read_text())
    assert metrics["run"]["resumed_count"] == 0


def test_fresh_restart_leaves_only_the_new_run_in_tensorboard(repo: Path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    episodes = yaml.safe_load((repo / "params.yaml").read_text())["train"]["episodes"]
    acc = EventAccumulator(str(repo / "training_output" / "tensorboard"),
                           size_guidance={"scalars": 0})
    acc.Reload()
    assert [e.step for e in acc.Scalars("Reward / Total reward")] == list(range(1, episodes + 1))


def test_exp_run_env_param(repo: Path, high_lr, fewer_nodes):
    back_to_baseline(repo)
    assert not (repo / "training_output" / "agent_training.log").read_text().count("not resuming")
    text = run_fresh_experiment(repo, "fewer-nodes", f"env.kwargs.num_nodes={fewer_nodes}")
    assert "Ran experiment(s): fewer-nodes" in text, text
    params = yaml.safe_load((repo / "params.yaml").read_text())
    assert params["env"]["kwargs"]["num_nodes"] == fewer_nodes and params["train"]["actor_lr"] != high_lr


def test_exp_show_lists_both_experiments(repo: Path, high_lr, fewer_nodes):
    rows = exp_rows(repo)
    assert {"lr-high", "fewer-nodes", "master"} <= set(rows), sorted(rows)
    base, lr, nodes = rows["master"], rows["lr-high"], rows["fewer-nodes"]
    assert lr["params"]["train"]["actor_lr"] == high_lr and lr["params"]["env"] == base["params"]["env"]
    assert nodes["params"]["env"]["kwargs"]["num_nodes"] == fewer_nodes
    assert nodes["params"]["train"] == base["params"]["train"]
    for name in ("master", "lr-high", "fewer-nodes"):  # metrics.json is git-tracked: every rev has it
        m = rows[name]["metrics"]
        assert isinstance(m.get("reward", {}).get("final_mean"), float), (name, m)
        assert m["run"]["episodes"] == base["params"]["train"]["episodes"]
    assert lr["metrics"] != base["metrics"] != nodes["metrics"]
    # the CSV form as a user would read it
    table = dvc(repo, "exp", "show", "--csv", "--drop", ".*", "--keep",
                r"Experiment|train\.actor_lr|env\.kwargs\.num_nodes|reward\.final_mean").stdout
    header, *lines = list(csv.reader(table.splitlines()))
    assert {"train.actor_lr", "env.kwargs.num_nodes", "reward.final_mean"} <= set(header), header
    by_name = {r[0]: dict(zip(header, r)) for r in lines if r and r[0]}
    assert float(by_name["lr-high"]["train.actor_lr"]) == high_lr
    assert int(by_name["fewer-nodes"]["env.kwargs.num_nodes"]) == fewer_nodes


def test_metrics_diff_between_experiments(repo: Path):
    rows = exp_rows(repo)
    diff = json.loads(dvc(repo, "metrics", "diff", "lr-high", "fewer-nodes", "--json").stdout)
    changes = diff["metrics.json"]
    assert changes, diff
    for key, change in changes.items():
        group, name = key.split(".", 1)
        assert change["old"] == rows["lr-high"]["metrics"][group][name], key
        assert change["new"] == rows["fewer-nodes"]["metrics"][group][name], key
    assert "reward.final_mean" in changes or "reward.last" in changes, sorted(changes)
    assert all(c["old"] != c["new"] for c in changes.values())
    text = dvc(repo, "metrics", "diff", "lr-high", "fewer-nodes").stdout
    assert "Path" in text and "lr-high" in text and "fewer-nodes" in text and "Change" in text, text


def test_exp_apply_restores_the_experiment(repo: Path, high_lr, fewer_nodes):
    rows = exp_rows(repo)
    dvc(repo, "exp", "apply", "lr-high")
    params = yaml.safe_load((repo / "params.yaml").read_text())
    assert params["train"]["actor_lr"] == high_lr and params["env"]["kwargs"]["num_nodes"] != fewer_nodes
    assert json.loads((repo / "metrics.json").read_text()) == rows["lr-high"]["metrics"]
    # the persisted outputs are the experiment's too: dvc sees nothing to do
    assert "Data and pipelines are up to date." in dvc(repo, "status").stdout
    lock = yaml.safe_load((repo / "dvc.lock").read_text())["stages"]["train"]
    assert lock["params"]["params.yaml"]["train"]["actor_lr"] == high_lr
    import torch

    ckpt = torch.load(repo / "checkpoints" / "best.pt", weights_only=True)
    assert json.loads(ckpt["params"])["train"]["actor_lr"] == high_lr  # params as a JSON string


def test_exp_push_and_pull_through_git_and_dvc_remotes(repo: Path, tmp_path: Path, high_lr):
    """Experiments live in local git refs and the local cache until `dvc exp push`: it sends the
    refs to a git remote and the outputs (checkpoints included) to the default DVC remote.

    DVC 3.67 resolves a relative local remote (.dvc/config: url = ../.dvc-storage) against the
    root of the git tree when it works on other revisions (`dvc exp push`, `dvc push -A`), i.e.
    it writes to /.dvc-storage. Hence the documented step: an absolute URL in .dvc/config.local.
    """
    stray = Path("/.dvc-storage")
    stray_before = stray.exists()
    dvc(repo, "remote", "modify", "--local", "storage", "url", str(repo / ".dvc-storage"))
    dvc(repo, "exp", "apply", "lr-high")
    ckpt = tree_hashes(repo / "checkpoints")
    origin = tmp_path / "origin.git"
    git(tmp_path, "init", "-q", "--bare", str(origin))
    git(repo, "remote", "add", "origin", str(origin))
    git(repo, "push", "-q", "origin", "HEAD:master")
    out = dvc(repo, "exp", "push", "origin", "lr-high", "fewer-nodes")
    assert "Pushed experiment " in out.stdout and "to Git remote 'origin'." in out.stdout, out.stdout
    assert "lr-high" in out.stdout and "fewer-nodes" in out.stdout, out.stdout
    assert "files pushed" in out.stdout or "uploaded" in out.stdout, out.stdout  # the DVC part

    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", str(origin), str(clone))
    # the default remote (.dvc-storage/) is relative to each clone: use the first one's
    dvc(clone, "remote", "modify", "--local", "storage", "url", str(repo / ".dvc-storage"))
    listed = dvc(clone, "exp", "list", "origin").stdout
    assert "lr-high" in listed and "fewer-nodes" in listed, listed
    dvc(clone, "exp", "pull", "origin", "lr-high")
    dvc(clone, "exp", "apply", "lr-high")
    assert tree_hashes(clone / "checkpoints") == ckpt
    assert yaml.safe_load((clone / "params.yaml").read_text())["train"]["actor_lr"] == high_lr
    assert "Data and pipelines are up to date." in dvc(clone, "status").stdout
    assert stray_before or not stray.exists(), "dvc wrote to /.dvc-storage"
