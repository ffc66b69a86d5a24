"""Test helpers: tiny params, running stage scripts."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
PYTHON = sys.executable

# A run small enough for tests: seconds, not minutes.
TINY_PARAMS = {
    "env": {"num_nodes": 8, "num_cloud": 1, "requests_per_episode": 12, "max_rejections": 4},
    "agent": {"hidden_dim": 16, "heads": 2, "gat_layers": 2},
    "train": {"episodes": 16, "num_envs": 4, "update_epochs": 2, "minibatches": 2,
              "summary_window": 4, "progress_bar": False},
    "experiment": {"write_interval": 1},
    "checkpoint": {"interval": 4, "keep_last": 10},
    "capture": {"every": 8, "last": 1},
    "summarize": {"window": 4, "max_points": 50},
    "visualize": {"tsne_sample": 50, "animation_max_frames": 5, "dpi": 40},
}


def deep_update(base: dict, over: dict) -> dict:
    out = {k: (dict(v) if isinstance(v, dict) else v) for k, v in base.items()}
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = deep_update(out[k], v)
        else:
            out[k] = v
    return out


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
