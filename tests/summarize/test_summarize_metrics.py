"""summarize: metrics.json values and plot series, recomputed here independently (plain Python)."""
from __future__ import annotations

import csv
import json
import math
import random
import statistics
from pathlib import Path

from rlpipe.summarize.series import downsample_indices
from rlpipe.summarize.stage import summarize
from tests.helpers import EPISODES, STEPS, UPDATES, write_csv

PERF = ["Acceptance Rate", "Mean Latency (ms)"]


def make_run(folder: Path, episodes: int = 230, updates: int = 60, oracle: bool = True,
             perf: bool = True, run_json: bool = True, seed: int = 1) -> dict:
    """Synthetic training_output/ per docs/FILES.md; returns the raw values written."""
    rnd = random.Random(seed)
    folder.mkdir(parents=True, exist_ok=True)
    ep_rows, rewards = [], []
    for e in range(1, episodes + 1):
        r = rnd.gauss(math.sin(e / 40) * 10, 2)
        if e in (7, 100):
            r = float("nan")                          # a NaN return: left out of every mean
        rewards.append(r)
        acc = rnd.random() if oracle and e % 9 else None
        row = [e, r / 40, r, None if e <= 4 else rnd.gauss(0, 1), None if e <= 4 else rnd.random(),
               rnd.random(), 40, r, acc]
        if perf:
            row += [rnd.random(), None if e % 13 == 0 else 20 + rnd.random()]
        ep_rows.append(row)
    write_csv(folder / "episodes.csv", EPISODES + (PERF if perf else []), ep_rows)
    up_rows = []
    for u in range(1, updates + 1):
        actor = float("nan") if u == updates else rnd.gauss(0, 1)   # last update skipped
        up_rows.append([u, 160 * u, 4 * u, actor, rnd.random(), rnd.random(), 0.01, 0.1, 0.5,
                        1e-3, 1.0, 2.0, int(u == updates)])
    write_csv(folder / "updates.csv", UPDATES, up_rows)
    write_csv(folder / "steps.csv", STEPS,
              [[1 + i // 40, 1 + i % 40, i + 1, i % 5, 0.5, 0.1, -1.0, 0.9, None, None]
               for i in range(200)])
    if run_json:
        (folder / "run.json").write_text(json.dumps(
            {"wall_seconds": 321.5, "resumed_count": 2, "params_digest": "p1", "status": "ok"}))
    return {"episodes": ep_rows, "updates": up_rows}


def run(tmp_path: Path, window: int, max_points: int = 500):
    out = tmp_path / "out"
    warnings: list[str] = []
    result = summarize(tmp_path / "training_output", window, max_points,
                       summary_dir=out / "data/summary", plots_dir=out / "data/plots",
                       metrics_path=out / "metrics.json", warn=warnings.append,
                       note=lambda m: None)
    metrics = json.loads((out / "metrics.json").read_text())
    return result, metrics, warnings, out


# --------------------------------------------------------------------------- plain-Python oracle
def fin(xs):
    return [x for x in xs if x is not None and math.isfinite(x)]


def window_mean(xs):
    v = fin(xs)
    return sum(v) / len(v) if v else None


def best(xs, w):
    if len(xs) <= w:
        return window_mean(xs)
    means = [window_mean(xs[i - w + 1: i + 1]) for i in range(w - 1, len(xs))]
    means = [m for m in means if m is not None]
    return max(means) if means else None


def centred(xs, w):
    """The plot series' moving average: centred, over w rows but at most a tenth of the series
    (odd; 1 below 30 rows), cut short at both ends."""
    w = min(w, len(xs) // 10)
    w = 1 if w < 3 else w - (1 - w % 2)
    h = (w - 1) // 2
    return [window_mean(xs[max(0, i - h): i + h + 1]) for i in range(len(xs))]


def close(a, b):
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)


def test_metrics_values(tmp_path):
    raw = make_run(tmp_path / "training_output")
    w = 25
    _, m, warnings, _ = run(tmp_path, w)
    eps, ups = raw["episodes"], raw["updates"]
    rewards = [r[2] for r in eps]
    acc = [r[8] for r in eps]
    assert close(m["reward"]["final_mean"], window_mean(rewards[-w:]))
    assert close(m["reward"]["best_mean"], best(rewards, w))
    assert m["reward"]["best_mean"] > m["reward"]["final_mean"]  # the sine peaks mid-run
    assert m["reward"]["last"] == rewards[-1]
    assert close(m["reward"]["std_last_window"], statistics.pstdev(fin(rewards[-w:])))
    assert close(m["deployment"]["accuracy_final"], window_mean(acc[-w:]))
    assert close(m["deployment"]["accuracy_best"], best(acc, w))
    assert m["loss"]["actor_final"] == ups[-2][3]       # the last update's loss is NaN
    assert m["loss"]["critic_final"] == ups[-1][4]
    assert m["policy"]["entropy_final"] == ups[-1][5]
    assert set(m["performance"]) == {"acceptance_rate", "mean_latency_ms"}
    assert close(m["performance"]["acceptance_rate"], window_mean([r[9] for r in eps][-w:]))
    assert close(m["performance"]["mean_latency_ms"], window_mean([r[10] for r in eps][-w:]))
    assert m["run"] == {"episodes": 230, "steps": 160 * 60, "updates": 60,
                        "wall_seconds": 321.5, "resumed_count": 2}
    assert any("'Cumulative Reward' has 2 NaN/inf values" in x for x in warnings)
    assert any("'Actor Loss' has 1 NaN/inf value" in x for x in warnings)


def test_short_run_and_missing_values_are_left_out(tmp_path):
    make_run(tmp_path / "training_output", episodes=12, updates=0, oracle=False, perf=False,
             run_json=False)
    _, m, _, out = run(tmp_path, 50)
    rewards = [r for r in fin([float(x) for x in [row.split(",")[2] for row in
               (tmp_path / "training_output/episodes.csv").read_text().splitlines()[1:]]])]
    assert close(m["reward"]["best_mean"], sum(rewards) / len(rewards))   # one window: all
    assert m["reward"]["best_mean"] == m["reward"]["final_mean"]
    assert "deployment" not in m and "loss" not in m and "policy" not in m
    assert "performance" not in m
    assert m["run"] == {"episodes": 12, "steps": 0, "updates": 0}
    text = (out / "metrics.json").read_text()
    assert "null" not in text and "NaN" not in text
    assert text == json.dumps(m, indent=2, sort_keys=True) + "\n"
    # oracle-less environment: accuracy.csv exists with its header and no rows
    assert (out / "data/plots/accuracy.csv").read_text() == \
        "Episode,Deployment Accuracy,Moving Average\n"
    assert (out / "data/plots/performance.csv").read_text() == "Episode\n"


def read_series(path: Path):
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    return rows[0], rows[1:]


def num(s):
    return float(s) if s != "" else None


def test_series_downsampled_smoothed_on_the_full_series(tmp_path):
    raw = make_run(tmp_path / "training_output", episodes=230, updates=60)
    w, max_points = 20, 37
    _, _, _, out = run(tmp_path, w, max_points)
    eps, ups = raw["episodes"], raw["updates"]
    rewards = [r[2] for r in eps]
    ma = centred(rewards, w)              # 230 episodes: a 19-row window

    header, rows = read_series(out / "data/plots/reward.csv")
    assert header == ["Episode", "Cumulative Reward", "Moving Average", "Mean Episode Reward"]
    assert len(rows) == max_points
    assert rows[0][0] == "1" and rows[-1][0] == "230"
    xs = [int(r[0]) for r in rows]
    assert xs == sorted(set(xs))
    gaps = [b - a for a, b in zip(xs, xs[1:])]
    assert max(gaps) - min(gaps) <= 1                       # evenly strided
    for r in rows:
        i = int(r[0]) - 1
        raw_r = num(r[1])
        assert (raw_r is None and math.isnan(rewards[i])) or raw_r == rewards[i]
        assert close(num(r[2]), ma[i])
        assert num(r[3]) == eps[i][7] or (num(r[3]) is None and math.isnan(eps[i][7]))

    header, rows = read_series(out / "data/plots/accuracy.csv")
    assert header == ["Episode", "Deployment Accuracy", "Moving Average"]
    acc_ma = centred([r[8] for r in eps], w)
    assert len(rows) == max_points and rows[-1][0] == "230"
    for r in rows:
        assert close(num(r[2]), acc_ma[int(r[0]) - 1])

    header, rows = read_series(out / "data/plots/losses.csv")
    assert header == ["Update", "Actor Loss", "Critic Loss", "Actor Loss Moving Average",
                      "Critic Loss Moving Average"]
    assert len(rows) == max_points and rows[0][0] == "1" and rows[-1][0] == "60"
    assert rows[-1][1] == ""                                 # NaN written as an empty cell
    actor_ma = centred([u[3] for u in ups], w)   # 60 updates: a 5-row window
    for r in rows:
        assert close(num(r[3]), actor_ma[int(r[0]) - 1])

    header, rows = read_series(out / "data/plots/entropy.csv")
    assert header == ["Update", "Policy Entropy", "Moving Average"]

    header, rows = read_series(out / "data/plots/performance.csv")
    assert header == ["Episode", "Acceptance Rate", "Acceptance Rate Moving Average",
                      "Mean Latency (ms)", "Mean Latency (ms) Moving Average"]
    assert len(rows) == max_points


def test_downsample_indices():
    for n, k in [(0, 10), (5, 10), (10, 10), (11, 10), (1000, 10), (1001, 500), (10**6, 500)]:
        idx = downsample_indices(n, k).tolist()
        assert len(idx) == min(n, k)
        if n:
            assert idx[0] == 0 and idx[-1] == n - 1
        assert idx == sorted(set(idx))


def test_repeated_episode_numbers_warn(tmp_path):
    folder = tmp_path / "training_output"
    make_run(folder, episodes=30, updates=5)
    lines = (folder / "episodes.csv").read_text().splitlines()
    lines.insert(21, lines[20])                       # episode 20 twice (a bad resume)
    (folder / "episodes.csv").write_text("\n".join(lines) + "\n")
    _, m, warnings, _ = run(tmp_path, 5)
    assert any("Episode numbers are not strictly increasing" in w for w in warnings)
    assert m["run"]["episodes"] == 31
