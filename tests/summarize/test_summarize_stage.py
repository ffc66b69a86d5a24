"""summarize: the `python stages/summarize.py` entry point, run as DVC runs it (subprocess, cwd=repo)."""
from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.helpers import EPISODES, REPO as ROOT, STEPS, UPDATES, write_csv

STAGE = ROOT / "stages" / "summarize.py"

PERF = ["Acceptance Rate", "Mean Latency", "Mean Utilization", "Load Imbalance"]
OUTPUTS = ["data/summary/episodes.parquet", "data/summary/updates.parquet",
           "data/summary/steps.parquet", "metrics.json", "data/plots/reward.csv",
           "data/plots/accuracy.csv", "data/plots/losses.csv", "data/plots/entropy.csv",
           "data/plots/performance.csv"]
PRODUCER = "produced by the train stage (run `dvc repro train`)"


def make_repo(tmp_path: Path, directory: str = "training_output", episodes: int = 60) -> Path:
    (tmp_path / "params.yaml").write_text(
        f"experiment:\n  directory: {directory}\nsummarize:\n  window: 10\n  max_points: 25\n"
        "train:\n  episodes: -5\n")              # invalid, but not this stage's section
    d = tmp_path / directory
    d.mkdir(parents=True)
    write_csv(d / "episodes.csv", EPISODES + PERF,
              [[e, 0.1, float(e % 17), 0.5, 0.25, 1.5, 20, float(e % 17), 0.5 + e / 1000,
                0.9, 30.0, 0.5, 0.1] for e in range(1, episodes + 1)])
    write_csv(d / "updates.csv", UPDATES,
              [[u, 80 * u, 4 * u, -0.5, 0.75, 1.25, 0.01, 0.1, 0.5, 1e-3, 1.0, 2.0, 0]
               for u in range(1, 16)])
    write_csv(d / "steps.csv", STEPS + ["Mean Utilization", "Max Utilization"],
              [[1 + i // 20, 1 + i % 20, i + 1, i % 3, 0.5, 0.1, -1.0, 0.9, 1, i % 2, 0.5, 0.75]
               for i in range(400)])
    return tmp_path


def stage(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(STAGE), *args], cwd=cwd, capture_output=True,
                          text=True, timeout=120)


def snapshot(repo: Path) -> dict[str, bytes]:
    return {p: (repo / p).read_bytes() for p in OUTPUTS}


def leftovers(repo: Path) -> list[Path]:
    return [p for p in repo.rglob("*.tmp")]


def test_success_writes_every_output_without_heavy_imports(tmp_path):
    repo = make_repo(tmp_path, directory="runs/exp1")   # experiment.directory is honoured
    code = (
        "import runpy, sys\n"
        "class NoPandas:  # summarize needs no pandas (pyarrow uses it when installed)\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] == 'pandas':\n"
        "            raise ImportError('pandas is blocked in this test')\n"
        "sys.meta_path.insert(0, NoPandas())\n"
        f"sys.argv = [{str(STAGE)!r}, '--params', 'params.yaml']\n"
        "try:\n"
        f"    runpy.run_path({str(STAGE)!r}, run_name='__main__')\n"
        "except SystemExit as e:\n"
        "    rc = e.code\n"
        "heavy = sorted(m for m in ('torch', 'torch_geometric', 'matplotlib')"
        " if m in sys.modules)\n"
        "print('RC', rc, 'HEAVY', heavy)\n"
    )
    p = subprocess.run([sys.executable, "-c", code], cwd=repo, capture_output=True, text=True,
                       timeout=120)
    assert "RC 0 HEAVY []" in p.stdout, p.stdout + p.stderr
    assert p.stderr == ""
    for name in OUTPUTS:
        assert (repo / name).is_file(), name
    assert not leftovers(repo)
    metrics = json.loads((repo / "metrics.json").read_text())
    assert metrics["run"] == {"episodes": 60, "steps": 1200, "updates": 15}
    assert metrics["performance"] == {"acceptance_rate": 0.9, "load_imbalance": 0.1,
                                      "mean_latency": 30.0, "mean_utilization": 0.5}
    rewards = [float(e % 17) for e in range(1, 61)]
    assert math.isclose(metrics["reward"]["final_mean"], sum(rewards[-10:]) / 10)
    assert metrics["loss"] == {"actor_final": -0.5, "critic_final": 0.75}
    table = pq.read_table(repo / "data/summary/steps.parquet")
    assert table.num_rows == 400 and table.schema.field("Feasible").type == pa.bool_()
    assert table.schema.metadata[b"rlpipe.params_digest"] == b"unknown"   # no run.json
    assert len((repo / "data/plots/reward.csv").read_text().splitlines()) == 1 + 25


def test_help():
    p = stage(ROOT, "--help")
    assert p.returncode == 0 and "--params" in p.stdout


def test_missing_steps_csv_writes_an_empty_steps_parquet(tmp_path):
    repo = make_repo(tmp_path)
    (repo / "training_output/steps.csv").unlink()
    p = stage(repo)
    assert p.returncode == 0, p.stderr
    assert "steps.csv not found" in p.stdout and "empty data/summary/steps.parquet" in p.stdout
    schema = pq.read_schema(repo / "data/summary/steps.parquet")
    assert schema.names == STEPS
    assert pq.read_metadata(repo / "data/summary/steps.parquet").num_rows == 0


def test_truncated_last_line_is_dropped_with_a_warning(tmp_path):
    repo = make_repo(tmp_path)
    with open(repo / "training_output/episodes.csv", "a") as f:
        f.write("61,0.1,3.")                           # crash mid-write
    p = stage(repo)
    assert p.returncode == 0, p.stderr
    assert "training_output/episodes.csv line 62: incomplete last line dropped" in p.stderr
    assert "Traceback" not in p.stderr
    assert json.loads((repo / "metrics.json").read_text())["run"]["episodes"] == 60


def test_nan_values_warn_and_stay_out_of_the_metrics(tmp_path):
    repo = make_repo(tmp_path)
    path = repo / "training_output/episodes.csv"
    lines = path.read_text().splitlines()
    for i in (57, 59):                                # episodes 57 and 59: NaN / inf reward
        cells = lines[i].split(",")
        cells[2] = "nan" if i == 57 else "inf"
        lines[i] = ",".join(cells)
    path.write_text("\n".join(lines) + "\n")
    p = stage(repo)
    assert p.returncode == 0, p.stderr
    assert "column 'Cumulative Reward' has 2 NaN/inf values" in p.stderr
    m = json.loads((repo / "metrics.json").read_text())
    kept = [float(e % 17) for e in range(51, 61) if e not in (57, 59)]
    assert math.isclose(m["reward"]["final_mean"], sum(kept) / len(kept))
    assert math.isfinite(m["reward"]["std_last_window"])
    # the Parquet copy keeps the values as they were
    col = pq.read_table(repo / "data/summary/episodes.parquet").column("Cumulative Reward")
    assert math.isnan(col[56].as_py()) and col[58].as_py() == math.inf


@pytest.mark.parametrize("case", ["empty", "header-only"])
def test_no_episode_yet(tmp_path, case):
    repo = make_repo(tmp_path)
    path = repo / "training_output/episodes.csv"
    path.write_text("" if case == "empty" else ",".join(EPISODES) + "\n")
    p = stage(repo)
    assert p.returncode == 2
    assert "training_output/episodes.csv" in p.stderr and "no episode finished yet" in p.stderr
    assert "Traceback" not in p.stderr
    assert not (repo / "metrics.json").exists()


@pytest.mark.parametrize("name", ["episodes.csv", "updates.csv"])
def test_missing_input(tmp_path, name):
    repo = make_repo(tmp_path)
    (repo / "training_output" / name).unlink()
    p = stage(repo)
    assert p.returncode == 2
    assert f"training_output/{name}: file not found" in p.stderr and PRODUCER in p.stderr
    assert "Traceback" not in p.stderr


@pytest.mark.parametrize("target", ["steps.csv", "episodes.csv"])
def test_garbage_fails_cleanly_and_keeps_previous_outputs(tmp_path, target):
    repo = make_repo(tmp_path)
    (repo / "training_output/run.json").write_text('{"wall_seconds": 5.0, "params_digest": "x"}')
    assert stage(repo).returncode == 0
    before = snapshot(repo)
    path = repo / "training_output" / target
    lines = path.read_text().splitlines()
    cells = lines[9].split(",")
    cells[4] = "garbage"                              # line 10, 5th column
    lines[9] = ",".join(cells)
    path.write_text("\n".join(lines) + "\n")
    p = stage(repo)
    assert p.returncode == 2
    column = (STEPS if target == "steps.csv" else EPISODES)[4]
    assert f"training_output/{target} line 10, column '{column}'" in p.stderr
    assert "'garbage' is not a number" in p.stderr and "Traceback" not in p.stderr
    assert snapshot(repo) == before                   # byte-identical
    assert not leftovers(repo)


def test_bad_params(tmp_path):
    repo = make_repo(tmp_path)
    (repo / "params.yaml").write_text("summarize:\n  window: 0\n")
    p = stage(repo)
    assert p.returncode == 2 and "summarize.window" in p.stderr
