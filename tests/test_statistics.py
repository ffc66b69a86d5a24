"""The table of run statistics (rlpipe.statistics) is the one place of each statistic's column,
tag, type and meaning: every consumer derives from it, and a row added to it (plus the line that
computes the value) reaches every file."""
from __future__ import annotations

import ast
import csv
import json
import os
import subprocess
import textwrap

import pytest

from rlpipe.hooks import live, metrics
from rlpipe.statistics import (
    ALGORITHM_KEYS, BY_KEY, EPISODE_COLUMNS, EPISODE_KEYS, STATISTICS, SUMMARY_KEYS, UPDATE_KEYS,
    docs_table,
)
from rlpipe.summarize import tables
from tests.helpers import EPISODES, PYTHON, REPO, UPDATES

SRC = REPO / "src" / "rlpipe"


def test_the_csv_headers_stay_the_contract():
    assert list(EPISODE_COLUMNS) == EPISODES[:9]   # the seed's nine episode headers, as they are
    assert [BY_KEY[k].column for k in UPDATE_KEYS] == UPDATES
    assert len({s.key for s in STATISTICS}) == len(STATISTICS)
    assert all(BY_KEY[k].algorithm for k in SUMMARY_KEYS)  # live files read them from the update


def test_consumers_derive_from_the_table():
    tags = {s.column: s.tag for s in STATISTICS if s.tag}
    assert metrics.UPDATE_TAGS == {BY_KEY[k].column: tags[BY_KEY[k].column]
                                   for k in UPDATE_KEYS if BY_KEY[k].tag}
    assert set(metrics.EPISODE_TAGS) == {BY_KEY[k].column for k in EPISODE_KEYS
                                         if BY_KEY[k].tag and not BY_KEY[k].algorithm}
    assert live.LOSS_COLUMNS[2:] == tuple(BY_KEY[k].column for k in SUMMARY_KEYS)
    for s in STATISTICS:
        assert tables.arrow_type(s.column) == ("int64" if s.dtype is int else "double"), s.column


def test_no_module_spells_a_statistic_s_column_but_the_table():
    """``Episode`` (the key column of every file, steps.csv and actions.csv included) aside."""
    columns = {s.column for s in STATISTICS} - {"Episode"}
    for path in sorted(SRC.rglob("*.py")):
        if path.name == "statistics.py":
            continue
        tree = ast.parse(path.read_text())
        docstrings = {id(node.body[0].value) for node in ast.walk(tree)
                      if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef))
                      and node.body and isinstance(node.body[0], ast.Expr)}
        spelled = sorted({node.value for node in ast.walk(tree)
                          if isinstance(node, ast.Constant) and node.value in columns
                          and id(node) not in docstrings})
        assert not spelled, f"{path.relative_to(REPO)} spells {spelled}: use rlpipe.statistics"


def test_docs_files_holds_the_generated_tables():
    text = (REPO / "docs" / "FILES.md").read_text()
    assert docs_table(EPISODE_KEYS, of_latest_update=True) in text
    assert docs_table(UPDATE_KEYS) in text


# One row more in the table, and the line of the algorithm that computes it, in a fresh process.
NEW_ROW = ('    Statistic("value_mean", "Value Mean", "Value / Mean", float, "mean critic value of '
           'the minibatch", algorithm=True, summary="value.mean"),\n')
SCRIPT = textwrap.dedent("""
    import sys, types
    from pathlib import Path
    import rlpipe
    source = Path(rlpipe.__file__).with_name("statistics.py").read_text()
    marker = "\\n)\\n\\n#: key -> :class:`Statistic`"
    assert marker in source
    module = types.ModuleType("rlpipe.statistics")
    sys.modules["rlpipe.statistics"] = rlpipe.statistics = module
    exec(compile(source.replace(marker, "\\n" + NEW_ROW + ")\\n\\n#: key", 1), "statistics.py",
                 "exec"), module.__dict__)

    from rlpipe.agents import algorithms

    class PPO(algorithms.PPO):
        def losses(self, rollout, idx):
            pg, value_loss, entropy, extra = super().losses(rollout, idx)
            extra["value_mean"] = float(rollout.values[idx].mean())   # the line that computes it
            return pg, value_loss, entropy, extra

    algorithms.ALGORITHMS["ppo"] = PPO
    import json
    import pyarrow.csv as pacsv
    from rlpipe.hooks.metrics import UPDATE_TAGS
    from rlpipe.summarize.metrics import compute_metrics
    from rlpipe.summarize.tables import arrow_type
    from rlpipe.train.run import train
    from tests.helpers import tiny
    root = Path(sys.argv[1])
    assert train(tiny(train={"episodes": 4}, capture={"every": 0}), root, console=False) == 0
    out = root / "training_output"
    found = compute_metrics(pacsv.read_csv(out / "episodes.csv"), pacsv.read_csv(out / "updates.csv"), 4)
    print(json.dumps({"tag": UPDATE_TAGS.get("Value Mean"), "parquet": str(arrow_type("Value Mean")),
                      "metrics_json": found.get("value")}))
""")


@pytest.mark.slow
def test_a_new_row_reaches_updates_csv_the_live_files_and_metrics_json(tmp_path):
    proc = subprocess.run([PYTHON, "-c", f"NEW_ROW = {NEW_ROW!r}\n" + SCRIPT, str(tmp_path)],
                          cwd=REPO, capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": f"{REPO / 'src'}{os.pathsep}{REPO}"})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    with open(tmp_path / "training_output" / "updates.csv", newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0] == [*UPDATES, "Value Mean"]            # after the update's own statistics
    assert len(rows) == 2 and float(rows[1][-1]) == float(rows[1][-1])  # one update, a number
    value = float(rows[1][-1])
    with open(tmp_path / "live" / "losses.csv", newline="") as f:
        assert next(csv.reader(f))[-1] == "Value Mean"
    assert json.loads((tmp_path / "live" / "metrics.json").read_text())["value"] == {"mean": value}
    seen = json.loads(proc.stdout.strip().splitlines()[-1])
    assert seen == {"tag": "Value / Mean", "parquet": "double", "metrics_json": {"mean_final": value}}
    assert "value_mean" not in BY_KEY and ALGORITHM_KEYS[-1] == "skipped"  # this process: untouched
