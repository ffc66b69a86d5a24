"""Fault suite, summarize and visualize on damaged outputs of a *real* tiny training run.

tests/summarize and tests/visualize check each rule on synthetic files (a truncated last line,
NaN values, missing inputs, garbage cells, mismatched capture shapes); this file runs the two
stages end to end on what the train stage really leaves behind after a crash, a NaN loss or a
damaged capture: a clear warning or a placeholder figure with a note, never a traceback, never a
NaN or a wrong count in metrics.json.
"""
from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import pytest

from rlpipe.agents.algorithms import PPO
from rlpipe.config import Params
from rlpipe.hooks import Hook
from rlpipe.plots import FIGURE_OUTPUTS
from rlpipe.train.run import train
from tests.helpers import TINY_PARAMS, deep_update, run_stage, write_params

ALL_PLOTS = sorted(name for names in FIGURE_OUTPUTS.values() for name in names)


def stage(name: str, root: Path, code: int = 0):
    proc = run_stage(name, root, timeout=180)
    assert proc.returncode == code, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc


def csv_rows(path: Path) -> list[list[str]]:
    return [line.split(",") for line in path.read_text().splitlines()]


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("finished")
    write_params(root / "params.yaml")
    assert train(Params.from_dict(TINY_PARAMS), root, console=False) == 0
    return root


@pytest.fixture
def run(finished_run, tmp_path) -> Path:
    root = tmp_path / "run"
    shutil.copytree(finished_run, root)
    return root


def test_torn_last_lines_after_a_crash(run):
    """A kill while the logs were being appended: each CSV ends in half a line."""
    out = run / "training_output"
    write_params(run / "params.yaml", {"visualize": {"figures": ["reward", "loss", "actions",
                                                                 "entropy", "value", "performance"]}})
    for name in ("episodes.csv", "updates.csv", "steps.csv"):
        text = (out / name).read_text()
        last = text.rstrip("\n").rfind("\n") + 1
        (out / name).write_text(text[: last + (len(text) - last) // 2])
    p = stage("summarize", run)
    for name, line in (("episodes.csv", 17), ("updates.csv", 5)):
        assert f"training_output/{name} line {line}: incomplete last line dropped" in p.stderr, p.stderr
    m = json.loads((run / "metrics.json").read_text())
    assert m["run"]["episodes"] == 15 and m["run"]["updates"] == 3
    rewards = [float(r[2]) for r in csv_rows(out / "episodes.csv")[1:16]]
    assert math.isclose(m["reward"]["final_mean"], sum(rewards[-4:]) / 4)
    stage("visualize", run)
    assert sorted(p.name for p in (run / "plots").iterdir()) == ALL_PLOTS


class LastEpisode(Hook):
    def __init__(self):
        self.last = 0

    def on_episode_end(self, ep):
        self.last = ep.episode


def test_nan_losses_of_a_skip_run_never_reach_metrics(tmp_path, monkeypatch):
    """on_nan: skip with the *last* update poisoned: updates.csv ends in a row of 'nan' losses;
    metrics.json reports the last finite losses (valid JSON, no NaN) and the figures are drawn."""
    hook = LastEpisode()
    real = PPO.policy_loss

    def policy_loss(self, *args):
        loss, extra = real(self, *args)
        return (loss * float("nan") if hook.last == 16 else loss), extra

    monkeypatch.setattr(PPO, "policy_loss", policy_loss)
    write_params(tmp_path / "params.yaml", {"train": {"on_nan": "skip"},
                                            "visualize": {"figures": ["reward", "loss", "entropy"]}})
    p = deep_update(TINY_PARAMS, {"train": {"on_nan": "skip"}})
    assert train(Params.from_dict(p), tmp_path, [hook], console=False) == 0
    rows = csv_rows(tmp_path / "training_output" / "updates.csv")
    header, last, good = rows[0], rows[-1], rows[-2]
    assert last[header.index("Skipped")] == "1" and last[header.index("Actor Loss")] == "nan"
    proc = stage("summarize", tmp_path)
    assert "updates.csv: column 'Actor Loss' has 1 NaN/inf value" in proc.stderr
    text = (tmp_path / "metrics.json").read_text()
    assert "NaN" not in text and "Infinity" not in text
    m = json.loads(text)
    assert m["loss"]["actor_final"] == float(good[header.index("Actor Loss")])
    assert m["loss"]["critic_final"] == float(good[header.index("Critic Loss")])
    assert m["policy"]["entropy_final"] == float(good[header.index("Policy Entropy")])
    assert m["run"]["updates"] == 4
    proc = stage("visualize", tmp_path)
    assert "wrote plots/loss.png" in proc.stdout and "wrote plots/entropy.png" in proc.stdout


class Boom(Exception):
    pass


class CrashAt(Hook):
    def on_episode_end(self, ep):
        if ep.episode == 3:
            raise Boom("injected crash")


def test_run_that_died_in_its_first_rollout(tmp_path):
    """Three episode rows (the crash came while the third was reported), no update yet:
    summarize and visualize still work, saying what is missing instead of inventing it."""
    write_params(tmp_path / "params.yaml")
    with pytest.raises(Boom):
        train(Params.from_dict(TINY_PARAMS), tmp_path, [CrashAt()], console=False)
    out = tmp_path / "training_output"
    assert len(csv_rows(out / "episodes.csv")) == 1 + 3 and len(csv_rows(out / "updates.csv")) == 1
    assert not (out / "run.json").exists()
    stage("summarize", tmp_path)
    m = json.loads((tmp_path / "metrics.json").read_text())
    assert m["run"]["episodes"] == 3 and m["run"]["updates"] == 0
    assert "loss" not in m and "policy" not in m             # nothing to report, nothing invented
    proc = stage("visualize", tmp_path)
    assert sorted(p.name for p in (tmp_path / "plots").iterdir()) == ALL_PLOTS
    assert "note: embeddings_pca.png: no embeddings capture" in proc.stdout


def test_damaged_captures_become_placeholders_with_notes(run):
    cap = run / "training_output" / "captures"
    (cap / "ep000016_embeddings.npz").write_bytes(bytes(range(256)) * 4)   # random bytes
    (cap / "ep000016_attention.npz").write_bytes(b"")                    # zero bytes
    trace = (cap / "ep000016_trace.json").read_text()
    (cap / "ep000016_trace.json").write_text(trace[: len(trace) // 2])   # truncated JSON
    write_params(run / "params.yaml", {"visualize": {"figures": ["reward", "embeddings", "attention",
                                                                 "animation"]}})
    stage("summarize", run)
    proc = stage("visualize", run)
    for name, why in (("embeddings_pca.png", "ep000016_embeddings.npz"),
                      ("embeddings_tsne.png", "ep000016_embeddings.npz"),
                      ("attention.png", "ep000016_attention.npz: not a readable .npz file"),
                      ("episode.gif", "ep000016_trace.json: not valid JSON")):
        assert any(line.startswith(f"visualize: note: {name}:") and why in line
                   for line in proc.stdout.splitlines()), (name, proc.stdout)
    assert "wrote plots/reward.png" in proc.stdout
    small = (run / "plots" / "attention.png").stat().st_size
    assert small < (run / "plots" / "reward.png").stat().st_size


def test_damaged_summary_fails_and_keeps_the_previous_plots(run):
    write_params(run / "params.yaml", {"visualize": {"figures": ["reward", "loss"]}})
    stage("summarize", run)
    stage("visualize", run)
    before = {p.name: p.read_bytes() for p in (run / "plots").iterdir()}
    parquet = run / "data" / "summary" / "updates.parquet"
    parquet.write_bytes(parquet.read_bytes()[:100])                        # cut short
    proc = stage("visualize", run, code=2)
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "updates.parquet" in lines[0] and "dvc repro summarize" in lines[0]
    assert {p.name: p.read_bytes() for p in (run / "plots").iterdir()} == before
