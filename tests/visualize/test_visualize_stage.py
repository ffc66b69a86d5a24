"""End-to-end tests of the visualize stage: ``python stages/visualize.py`` in a temporary folder
holding synthetic summary Parquet files and captures (docs/FILES.md layouts)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

from rlpipe.plots import FIGURE_OUTPUTS
from rlpipe.plots.registry import FIGURE_NAMES
from devkit import synthetic

REPO = Path(__file__).resolve().parents[2]
STAGE = REPO / "stages" / "visualize.py"
ALL_OUTPUTS = [name for names in FIGURE_OUTPUTS.values() for name in names]
PLACEHOLDER_MAX_HEIGHT = 250  # placeholders are 6.4 x 1.8 in; real figures are far taller


def run_stage(cwd: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(STAGE), "--params", "params.yaml"], cwd=cwd,
                          capture_output=True, text=True, timeout=120,
                          env={**os.environ, **(env or {})})


def image_stats(path: Path) -> tuple[str, tuple[int, int], float, int]:
    """(format, size, pixel std of the first frame in grey, frames) after Pillow verified it."""
    with Image.open(path) as im:
        im.verify()
    with Image.open(path) as im:
        frames = getattr(im, "n_frames", 1)
        std = float(np.asarray(im.convert("L")).std())
        return im.format, im.size, std, frames


def assert_real_figure(path: Path, fmt: str = "PNG") -> None:
    assert path.is_file(), f"{path} missing"
    assert path.stat().st_size > 10_000, f"{path} is suspiciously small"
    f, (w, h), std, _ = image_stats(path)
    assert f == fmt
    assert w >= 500 and h > PLACEHOLDER_MAX_HEIGHT, f"{path}: {w}x{h} looks like a placeholder"
    assert std > 15, f"{path} looks blank (pixel std {std:.1f})"


def assert_placeholder(path: Path, fmt: str = "PNG") -> None:
    assert path.is_file(), f"{path} missing (a placeholder must keep the DVC output)"
    f, (w, h), std, frames = image_stats(path)
    assert f == fmt and frames == 1
    assert h <= PLACEHOLDER_MAX_HEIGHT, f"{path}: {w}x{h} is not a placeholder"
    assert std > 3, "a placeholder still carries its message"


def write_params(root: Path, visualize: dict | None = None, experiment: dict | None = None,
                 extra: dict | None = None) -> None:
    doc = {"visualize": visualize or {}, "experiment": experiment or {}, **(extra or {})}
    (root / "params.yaml").write_text(yaml.safe_dump(doc))


TORCH_BLOCKER = textwrap.dedent('''
    import sys, os
    class _Block:
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in ("torch", "torch_geometric"):
                with open(os.environ["RLPIPE_TORCH_MARKER"], "a") as f:
                    f.write(name + "\\n")
                raise ImportError(f"{name} must not be imported by the visualize stage")
            return None
    sys.meta_path.insert(0, _Block())
''')


def test_all_figures_from_graph_run(tmp_path: Path) -> None:
    """Graph agent, oracle env, two captures in a custom experiment.directory: every output is a
    real figure; no torch import anywhere (the t-SNE worker included); params of other sections
    are not read."""
    synthetic.write_summary(tmp_path, episodes=120, steps_per_episode=8)
    synthetic.write_eval_episodes(tmp_path)
    synthetic.write_captures(tmp_path, kind="graph", episodes=(60, 120), probe_graphs=2,
                             num_nodes=6, heads=(4, 1), trace_steps=12, directory="runs/out")
    # An invalid train section: the visualize stage must not validate it.
    write_params(tmp_path, {"animation_max_frames": 8, "smoothing": 5},
                 {"directory": "runs/out"}, {"train": {"no_such_key": 1}})
    blocker = tmp_path / "blocker"
    blocker.mkdir()
    (blocker / "sitecustomize.py").write_text(TORCH_BLOCKER)
    marker = tmp_path / "torch_imports.txt"
    pythonpath = os.pathsep.join(filter(None, [str(blocker), os.environ.get("PYTHONPATH")]))
    p = run_stage(tmp_path, {"PYTHONPATH": pythonpath, "RLPIPE_TORCH_MARKER": str(marker)})
    assert p.returncode == 0, p.stderr
    assert not marker.exists(), f"torch imported: {marker.read_text()}"
    assert "note" not in p.stdout, p.stdout
    assert "Traceback" not in p.stderr
    plots = tmp_path / "plots"
    # no temp files left; one GIF (+ metadata) per captured episode in episodes/
    assert sorted(x.name for x in plots.iterdir()) == sorted(ALL_OUTPUTS + ["episodes"])
    assert len(list((plots / "episodes").glob("ep000060_reward*.gif"))) == 1
    assert len(list((plots / "episodes").glob("ep000120_reward*.gif"))) == 1
    for name in ALL_OUTPUTS:
        assert_real_figure(plots / name, "GIF" if name.endswith(".gif") else "PNG")
    _, size, _, frames = image_stats(plots / "episode.gif")
    assert frames == 8  # 12 steps, at most animation_max_frames

    # Figure selection: a disabled figure becomes a placeholder, the selected ones stay real.
    before = {n: (plots / n).read_bytes() for n in ALL_OUTPUTS}
    write_params(tmp_path, {"figures": ["reward", "animation"], "animation_max_frames": 8},
                 {"directory": "runs/out"})
    p = run_stage(tmp_path)
    assert p.returncode == 0, p.stderr
    for name in ALL_OUTPUTS:
        if name in ("reward.png", "episode.gif"):
            assert_real_figure(plots / name, "GIF" if name.endswith(".gif") else "PNG")
        else:
            assert_placeholder(plots / name)
            assert len((plots / name).read_bytes()) < len(before[name])
    assert (plots / "reward.png").read_bytes() != (plots / "loss.png").read_bytes()


def test_mlp_agent_without_oracle(tmp_path: Path) -> None:
    """MLP captures (no attention), all-null accuracy and oracle columns, no performance metrics."""
    synthetic.write_summary(tmp_path, episodes=60, steps_per_episode=6, oracle=False, metrics=())
    synthetic.write_captures(tmp_path, kind="mlp", episodes=(30, 60), trace_steps=10,
                             mlp_points=40)
    write_params(tmp_path, {"smoothing": 3})
    p = run_stage(tmp_path)
    assert p.returncode == 0, p.stderr
    plots = tmp_path / "plots"
    for name in ("reward.png", "loss.png", "actions.png", "entropy.png", "value.png",
                 "embeddings_pca.png", "embeddings_tsne.png"):
        assert_real_figure(plots / name)
    assert_real_figure(plots / "episode.gif", "GIF")
    assert image_stats(plots / "episode.gif")[3] == 10
    assert_placeholder(plots / "performance.png")
    assert_placeholder(plots / "attention.png")
    assert "note: performance.png" in p.stdout and "Deployment Accuracy is empty" in p.stdout
    assert "note: attention.png" in p.stdout


def test_missing_captures_give_placeholders(tmp_path: Path) -> None:
    synthetic.write_summary(tmp_path, episodes=30, steps_per_episode=4)
    write_params(tmp_path, {"figures": ["reward", "embeddings", "attention", "animation"]})
    p = run_stage(tmp_path)
    assert p.returncode == 0, p.stderr
    plots = tmp_path / "plots"
    assert_real_figure(plots / "reward.png")
    for name in ("embeddings_pca.png", "embeddings_tsne.png", "attention.png"):
        assert_placeholder(plots / name)
    assert_placeholder(plots / "episode.gif", "GIF")
    assert "training_output/captures/index.json not found" in p.stdout
    for name in ("embeddings_pca.png", "embeddings_tsne.png", "attention.png", "episode.gif"):
        assert f"note: {name}" in p.stdout


def test_missing_summary_file_fails_and_keeps_old_plots(tmp_path: Path) -> None:
    synthetic.write_summary(tmp_path, episodes=20, steps_per_episode=4)
    (tmp_path / "data" / "summary" / "episodes.parquet").unlink()
    write_params(tmp_path)
    plots = tmp_path / "plots"
    plots.mkdir()
    (plots / "reward.png").write_bytes(b"old figure")
    p = run_stage(tmp_path)
    assert p.returncode == 2
    assert "data/summary/episodes.parquet" in p.stderr
    assert "dvc repro summarize" in p.stderr
    assert "Traceback" not in p.stderr
    assert (plots / "reward.png").read_bytes() == b"old figure"
    assert sorted(x.name for x in plots.iterdir()) == ["reward.png"]

    # A summary file without a contract column: also a clear error, nothing written.
    synthetic.write_parquet(tmp_path / "data" / "summary" / "episodes.parquet",
                            {"Episode": np.arange(1, 4), "Cumulative Reward": np.ones(3)})
    p = run_stage(tmp_path)
    assert p.returncode == 2
    assert "episodes.parquet: missing column(s)" in p.stderr and "'Mean Episode Reward'" in p.stderr
    assert (plots / "reward.png").read_bytes() == b"old figure"


def test_bad_params_exit_nonzero(tmp_path: Path) -> None:
    synthetic.write_summary(tmp_path, episodes=10, steps_per_episode=2)
    write_params(tmp_path, {"figures": ["reward", "heatmap"]})
    p = run_stage(tmp_path)
    assert p.returncode == 2
    assert "visualize.figures[1]" in p.stderr
    assert not (tmp_path / "plots").exists()


@pytest.mark.parametrize("formats, key", [(["png", "jpg"], "visualize.formats[1]"),
                                          (["png", "png"], "visualize.formats")])
def test_bad_formats_exit_nonzero(tmp_path: Path, formats, key) -> None:
    """The figure names and formats are checked against the registry by the visualize stage
    (config.py never imports the figures), still before anything is written."""
    synthetic.write_summary(tmp_path, episodes=10, steps_per_episode=2)
    write_params(tmp_path, {"formats": formats})
    p = run_stage(tmp_path)
    assert p.returncode == 2 and f"{key}:" in p.stderr, p.stderr
    assert not (tmp_path / "plots").exists()


def test_mismatched_capture_shapes_are_notes(tmp_path: Path) -> None:
    synthetic.write_summary(tmp_path, episodes=20, steps_per_episode=4)
    cap = synthetic.write_captures(tmp_path, kind="graph", episodes=(10, 20), num_nodes=6)
    # latest embeddings: 'chosen' one row short
    z = synthetic.graph_embeddings(2, 6)
    z["chosen"] = z["chosen"][:-1]
    np.savez(cap / "ep000020_embeddings.npz", **z)
    # latest attention: node_labels too short, and alpha rows != edge_index columns
    a = synthetic.attention_arrays(6, (4, 1))
    m = a["edge_index_1"].shape[1]
    a["alpha_1"] = a["alpha_1"][:-3]
    np.savez(cap / "ep000020_attention.npz", **a)
    # latest trace: a utilisation vector of the wrong length
    t = synthetic.graph_trace(20, 6, 5)
    t["steps"][2]["node_values"] = [0.5] * 4
    (cap / "ep000020_trace.json").write_text(json.dumps(t))
    write_params(tmp_path, {"figures": ["embeddings", "attention", "animation"]})
    p = run_stage(tmp_path)
    assert p.returncode == 0, p.stderr
    assert "Traceback" not in p.stderr
    plots = tmp_path / "plots"
    for name in ("embeddings_pca.png", "embeddings_tsne.png", "attention.png"):
        assert_placeholder(plots / name)
    assert_placeholder(plots / "episode.gif", "GIF")
    assert "'chosen' has shape (11,), expected [12]" in p.stdout
    assert f"'alpha_1' has shape ({m - 3}, 1), expected [{m}, heads]" in p.stdout
    assert "steps[2].node_values has 4 values, num_nodes is 6" in p.stdout

    # labels of the wrong length are caught too
    a = synthetic.attention_arrays(6, (4, 1))
    a["node_labels"] = a["node_labels"][:5]
    np.savez(cap / "ep000020_attention.npz", **a)
    write_params(tmp_path, {"figures": ["attention"]})
    p = run_stage(tmp_path)
    assert p.returncode == 0, p.stderr
    assert "'node_labels' has 5 entries, num_nodes is 6" in p.stdout
    assert_placeholder(plots / "attention.png")


def test_help_and_outputs_cover_all_figures() -> None:
    assert set(FIGURE_OUTPUTS) == set(FIGURE_NAMES)
    p = subprocess.run([sys.executable, str(STAGE), "--help"], capture_output=True, text=True,
                       timeout=60)
    assert p.returncode == 0 and "--params" in p.stdout


@pytest.mark.parametrize("module", ["rlpipe.plots.stage", "rlpipe.plots.projection"])
def test_no_torch_in_import_graph(module: str) -> None:
    """Importing the stage's modules and running its entry point pulls in no torch."""
    code = textwrap.dedent(f"""
        import runpy, sys
        import {module}
        sys.argv = ["visualize", "--help"]
        try:
            runpy.run_path({str(STAGE)!r}, run_name="__main__")
        except SystemExit:
            pass
        bad = [m for m in sys.modules if m.split(".")[0] in ("torch", "torch_geometric")]
        assert not bad, bad
    """)
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
