"""Live progress files (live/metrics.json, live/reward.csv, live/losses.csv): rewritten after every
rollout with what the logs hold, numbers only, bounded, trimmed on resume."""
from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from rlpipe import checkpoints as ckpt
from rlpipe.hooks import PERSIST, Hook
from rlpipe.hooks.live import LOSS_COLUMNS, REWARD_COLUMNS, LiveSeries, stride_for
from rlpipe.train.run import train
from tests.helpers import LIVE, assert_same_run, tiny


def read_csv(path: Path) -> list[list[str]]:
    with open(path, newline="") as f:
        return list(csv.reader(f))


class ReadLive(Hook):
    """Reads the live files after every hook that records has run (start and each rollout end)."""

    order = PERSIST

    def __init__(self, root: Path):
        self.root = root
        self.seen: list[tuple[int, int, dict, list, list]] = []

    def _read(self, episode: int, update: int) -> None:
        self.seen.append((episode, update, json.loads((self.root / LIVE[0]).read_text()),
                          read_csv(self.root / LIVE[1]), read_csv(self.root / LIVE[2])))

    def on_train_start(self, run):
        self._read(run.start_episode, 0)

    def on_rollout_end(self, rollout):
        self._read(rollout.episode, rollout.update)


def numbers_only(doc) -> bool:
    if isinstance(doc, dict):
        return all(isinstance(k, str) and numbers_only(v) for k, v in doc.items())
    return isinstance(doc, (int, float)) and not isinstance(doc, bool)


def test_live_files_follow_every_rollout(tmp_path):
    reader = ReadLive(tmp_path)
    assert train(tiny(), tmp_path, extra_hooks=[reader], console=False) == 0
    start, *rollouts = reader.seen
    assert start[2] == {"episode": 0, "target_episodes": 16, "progress": 0.0}
    assert start[3] == [list(REWARD_COLUMNS)] and start[4] == [list(LOSS_COLUMNS)]
    assert [r[:2] for r in rollouts] == [(4, 1), (8, 2), (12, 3), (16, 4)]
    episodes = read_csv(tmp_path / "training_output" / "episodes.csv")
    updates = read_csv(tmp_path / "training_output" / "updates.csv")
    eh, uh = episodes[0], updates[0]
    for episode, update, metrics, reward, losses in rollouts:
        assert numbers_only(metrics), metrics
        assert metrics["episode"] == episode and metrics["update"] == update
        assert metrics["progress"] == episode / 16
        # the series hold exactly the logs' rows so far (no thinning at this size)
        assert reward[1:] == [[r[eh.index(c)] for c in REWARD_COLUMNS] for r in episodes[1:episode + 1]]
        assert losses[1:] == [[r[uh.index(c)] for c in LOSS_COLUMNS] for r in updates[1:update + 1]]
        last = updates[update]
        assert metrics["global_step"] == int(last[uh.index("Global Step")])
        assert metrics["loss"]["critic"] == float(last[uh.index("Critic Loss")])
        rows = episodes[episode - 3:episode + 1]  # this rollout's 4 episodes
        assert metrics["reward"]["last"] == pytest.approx(
            sum(float(r[eh.index("Cumulative Reward")]) for r in rows) / 4)
        assert metrics["reward"]["mean"] == float(rows[-1][eh.index("Mean Episode Reward")])
        assert metrics["accuracy"] == pytest.approx(
            sum(float(r[eh.index("Deployment Accuracy")]) for r in rows) / 4)
        assert set(metrics["performance"]) == {"acceptance_rate", "mean_latency",
                                               "mean_utilization", "load_imbalance"}
    # the files on disk are the last rollout's
    assert json.loads((tmp_path / LIVE[0]).read_text()) == rollouts[-1][2]


def test_live_series_is_bounded_and_a_function_of_its_rows(tmp_path):
    path = tmp_path / "s.csv"
    series = LiveSeries(path, ("Episode", "Value"), "Episode", max_points=10)
    for n in range(1, 301):
        series.add((n, float(n)))
        stride = stride_for(n, 10)
        expected = [k for k in range(stride, n + 1, stride)]
        expected += [] if n % stride == 0 else [n]
        assert [r[0] for r in series.rows] == expected, n
        assert len(series.rows) <= 10
        if n in (37, 160):  # a resume from this point continues exactly
            path.write_text(series.text())
            resumed = LiveSeries(path, ("Episode", "Value"), "Episode", max_points=10)
            resumed.load(n)
            assert resumed.stride == series.stride and resumed.text() == series.text()
    resumed = LiveSeries(path, ("Episode", "Value"), "Episode", max_points=10)
    resumed.load(100)  # a file written at 160 (a kill after the checkpoint at 100)
    assert [r[0] for r in resumed.rows] == [16, 32, 48, 64, 80, 96]  # rows <= 100 on its grid


def test_resume_trims_live_files_to_the_checkpoint(reference, tmp_path):
    """A run that got to episode 12, then lost its newest checkpoint: the resume from episode 8
    drops the live rows of episodes 9-12 and ends with the files of an uninterrupted run."""
    assert train(tiny(train={"episodes": 12}), tmp_path, console=False) == 0
    ckpt.list_checkpoints(tmp_path / "checkpoints")[0][1].unlink()  # ckpt_ep000012.pt
    reader = ReadLive(tmp_path)
    assert train(tiny(), tmp_path, extra_hooks=[reader], console=False) == 0
    start = reader.seen[0]
    assert start[2] == {"episode": 8, "target_episodes": 16, "progress": 0.5}
    assert [int(r[0]) for r in start[3][1:]] == list(range(1, 9))
    assert [int(r[0]) for r in start[4][1:]] == [1, 2]
    assert_same_run(reference, tmp_path)  # includes the live files, byte for byte
