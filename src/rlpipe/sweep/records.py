"""Trial folders on the driver: where they are, which are finished, and ``trial.json``.

``trials/<trial_id>/`` holds exactly what a single run writes in the repository root
(``<experiment.directory>/`` and ``<checkpoint.directory>/``) plus ``trial.json``: the trial's
seed, setting, status and every attempt (node, outcome, seconds, error). A trial is finished when
its ``run.json`` says so for the current target and training fingerprint; a rerun skips it.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any, Iterable

from rlpipe.config import fingerprint
from rlpipe.io_utils import atomic_write_text
from rlpipe.paths import RUN_JSON, SWEEP_TRIALS_DIR
from rlpipe.sweep.files import TRIAL_META
from rlpipe.sweep.grid import Trial

TRIALS_DIR = SWEEP_TRIALS_DIR


def trial_dir(trials_dir: Path, trial: Trial) -> Path:
    return Path(trials_dir) / trial.trial_id


def run_json_path(trials_dir: Path, trial: Trial) -> Path:
    return trial_dir(trials_dir, trial) / trial.params.experiment.directory / RUN_JSON


def read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def is_finished(trials_dir: Path, trial: Trial) -> bool:
    """``run.json`` says finished, at or past the target, with this trial's fingerprint."""
    run = read_json(run_json_path(trials_dir, trial))
    return (run.get("status") == "finished"
            and isinstance(run.get("episodes"), int)
            and run["episodes"] >= trial.params.train.episodes
            and run.get("fingerprint") == fingerprint(trial.params))


def remove_stale(trials_dir: Path, keep: Iterable[str]) -> list[str]:
    """Delete trial folders that belong to no trial of the current sweep; returns their names."""
    trials_dir = Path(trials_dir)
    if not trials_dir.is_dir():
        return []
    keep = set(keep)
    gone = sorted(p.name for p in trials_dir.iterdir() if p.name not in keep)
    for name in gone:
        p = trials_dir / name
        if p.is_dir() and not p.is_symlink():
            shutil.rmtree(p)
        else:
            p.unlink()
    return gone


def read_meta(trials_dir: Path, trial: Trial) -> dict[str, Any]:
    return read_json(trial_dir(trials_dir, trial) / TRIAL_META)


def past_attempts(trials_dir: Path, trial: Trial) -> list[dict]:
    """The attempts of earlier sweep runs; one still "running" was cut short by a kill."""
    attempts = read_meta(trials_dir, trial).get("attempts")
    if not isinstance(attempts, list):
        return []
    out = [a for a in attempts if isinstance(a, dict)]
    for a in out:
        if a.get("outcome") == "running":
            a["outcome"] = "interrupted"
    return out


def write_meta(trials_dir: Path, trial: Trial, status: str, attempts: list[dict]) -> None:
    atomic_write_text(trial_dir(trials_dir, trial) / TRIAL_META, json.dumps({
        "trial_id": trial.trial_id, "seed": trial.seed, "setting": trial.values,
        "label": trial.label, "fingerprint": fingerprint(trial.params), "status": status,
        "attempts": attempts,
    }, indent=2, sort_keys=False) + "\n")
