"""Helpers for sweep tests: tiny CartPole params, running the stage, comparing trials with runs."""
from __future__ import annotations

import os
import subprocess
from pathlib import Path

import yaml

from tests.helpers import (PYTHON, REPO, assert_same_run, deep_update, project_params,
                           with_env)

# CartPole with a 16-unit MLP: a trial trains in well under a second once torch is imported.
SWEEP_PARAMS = {
    "env": {"id": "CartPole-v1"},
    "agent": {"mlp_hidden": [16]},
    "train": {"episodes": 8, "num_envs": 2, "update_epochs": 1, "minibatches": 1,
              "summary_window": 4, "progress_bar": False},
    "experiment": {"write_interval": 1},
    "checkpoint": {"interval": 2, "keep_last": 10},
    "capture": {"every": 0, "last": 0},
    "sweep": {"seeds": [0, 1], "grid": {}, "window": 4, "max_concurrent": 2, "max_retries": 1},
}


def sweep_params(overrides: dict | None = None) -> dict:
    """The project's params.yaml, the tiny test params, SWEEP_PARAMS, then ``overrides``; the
    sweep section is SWEEP_PARAMS' with the keys of ``overrides["sweep"]`` replaced (not merged:
    a grid given there is the whole grid)."""
    over = dict(overrides or {})
    sweep = {**SWEEP_PARAMS["sweep"], **over.pop("sweep", {})}
    rest = {k: v for k, v in SWEEP_PARAMS.items() if k not in ("env", "sweep")}
    params = deep_update(with_env(project_params(rest), SWEEP_PARAMS["env"]), over)
    params["sweep"] = sweep
    return params


def write_sweep_params(path: Path, overrides: dict | None = None) -> dict:
    params = sweep_params(overrides)
    Path(path).write_text(yaml.safe_dump(params, sort_keys=False))
    return params


def run_sweep(cwd: Path, params: str = "params.yaml", out: str = "sweeps", *,
              env: dict | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    """``python stages/sweep.py`` of this checkout, in ``cwd``."""
    return subprocess.run(
        [PYTHON, str(REPO / "stages" / "sweep.py"), "--params", params, "--out", out],
        cwd=cwd, capture_output=True, text=True, timeout=timeout,
        env={**os.environ, **(env or {})}, stdin=subprocess.DEVNULL)


def trials_of(params_file: Path):
    """The trials of the sweep in ``params_file`` (as the stage plans them)."""
    from rlpipe.config import TRAIN_SECTIONS, Params, load_sections
    from rlpipe.sweep.grid import expand

    sections = load_sections(params_file, (*TRAIN_SECTIONS, "sweep"))
    params = Params(**{**Params.from_dict({}).__dict__, **sections})
    return expand(params, params.sweep)


def assert_trials_match_single_runs(params_file: Path, trials_dir: Path, scratch: Path) -> int:
    """Every trial folder is byte/bit-identical to the same run trained here, uninterrupted
    (in ``scratch``/<trial id>); returns how many trials were compared."""
    from rlpipe.train.run import train

    n = 0
    for trial in trials_of(params_file):
        ref = Path(scratch) / trial.trial_id
        assert train(trial.params, ref, console=False) == 0
        assert_same_run(trials_dir / trial.trial_id, ref)
        n += 1
    return n


def start_dvc(repo: Path, args: list[str], log: Path) -> subprocess.Popen:
    """``dvc <args>`` in ``repo`` in the background, in a process group of its own (so a test
    can SIGKILL dvc, the stage and the Ray it starts together), output to ``log``."""
    from tests.helpers import dvc_env

    exe = str(Path(dvc_env()["PATH"].split(os.pathsep)[0]) / "dvc")
    with open(log, "w") as out:
        return subprocess.Popen([exe, *args], cwd=repo, stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, env=dvc_env({"PYTHONPATH": "src"}),
                                start_new_session=True)
