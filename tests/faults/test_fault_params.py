"""Fault suite, params: bad params.yaml files through the real stage entry points.

Each case runs ``python stages/<stage>.py`` in a copy of a folder that already holds a finished
tiny run (training_output/, checkpoints/, data/, plots/, metrics.json) and checks: a non-zero
exit, exactly one message line on stderr naming the key and what is allowed, no traceback, and
not one byte of the previous outputs changed (no file added or removed either).
"""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch
import yaml

from rlpipe.train.run import train
from rlpipe.config import Params
from tests.helpers import TINY_PARAMS, deep_update, run_stage, write_params

OUTPUTS = ("training_output", "checkpoints", "data", "plots", "metrics.json")


def snapshot(root: Path) -> dict[str, bytes]:
    """Every file of the folder (outputs and anything a stage might add), by bytes."""
    return {p.relative_to(root).as_posix(): p.read_bytes()
            for p in sorted(root.rglob("*")) if p.is_file() and p.name != "params.yaml"}


@pytest.fixture(scope="module")
def previous_run(tmp_path_factory) -> Path:
    """A folder after train + summarize + visualize of a tiny run (never changed by tests)."""
    root = tmp_path_factory.mktemp("previous_run")
    write_params(root / "params.yaml", {"train": {"episodes": 8}})
    assert train(Params.from_dict(deep_update(TINY_PARAMS, {"train": {"episodes": 8}})), root,
                 console=False) == 0
    run_stage("summarize", root, check=True)
    run_stage("visualize", root, check=True)
    for name in OUTPUTS:
        assert (root / name).exists(), name
    return root


@pytest.fixture
def run_copy(previous_run, tmp_path) -> Path:
    root = tmp_path / "run"
    shutil.copytree(previous_run, root)
    return root


def _yaml(over: dict) -> str:
    return yaml.safe_dump(deep_update(TINY_PARAMS, over), sort_keys=False)


def _yaml_env(env: dict) -> str:
    """Tiny params with the whole ``env`` section replaced (another env takes other kwargs)."""
    return yaml.safe_dump({**deep_update(TINY_PARAMS, {}), "env": env}, sort_keys=False)


# (id, stage, params.yaml text, substrings the one stderr line must hold: key, what is allowed)
CASES = [
    # --- train: unknown keys / sections
    ("unknown-key", "train", _yaml({"train": {"lr": 0.1}}),
     ["train.lr", "unknown key", "allowed keys", "actor_lr"]),
    ("unknown-section", "train", _yaml({"trian": {"episodes": 3}}),
     ["trian", "unknown section", "allowed", "train"]),
    ("removed-vf-coef", "train", _yaml({"train": {"vf_coef": 0.5}}),   # a key of earlier versions
     ["train.vf_coef", "removed", "separate networks", "train.critic_max_grad_norm",
      "max_grad_norm / vf_coef", "delete the line"]),
    ("section-not-mapping", "train", _yaml({"train": 5}), ["train", "expected a mapping"]),
    ("top-level-list", "train", "- env\n- train\n", ["params.yaml", "expected a mapping"]),
    # --- wrong types
    ("episodes-string", "train", _yaml({"train": {"episodes": "many"}}),
     ["train.episodes", "expected an integer", "'many'"]),
    ("num-envs-float", "train", _yaml({"train": {"num_envs": 2.5}}),
     ["train.num_envs", "expected an integer"]),
    ("masking-int", "train", _yaml({"env": {"action_masking": 3}}),
     ["env.action_masking", "expected true/false"]),
    ("lr-nan", "train", _yaml({"train": {"actor_lr": float("nan")}}),
     ["train.actor_lr", "finite number"]),
    ("mlp-hidden-scalar", "train", _yaml({"agent": {"mlp_hidden": 64}}),
     ["agent.mlp_hidden", "expected a list of an integer"]),
    ("mlp-hidden-empty", "train", _yaml({"agent": {"mlp_hidden": []}}),   # was an IndexError
     ["agent.mlp_hidden", "at least one hidden layer"]),
    # --- negative / zero values where disallowed
    ("step-log-negative", "train", _yaml({"experiment": {"step_log_interval": -1}}),
     ["experiment.step_log_interval", "must be >= 0"]),
    ("capture-every-negative", "train", _yaml({"capture": {"every": -4}}),
     ["capture.every", "must be >= 0"]),
    ("capture-episode-zero", "train", _yaml({"capture": {"episodes": [4, 0]}}),
     ["capture.episodes[1]", "must be > 0"]),
    ("keep-last-zero", "train", _yaml({"checkpoint": {"keep_last": 0}}),
     ["checkpoint.keep_last", "between 1 and"]),
    ("episodes-zero", "train", _yaml({"train": {"episodes": 0}}),
     ["train.episodes", "between 1 and"]),
    ("num-envs-zero", "train", _yaml({"train": {"num_envs": 0}}), ["train.num_envs", "between 1 and"]),
    # --- 'auto' misspelled
    ("interval-Auto", "train", _yaml({"checkpoint": {"interval": "Auto"}}),
     ["checkpoint.interval", "an integer or 'auto'"]),
    ("write-interval-atuo", "train", _yaml({"experiment": {"write_interval": "atuo"}}),
     ["experiment.write_interval", "an integer or 'auto'"]),
    # --- choices
    ("unknown-algo", "train", _yaml({"train": {"algo": "dqn"}}),
     ["train.algo", "must be one of 'ppo', 'a2c'", "'dqn'"]),
    ("unknown-on-nan", "train", _yaml({"train": {"on_nan": "ignore"}}),
     ["train.on_nan", "'stop', 'skip'"]),
    # --- environments (these import the training library: a few seconds each)
    ("unknown-env", "train", _yaml_env({"id": "NoSuchEnv-v9"}),
     ["env.id", "NoSuchEnv-v9", "cannot make environment"]),
    # --- devices (unsupported env spaces: tests/train/test_spaces_e2e.py)
    ("device-typo", "train", _yaml({"train": {"device": "gpu"}}),
     ["train.device", "'auto', 'cpu', 'cuda' or 'cuda:N'", "'gpu'"]),
    *([("device-cuda-without-gpu", "train", _yaml({"train": {"device": "cuda:0"}}),
        ["train.device", "'cuda:0'", "no CUDA device"])] if not torch.cuda.is_available() else []),
    ("env-module-missing", "train", _yaml_env({"id": "no_such_module:Foo-v0"}),  # was a traceback
     ["env.id", "cannot make environment", "No module named 'no_such_module'"]),
    # --- absurd sizes and ranges
    ("num-nodes-zero", "train", _yaml({"env": {"kwargs": {"num_nodes": 0}}}),
     ["env.kwargs.num_nodes", "between 3 and 2000"]),
    ("num-nodes-1e7", "train", _yaml({"env": {"kwargs": {"num_nodes": 10**7}}}),
     ["env.kwargs.num_nodes", "between 3 and 2000"]),
    ("num-cloud-too-many", "train", _yaml({"env": {"kwargs": {"num_cloud": 8}}}),
     ["env.kwargs.num_cloud", "must be < env.kwargs.num_nodes (8)"]),
    ("env-kwarg-unknown", "train", _yaml({"env": {"kwargs": {"num_nodez": 8}}}),
     ["env.kwargs.num_nodez", "unknown key"]),
    ("env-kwargs-not-mapping", "train", _yaml({"env": {"kwargs": 8}}),
     ["env.kwargs", "expected a mapping"]),
    ("env-kwarg-no-config-class", "train", _yaml_env({"id": "CartPole-v1", "kwargs": {"bogus": 1}}),
     ["env.kwargs", "'CartPole-v1' does not accept these settings", "bogus"]),
    ("gamma-above-one", "train", _yaml({"train": {"gamma": 1.5}}), ["train.gamma", "between 0.0 and 1.0"]),
    ("seed-over-32-bits", "train", _yaml({"train": {"seed": 2**40}}),             # was a traceback
     ["train.seed", "between 0 and 4294967295"]),
    # --- paths
    ("dir-parent", "train", _yaml({"experiment": {"directory": "../x"}}),
     ["experiment.directory", "relative path inside the repository"]),
    ("dir-absolute", "train", _yaml({"experiment": {"directory": "/tmp/x"}}),
     ["experiment.directory", "relative path inside the repository"]),
    ("ckpt-dir-parent", "train", _yaml({"checkpoint": {"directory": "a/../../ckpt"}}),
     ["checkpoint.directory", "relative path inside the repository"]),
    ("dir-is-a-file", "train", _yaml({"experiment": {"directory": "metrics.json"}}),  # was a write error
     ["experiment.directory", "must name a folder", "metrics.json is a file"]),
    ("ckpt-dir-under-a-file", "train", _yaml({"checkpoint": {"directory": "metrics.json/ckpt"}}),
     ["checkpoint.directory", "must name a folder", "metrics.json is a file"]),
    # --- the file itself
    ("empty-file", "train", "", ["params.yaml", "empty", "expected sections"]),
    ("invalid-yaml", "train", "train:\n  episodes: 4\n\talgo: ppo\n",
     ["params.yaml", "invalid YAML", "line 3, column 1"]),
    ("not-utf8", "train", b"train:\n  algo: \xff\xfe\n",                        # was a traceback
     ["params.yaml", "invalid YAML", "not UTF-8"]),
    ("python-tag", "train", "train: !!python/object/apply:os.system ['touch pwned']\n",
     ["params.yaml", "invalid YAML"]),
    # --- summarize
    ("summarize-window-zero", "summarize", _yaml({"summarize": {"window": 0}}),
     ["summarize.window", "between 1 and"]),
    ("summarize-unknown-key", "summarize", _yaml({"summarize": {"windw": 5}}),
     ["summarize.windw", "unknown key", "window"]),
    ("summarize-max-points-string", "summarize", _yaml({"summarize": {"max_points": "lots"}}),
     ["summarize.max_points", "expected an integer"]),
    ("summarize-dir-absolute", "summarize", _yaml({"experiment": {"directory": "/tmp/x"}}),
     ["experiment.directory", "relative path"]),
    ("summarize-empty-file", "summarize", "", ["params.yaml", "empty"]),
    # --- visualize
    ("visualize-style", "visualize", _yaml({"visualize": {"style": "dark"}}),
     ["visualize.style", "must be one of", "'whitegrid'"]),
    ("visualize-dpi", "visualize", _yaml({"visualize": {"dpi": 10}}),
     ["visualize.dpi", "between 30 and 600"]),
    ("visualize-figures-string", "visualize", _yaml({"visualize": {"figures": "reward"}}),
     ["visualize.figures", "expected a list"]),
    ("visualize-dir-parent", "visualize", _yaml({"experiment": {"directory": "../x"}}),
     ["experiment.directory", "relative path"]),
    ("visualize-not-utf8", "visualize", b"visualize:\n  dpi: \xc3\x28\n", ["params.yaml", "not UTF-8"]),
]


@pytest.mark.parametrize("stage, text, expected", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_params_fail_cleanly_and_touch_nothing(run_copy, stage, text, expected):
    path = run_copy / "params.yaml"
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    before = snapshot(run_copy)
    proc = run_stage(stage, run_copy, "--params", "params.yaml", timeout=120)
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 2, (proc.returncode, proc.stderr)
    assert "Traceback" not in proc.stderr, proc.stderr
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith(f"{stage}: error in params: "), lines[0]
    for part in expected:
        assert part in lines[0], f"{part!r} not in {lines[0]!r}"
    assert snapshot(run_copy) == before
    assert not (run_copy / "pwned").exists()


@pytest.mark.parametrize("stage", ["train", "summarize", "visualize"])
def test_params_path_missing_or_a_folder(run_copy, stage):
    before = snapshot(run_copy)
    (run_copy / "params_dir.yaml").mkdir()
    for arg, part in (("nope.yaml", "nope.yaml: file not found"),
                      ("params_dir.yaml", "params_dir.yaml: cannot read (Is a directory)")):
        proc = run_stage(stage, run_copy, "--params", arg, timeout=120)
        lines = [line for line in proc.stderr.splitlines() if line.strip()]
        assert proc.returncode == 2 and len(lines) == 1 and part in lines[0], proc.stderr
    (run_copy / "params_dir.yaml").rmdir()
    assert snapshot(run_copy) == before
