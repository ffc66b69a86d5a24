"""The sweep stage on an embedded (local) Ray: runs, skips, retries, and refuses bad input."""
from __future__ import annotations

import json
import socket

import pytest

from rlpipe.sweep.grid import BASE_SETTING
from tests.sweep.sweep_helpers import (assert_trials_match_single_runs, run_sweep, trials_of,
                                       write_sweep_params)

pytestmark = pytest.mark.slow


def lines(text: str) -> list[str]:
    return [ln for ln in text.splitlines() if ln.strip()]


def test_local_sweep_runs_every_trial_then_skips_them(tmp_path):
    write_sweep_params(tmp_path / "params.yaml",
                       {"sweep": {"grid": {"train.actor_lr": [0.001, 0.01]}}})
    first = run_sweep(tmp_path)
    assert first.returncode == 0, first.stdout + first.stderr
    assert "4 trials = 2 settings x 2 seeds" in first.stdout
    assert "started a local Ray instance (2 CPUs)" in first.stdout
    out = tmp_path / "sweeps"
    metrics = json.loads((out / "metrics.json").read_text())
    assert set(metrics["settings"]) == {"train.actor_lr=0.001", "train.actor_lr=0.01"}
    assert metrics["trials"] == {"total": 4, "finished": 4}
    assert (out / "results" / "episodes.parquet").is_file()
    assert (out / "figures" / "final_by_train.actor_lr.png").is_file()
    for trial in trials_of(tmp_path / "params.yaml"):
        meta = json.loads((out / "trials" / trial.trial_id / "trial.json").read_text())
        assert meta["status"] == "finished" and meta["attempts"][-1]["node"]["ip"] == "127.0.0.1"
    # a trial run by Ray is the same run as one trained directly
    assert assert_trials_match_single_runs(tmp_path / "params.yaml", out / "trials",
                                           tmp_path / "ref") == 4

    before = (out / "trials").stat().st_mtime_ns, (out / "metrics.json").read_bytes()
    again = run_sweep(tmp_path)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "4 finished already, 0 to run" in again.stdout
    assert "Ray" not in again.stdout  # nothing to run: Ray is not even started
    assert (out / "metrics.json").read_bytes() == before[1]


def test_failed_trial_is_retried_then_named_while_the_others_finish(tmp_path):
    """A trial whose folder holds another run's checkpoints (train.on_mismatch: error) fails on
    every attempt; the sweep retries it max_retries times, finishes the rest, exits 1."""
    from rlpipe.train.run import train

    write_sweep_params(tmp_path / "params.yaml", {"train": {"on_mismatch": "error"}})
    bad = trials_of(tmp_path / "params.yaml")[1]
    other = bad.params.__class__.from_dict({**bad.params.to_dict(), "train": {
        **bad.params.to_dict()["train"], "gamma": 0.9}})
    assert train(other, tmp_path / "sweeps" / "trials" / bad.trial_id, console=False) == 0

    proc = run_sweep(tmp_path)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert f"trial {bad.trial_id}: attempt 1 failed" in proc.stdout
    errors = [ln for ln in lines(proc.stderr) if "error:" in ln]
    assert len(errors) == 2, proc.stderr
    assert errors[0].startswith(f"sweep: error: trial {bad.trial_id} ({BASE_SETTING}, seed 1) "
                                "failed after 2 attempts: CheckpointError: ")
    assert "made with other params" in errors[0]
    assert errors[1] == f"sweep: error: 1 of 2 trials failed: {bad.trial_id}; rerun to retry them"
    meta = json.loads((tmp_path / "sweeps" / "trials" / bad.trial_id / "trial.json").read_text())
    assert [a["outcome"] for a in meta["attempts"]] == ["failed", "failed"]
    assert meta["status"] == "failed"
    metrics = json.loads((tmp_path / "sweeps" / "metrics.json").read_text())
    assert metrics["trials"] == {"total": 2, "finished": 1}  # results cover the finished trial


@pytest.mark.parametrize("grid, key", [
    ({"train.actor_lrr": [0.1]}, "train.actor_lrr: unknown key"),
    ({"train.actor_lr": [0.001, 7]}, "train.actor_lr: must be between"),
    ({"env.id": ["CartPole-v1", "NoSuchEnv-v0"]}, "env.id: cannot make environment 'NoSuchEnv-v0'"),
])
def test_bad_grid_fails_before_any_trial_naming_the_key(tmp_path, grid, key):
    write_sweep_params(tmp_path / "params.yaml", {"sweep": {"grid": grid}})
    proc = run_sweep(tmp_path)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert lines(proc.stderr) == [next(ln for ln in lines(proc.stderr))], proc.stderr
    assert proc.stderr.startswith("sweep: error in params: ") and key in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "sweeps").exists()


def test_empty_grid_one_seed_is_a_one_trial_sweep(tmp_path):
    write_sweep_params(tmp_path / "params.yaml", {"sweep": {"seeds": [5]}})
    proc = run_sweep(tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "1 trial = 1 setting x 1 seed" in proc.stdout
    metrics = json.loads((tmp_path / "sweeps" / "metrics.json").read_text())
    assert metrics["settings"]["base"]["seeds"] == 1
    assert [p.name for p in (tmp_path / "sweeps" / "trials").iterdir()] == ["base-seed5"]


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.2", 0))
        return s.getsockname()[1]


def test_unreachable_address_fails_with_one_line(tmp_path):
    address = f"127.0.0.2:{closed_port()}"
    write_sweep_params(tmp_path / "params.yaml", {"sweep": {"address": address}})
    proc = run_sweep(tmp_path, timeout=60)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert lines(proc.stderr) == [f"sweep: error: sweep.address: no Ray cluster reachable at "
                                  f"{address} (connection refused)"]
    assert not (tmp_path / "sweeps").exists()


def test_a_port_that_never_answers_fails_with_one_line(tmp_path):
    """Something listens but is no Ray head: ray.init would wait for minutes; the stage gives up
    within 30 s (the subprocess timeout is a bound, not a measurement)."""
    with socket.socket() as silent:
        silent.bind(("127.0.0.2", 0))
        silent.listen()
        address = f"127.0.0.2:{silent.getsockname()[1]}"
        write_sweep_params(tmp_path / "params.yaml", {"sweep": {"address": address}})
        proc = run_sweep(tmp_path, timeout=90)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert len(lines(proc.stderr)) == 1, proc.stderr
    assert proc.stderr.startswith(f"sweep: error: sweep.address: no Ray cluster answered at "
                                  f"{address} within 20 s"), proc.stderr
    assert not (tmp_path / "sweeps" / "results").exists()
