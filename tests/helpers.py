"""Test helpers: tiny params, running stage scripts, comparing training runs, CSV fixtures."""
from __future__ import annotations

import json
import os
import re
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


# --- end-to-end DVC helpers (tests/dvc) ---------------------------------------------------------

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
# The CSV contract spelled out independently of rlpipe.contracts, so a change there shows up.
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
