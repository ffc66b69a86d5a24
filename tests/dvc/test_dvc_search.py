"""The sweep pipeline with ``sweep.search: optuna`` through the real ``dvc --cd sweeps repro``:
a 6-trial TPE study, 2 seeds per trial, median pruning, on the default environment (tiny); its
best params feed ``dvc exp run -S``; a study whose driver is SIGKILLed half way continues on the
next ``dvc repro``.

Pruning is deterministic here: the sampler is seeded, one setting runs at a time (2 CPUs, 2
seeds), and the space holds ``env.kwargs.requests_per_episode``, which changes the episodes'
rewards from the first episode (a learning rate alone changes nothing in 8 tiny episodes, and the
median pruner compares a trial's best value so far).
"""
from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
import yaml

from rlpipe.config import Params
from rlpipe.sweep.best import set_args
from tests.dvc.test_dvc_sweep import _kill_group
from tests.sweep.sweep_helpers import start_dvc
from tests.helpers import (deep_update, dvc, edit_params, git,
                           log_text, make_dvc_repo, stages_ran)

pytestmark = [pytest.mark.dvc, pytest.mark.slow]

SWEEP_STAGE = "sweep"
SWEEP = ("--cd", "sweeps")  # the sweep pipeline is a DVC project of its own in sweeps/
SEARCH = {"search": "optuna", "trials": 6, "seeds": [0, 1], "sampler": "tpe", "sampler_seed": 0,
          "pruner": "median", "pruner_startup_trials": 1, "window": 2, "max_concurrent": 2,
          "grid": {}, "max_retries": 1,
          "space": {"train.actor_lr": {"low": 0.0001, "high": 0.03, "log": True},
                    "env.kwargs.requests_per_episode": [4, 8, 12]}}


@pytest.fixture(scope="module")
def repo(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("search_dvc")
    repo = make_dvc_repo(root / "repo", {
        "train": {"episodes": 8, "num_envs": 2}, "checkpoint": {"interval": 2, "keep_last": 10},
        "capture": {"every": 0, "last": 0}})
    params = yaml.safe_load((repo / "params.yaml").read_text())
    params["sweep"] = dict(SEARCH)  # the whole section (edit_params would merge the grid in)
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    assert (repo / "sweeps" / ".dvc" / "config").is_file()  # make_dvc_repo copies the pipeline
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "search pipeline")
    return repo


def study_trials(repo: Path) -> list:
    import optuna
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    [path] = (repo / "sweeps" / "trials").glob("study-*.journal")
    storage = JournalStorage(JournalFileBackend(str(path)))
    name = "rlpipe-" + path.name[len("study-"):-len(".journal")]
    return optuna.load_study(study_name=name, storage=storage).trials


def test_a_tpe_study_prunes_and_its_best_params_feed_dvc_exp_run(repo):
    out = dvc(repo, *SWEEP, "repro", timeout=600)
    text = out.stdout + out.stderr
    assert stages_ran(text) == [SWEEP_STAGE], text
    metrics = json.loads((repo / "sweeps" / "metrics.json").read_text())
    counts = metrics["trials"]
    assert counts["asked"] == 6 and counts["complete"] + counts["pruned"] == 6, counts
    assert counts["pruned"] >= 1 and counts["complete"] >= 1, text
    states = [t.state.name for t in study_trials(repo)]
    assert states.count("PRUNED") == counts["pruned"] and states.count("COMPLETE") == counts["complete"]
    # a pruned trial stopped early with its checkpoint; none failed
    metas = [json.loads(p.read_text()) for p in (repo / "sweeps" / "trials").glob("*/trial.json")]
    assert not [m for m in metas if m["status"] == "failed"]
    early = [m for m in metas if m["status"] == "pruned" and m["attempts"]
             and m["attempts"][-1].get("pruned_at", 8) < 8]
    for m in early:
        assert list((repo / "sweeps" / "trials" / m["trial_id"]).glob("checkpoints/ckpt_ep*"))
    best = metrics["best"]
    assert best["metric"] == "final_reward" and best["setting"] in metrics["settings"]
    for name in ("study_history.png", "param_importance.png", "learning_curves.png"):
        assert (repo / "sweeps" / "figures" / name).read_bytes()[:4] == b"\x89PNG"

    # best_params.yaml: a fragment params.yaml takes as it is, and `dvc exp run -S` takes its keys
    fragment = yaml.safe_load((repo / "sweeps" / "best_params.yaml").read_text())
    assert set(fragment) <= {"train", "env"} and fragment
    merged = deep_update(yaml.safe_load((repo / "params.yaml").read_text()), fragment)
    Params.from_dict(merged)
    flat = {f"{s}.{k}": v for s, sec in fragment.items() for k, v in sec.items() if s != "env"}
    flat.update({f"env.kwargs.{k}": v for k, v in fragment.get("env", {}).get("kwargs", {}).items()})
    args = [a for kv in set_args(flat) for a in ("-S", kv)]
    dry = dvc(repo, "exp", "run", "--dry", *args, "train", check=False, timeout=300)
    assert dry.returncode == 0, dry.stdout + dry.stderr
    assert "ERROR" not in dry.stdout + dry.stderr


def test_a_killed_driver_continues_its_study_on_the_next_repro(repo, tmp_path):
    # longer trials, no pruning: a new study (the definition changed), killed half way
    edit_params(repo, {"train": {"episodes": 16}, "checkpoint": {"interval": 4},
                       "sweep": {"trials": 2, "pruner": "none"}})
    trials_dir = repo / "sweeps" / "trials"
    log = tmp_path / "killed.log"
    proc = start_dvc(repo, [*SWEEP, "repro"], log)
    running = []
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and proc.poll() is None:
            text = log.read_text()
            metas = [json.loads(p.read_text()) for p in trials_dir.glob("*-t00*-seed*/trial.json")]
            running = [m["trial_id"] for m in metas if m["status"] == "running"
                       and list((trials_dir / m["trial_id"]).glob("checkpoints/ckpt_ep*"))]
            if "trial t000 complete" in text and len(running) == 2:
                break  # one setting done, the next one's seeds have sent checkpoints home
            time.sleep(0.05)
        assert proc.poll() is None, log.read_text()
    finally:
        _kill_group(proc)
    before = [(t.number, t.state.name, t.params, t.value) for t in study_trials(repo)]
    assert before[0][1] == "COMPLETE" and before[1][1] == "RUNNING", before

    out = dvc(repo, *SWEEP, "repro", timeout=600)
    text = out.stdout + out.stderr
    assert "1 complete, 0 pruned, 1 to resume, 0 to ask" in text, text
    after = study_trials(repo)
    assert [t.state.name for t in after] == ["COMPLETE"] * 2
    assert [(t.number, t.params) for t in after[:2]] == [(n, p) for n, _, p, _ in before[:2]]
    assert after[0].value == before[0][3]  # the finished setting was kept, not rerun
    for victim in running:  # the interrupted setting resumed from its checkpoints
        assert "resumed from checkpoints/ckpt_ep" in log_text(trials_dir / victim)
        meta = json.loads((trials_dir / victim / "trial.json").read_text())
        assert [a["outcome"] for a in meta["attempts"]] == ["interrupted", "finished"]
    assert json.loads((repo / "sweeps" / "metrics.json").read_text())["trials"]["complete"] == 2
