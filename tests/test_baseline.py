"""The committed default-run baseline cannot go stale silently: baseline.json records the code
and params that made it (tools/baseline.py), and this test fails when either changed since."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import yaml

from tests.helpers import REPO
from tools.baseline import REGENERATE, RECORD, baseline_files, baseline_stages, differences, record


def test_committed_baseline_was_made_by_this_code_and_these_params():
    lines = differences(REPO)
    assert not lines, ("the committed default-run baseline is stale:\n  " + "\n  ".join(lines)
                       + f"\nregenerate it with: {REGENERATE}")


def test_baseline_record_names_the_machine_and_every_baseline_file():
    doc = json.loads((REPO / RECORD).read_text())
    assert doc["command"] == REGENERATE
    assert {"cpu", "torch", "torch_cpu_capability", "numpy"} <= set(doc["machine"])
    assert doc["outputs"] == baseline_files(REPO)
    assert {"metrics.json", "data/plots"} <= set(doc["outputs"])
    for path in doc["outputs"]:
        assert (REPO / path).exists(), f"{path}: a baseline file is not committed"


def _scratch(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    root.mkdir()
    for name in ("dvc.yaml", "params.yaml"):
        shutil.copy(REPO / name, root / name)
    for folder in ("src", "stages"):
        shutil.copytree(REPO / folder, root / folder, ignore=shutil.ignore_patterns("__pycache__"))
    return root


def test_a_change_of_code_or_params_is_named(tmp_path: Path):
    root = _scratch(tmp_path)
    record(root)
    assert differences(root) == []
    assert {"train", "summarize"} <= set(baseline_stages(root))

    # a figure is not part of the baseline: editing it changes nothing
    with open(root / "src/rlpipe/plots/registry.py", "a") as f:
        f.write("\n# a figure edit\n")
    assert differences(root) == []

    with open(root / "src/rlpipe/checkpoints.py", "a") as f:
        f.write("\n# an edit\n")
    params = yaml.safe_load((root / "params.yaml").read_text())
    params["train"]["gamma"] = 0.3
    (root / "params.yaml").write_text(yaml.safe_dump(params))
    lines = differences(root)
    assert "stage train: code changed: src/rlpipe/checkpoints.py" in lines, lines
    assert "stage train: its params in params.yaml changed" in lines, lines
    assert not any("summarize: its params" in line for line in lines), lines

    (root / RECORD).unlink()
    assert differences(root) == [f"{RECORD} is missing"]
