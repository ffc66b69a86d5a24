"""Test helpers: tiny params, running stage scripts, comparing training runs, CSV fixtures."""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import yaml

# shared with bench/ and scripts/ (devkit/runs.py); re-exported for the tests
from devkit.runs import (  # noqa: F401
    DVC_TEST_PARAMS, PYTHON, REPO, TINY_PARAMS, deep_update, dvc, dvc_env, git, make_dvc_repo,
    project_params, run_cmd, with_env,
)


def write_params(path: Path, overrides: dict | None = None) -> dict:
    params = deep_update(TINY_PARAMS, overrides or {})
    Path(path).write_text(yaml.safe_dump(params, sort_keys=False))
    return params


def run_stage(stage: str, cwd: Path, *args: str, timeout: float = 300, check: bool = False,
              env: dict | None = None) -> subprocess.CompletedProcess:
    """Run ``stages/<stage>.py`` of this checkout with ``cwd`` as the repository root."""
    proc = subprocess.run(
        [PYTHON, str(REPO / "stages" / f"{stage}.py"), *args], cwd=cwd, capture_output=True,
        text=True, timeout=timeout, env={**os.environ, **(env or {})},
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"{stage} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc


# --- end-to-end DVC helpers (tests/dvc; the repository itself: devkit/runs.py) -------------------

def copy_repo(src: Path, dst: Path) -> Path:
    """Copy a git + DVC repository (workspace, .git, .dvc/cache); DVC's .dvc/tmp is left out."""

    def ignore(folder: str, names: list[str]) -> list[str]:
        return ["tmp"] if Path(folder).name == ".dvc" and "tmp" in names else []

    shutil.copytree(src, dst, symlinks=True, ignore=ignore)
    return Path(dst)


def edit_params(repo: Path, overrides: dict) -> dict:
    """Merge ``overrides`` into ``repo/params.yaml``; returns the new params."""
    path = Path(repo) / "params.yaml"
    params = deep_update(yaml.safe_load(path.read_text()), overrides)
    path.write_text(yaml.safe_dump(params, sort_keys=False))
    return params


STAGE_RAN = re.compile(r"^Running stage '([^']+)'", re.M)
STAGE_SKIPPED = re.compile(r"^Stage '([^']+)' didn't change, skipping", re.M)


def stages_ran(output: str) -> list[str]:
    """Stage names from dvc's "Running stage 'x':" lines, in order."""
    return STAGE_RAN.findall(output)


def stages_skipped(output: str) -> list[str]:
    """Stage names from dvc's "Stage 'x' didn't change, skipping" lines, in order."""
    return STAGE_SKIPPED.findall(output)


def tree_hashes(folder: Path) -> dict[str, str]:
    """{relative path: md5} of every file under ``folder``."""
    import hashlib

    folder = Path(folder)
    return {p.relative_to(folder).as_posix(): hashlib.md5(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def exp_rows(repo: Path) -> dict[str, dict]:
    """`dvc exp show --json` as {name or rev: {"rev", "params", "metrics"}}."""
    out = dvc(repo, "exp", "show", "--json").stdout
    rows: dict[str, dict] = {}

    def add(entry: dict) -> None:
        data = entry.get("data") or {}
        params = ((data.get("params") or {}).get("params.yaml") or {}).get("data") or {}
        metrics = ((data.get("metrics") or {}).get("metrics.json") or {}).get("data") or {}
        rows[entry.get("name") or entry["rev"]] = {"rev": entry["rev"], "params": params,
                                                   "metrics": metrics}

    for base in json.loads(out):
        add(base)
        for exp in base.get("experiments") or []:
            for rev in exp.get("revs") or []:
                add(rev)
    return rows


# --------------------------------------------------------------------------- comparing runs
LOGS = ("episodes.csv", "updates.csv", "steps.csv")
LIVE = ("live/metrics.json", "live/reward.csv", "live/losses.csv")  # the train stage's live files


def tiny(**over):
    """Validated TINY_PARAMS with ``over`` merged in (section -> {key: value})."""
    from rlpipe.config import Params

    return Params.from_dict(deep_update(TINY_PARAMS, over))


def newest_state(root: Path) -> dict:
    from rlpipe import checkpoints as ckpt

    return ckpt.load_checkpoint(ckpt.list_checkpoints(root / "checkpoints")[0][1])


def same_weights(a: dict, b: dict) -> bool:
    """Actor, critic and both optimizers' states bit-identical."""
    import torch

    nets = all(torch.equal(a[n][k], b[n][k]) for n in ("actor", "critic") for k in a[n])
    optim = all(
        torch.equal(sa[k], sb[k])
        for o in ("actor_optim", "critic_optim")
        for i, sa in a[o]["state"].items() for sb in [b[o]["state"][i]] for k in sa)
    return nets and optim


def assert_same_run(a: Path, b: Path) -> None:
    """Byte-identical CSV logs and live files, bit-identical newest checkpoints."""
    for name in LOGS:
        assert (a / "training_output" / name).read_bytes() == \
            (b / "training_output" / name).read_bytes(), name
    for name in LIVE:
        assert (a / name).read_bytes() == (b / name).read_bytes(), name
    sa, sb = newest_state(a), newest_state(b)
    assert sa["episode"] == sb["episode"]
    assert same_weights(sa, sb)


def log_text(root: Path) -> str:
    return (root / "training_output" / "agent_training.log").read_text()


# --------------------------------------------------------------------------- CSV fixtures
# The CSV contract spelled out independently of rlpipe.statistics, so a change there shows up.
EPISODES = ["Episode", "Immediate Reward", "Cumulative Reward", "Actor Loss", "Critic Loss",
            "Policy Entropy", "Episode Length", "Mean Episode Reward", "Deployment Accuracy"]
UPDATES = ["Update", "Global Step", "Episode", "Actor Loss", "Critic Loss", "Policy Entropy",
           "Approx KL", "Clip Fraction", "Explained Variance", "Learning Rate", "Actor Grad Norm",
           "Critic Grad Norm", "Skipped"]
STEPS = ["Episode", "Step", "Global Step", "Action", "Reward", "Value", "Log Prob", "Entropy",
         "Oracle Action", "Feasible"]


def cell(v) -> str:
    if v is None:
        return ""
    if isinstance(v, bool):
        return "1" if v else "0"
    if isinstance(v, float):
        return repr(v)
    return str(v)


def write_csv(path: Path, header: list[str], rows: list[list], tail: str = "") -> None:
    text = ",".join(header) + "\n" + "".join(",".join(cell(v) for v in r) + "\n" for r in rows)
    Path(path).write_text(text + tail)


def cartpole_checkpoint(folder: Path) -> Path:
    """A small checkpoint of the current format: CartPole-v1, a 4-unit MLP, the periodic
    checkpoint of episode 2 (1 env, 1 epoch, 1 minibatch, seed 0), written by ``train``."""
    from rlpipe.config import Params
    from rlpipe.train.run import train

    over = {"agent": {"mlp_hidden": [4]},
            "train": {"episodes": 2, "num_envs": 1, "update_epochs": 1, "minibatches": 1,
                      "summary_window": 2},
            "checkpoint": {"interval": 2}, "capture": {"every": 0, "last": 0}}
    params = Params.from_dict(with_env(deep_update(TINY_PARAMS, over), {"id": "CartPole-v1"}))
    assert train(params, Path(folder), console=False) == 0
    return Path(folder) / "checkpoints" / "ckpt_ep000002.pt"
