"""Runs in temporary folders, shared by tests/, bench/ and scripts/ (not part of the library):
tiny params, merging params, this project's params.yaml, and a throwaway git + DVC repository
of this checkout's pipeline driven by the real ``dvc`` CLI.

Import it with the repository root on ``sys.path`` (pytest's ``pythonpath``, or the script's
own ``sys.path.insert``).
"""
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
    "env": {"kwargs": {"num_nodes": 8, "num_cloud": 1, "requests_per_episode": 12, "max_rejections": 4}},
    "agent": {"hidden_dim": 16, "heads": 2, "gat_layers": 2},
    "train": {"episodes": 16, "num_envs": 4, "update_epochs": 2, "minibatches": 2,
              "summary_window": 4, "progress_bar": False},
    "experiment": {"write_interval": 1},
    "checkpoint": {"interval": 4, "keep_last": 10},
    "capture": {"every": 8, "last": 1},
    "summarize": {"window": 4, "max_points": 50},
    "visualize": {"tsne_sample": 50, "animation_max_frames": 5, "dpi": 40},
    # the project's variants (a zero-shot one on larger graphs), at the tiny graphs' scale
    "evaluate": {"episodes": 4, "variants": {"trained": {}, "zero_shot_2x": {"num_nodes": 16}}},
}


def deep_update(base: dict, over: dict) -> dict:
    out = {k: (dict(v) if isinstance(v, dict) else v) for k, v in base.items()}
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = deep_update(out[k], v)
        else:
            out[k] = v
    return out


def with_env(params: dict, env: dict) -> dict:
    """``params`` with the whole ``env`` section replaced (another environment takes its own
    ``env.kwargs``, not the tiny graph settings)."""
    return {**params, "env": dict(env)}


def project_params(overrides: dict | None = None) -> dict:
    """This project's params.yaml with TINY_PARAMS (then ``overrides``) on top.

    The stages' ``params:`` name keys that must exist in params.yaml (e.g. ``experiment.directory``
    for summarize/visualize), so a DVC repository needs the full file, not only TINY_PARAMS.
    """
    base = yaml.safe_load((REPO / "params.yaml").read_text())
    return deep_update(deep_update(base, TINY_PARAMS), overrides or {})


def dvc_env(extra: dict | None = None) -> dict:
    """Environment for dvc: this interpreter's bin/ first on PATH (stages run `python ...`)."""
    env = {**os.environ, "DVC_NO_ANALYTICS": "1", "PYTHONUNBUFFERED": "1"}
    env["PATH"] = os.pathsep.join([str(Path(PYTHON).parent), env.get("PATH", "")])
    env.update(extra or {})
    return env


def run_cmd(args: list[str], cwd: Path, *, check: bool = True, timeout: float = 300,
            env: dict | None = None, output_file: Path | None = None) -> subprocess.CompletedProcess:
    """Run a command; on an unexpected exit status raise with its whole output.

    ``output_file``: send stdout+stderr to this file instead of pipes (then returned as stdout).
    Needed for commands that leave background processes behind (`dvc queue start`): they inherit
    the pipes, and reading a pipe to its end would wait for them.
    """
    if output_file is None:
        proc = subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=timeout,
                              env=dvc_env(env))
    else:
        with open(output_file, "w") as f:
            proc = subprocess.run(args, cwd=cwd, stdout=f, stderr=subprocess.STDOUT,
                                  stdin=subprocess.DEVNULL, text=True, timeout=timeout,
                                  env=dvc_env(env))
        proc.stdout, proc.stderr = Path(output_file).read_text(), ""
    if check and proc.returncode != 0:
        raise AssertionError(f"{' '.join(map(str, args))} failed ({proc.returncode}) in {cwd}:\n"
                             f"--- stdout\n{proc.stdout}\n--- stderr\n{proc.stderr}")
    return proc


def dvc(repo: Path, *args: str, env: dict | None = None, **kw) -> subprocess.CompletedProcess:
    """``dvc <args>`` in ``repo`` (the real CLI of this environment).

    The stages run with PYTHONPATH=src (relative: the folder dvc runs them in), so they import
    the temporary repository's copy of rlpipe, which is what dvc hashes as their deps, and not
    the editable install of this checkout, which may be edited while the tests run (the training
    fingerprint covers the training code: an edit in between would turn a resume into a restart).
    Queued experiments run in their own copy of the repository and so use that copy's code.
    """
    exe = Path(PYTHON).parent / "dvc"
    pythonpath = os.pathsep.join(p for p in ("src", os.environ.get("PYTHONPATH")) if p)
    return run_cmd([str(exe) if exe.exists() else "dvc", *args], repo,
                   env={"PYTHONPATH": pythonpath, **(env or {})}, **kw)


def git(repo: Path, *args: str, **kw) -> subprocess.CompletedProcess:
    return run_cmd(["git", *args], repo, **kw)


# The DVC tests check what DVC does with the stages (reruns, caching, experiments, remotes, plots
# pages), not the figures, which tests/visualize draws: the figures drawn from captures (a t-SNE
# worker process, attention heatmaps, the GIF: 3 of the tiny visualize run's 5 s of CPU) are
# placeholder images in their repositories, so every `dvc repro` and experiment there is cheaper.
DVC_TEST_PARAMS = {
    "visualize": {"figures": ["reward", "loss", "actions", "entropy", "value", "performance",
                              "evaluation"]},
}


#: the pipelines that are DVC projects of their own, and the files that make each one
SUBPROJECTS = ("sweeps", "deploy")
SUBPROJECT_FILES = ("dvc.yaml", ".gitignore", ".dvcignore", ".dvc/config", ".dvc/.gitignore")


def make_dvc_repo(repo: Path, overrides: dict | None = None) -> Path:
    """A fresh git + DVC repository at ``repo`` with this project's pipeline files, its DVC config
    (default remote, plots HTML template) and tiny params (TINY_PARAMS, DVC_TEST_PARAMS, then
    ``overrides``); one commit."""
    repo = Path(repo)
    repo.mkdir(parents=True)
    for name in ("dvc.yaml", ".gitignore", ".dvcignore"):
        if (REPO / name).exists():
            shutil.copy(REPO / name, repo / name)
    shutil.copytree(REPO / "stages", repo / "stages", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(REPO / "src", repo / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    if (REPO / "dvc_plots_template").exists():
        shutil.copytree(REPO / "dvc_plots_template", repo / "dvc_plots_template")
    # the sweep and export pipelines: DVC projects of their own (root commands never see them)
    for folder in SUBPROJECTS:
        for name in SUBPROJECT_FILES:
            if (REPO / folder / name).is_file():
                (repo / folder / name).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy(REPO / folder / name, repo / folder / name)
    params = project_params(deep_update(DVC_TEST_PARAMS, overrides or {}))
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    git(repo, "init", "-q")
    git(repo, "config", "user.email", "test@rlpipe.local")
    git(repo, "config", "user.name", "rlpipe tests")
    dvc(repo, "init", "-q")
    if (REPO / ".dvc" / "config").is_file():  # the project's remotes and plots settings
        shutil.copy(REPO / ".dvc" / "config", repo / ".dvc" / "config")
    dvc(repo, "config", "core.analytics", "false")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "init")
    return repo
