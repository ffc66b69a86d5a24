"""The visualize stage's output choices: image formats (png, svg, both), one GIF per captured
episode with its metadata, and the capture drawn by the attention and embedding figures."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from rlpipe.plots.registry import check_settings
from rlpipe.config import ConfigError, Params
from rlpipe.plots.builders import episode_gif_name
from devkit import synthetic
from tests.visualize.test_visualize_stage import (assert_placeholder, image_stats, run_stage,
                                                  write_params)



@pytest.fixture
def graph_root(tmp_path: Path) -> Path:
    synthetic.write_summary(tmp_path, episodes=30, steps_per_episode=4)
    synthetic.write_captures(tmp_path, kind="graph", episodes=(10, 20, 30), num_nodes=6,
                             trace_steps=6)
    return tmp_path


def stage_ok(root: Path, figures: list[str], **visualize) -> str:
    write_params(root, {"figures": figures, "animation_max_frames": 4, "dpi": 40,
                        "tsne_sample": 30, **visualize})
    p = run_stage(root)
    assert p.returncode == 0, p.stderr
    return p.stdout


FORMAT_FIGS = ["reward", "attention", "animation"]


def test_svg_beside_png_and_svg_alone(graph_root):
    plots = graph_root / "plots"
    stage_ok(graph_root, FORMAT_FIGS, formats=["png", "svg"])
    for stem in ("reward", "attention", "loss"):
        png, svg = plots / f"{stem}.png", plots / f"{stem}.svg"
        assert png.is_file() and svg.is_file(), stem
        text = svg.read_text()
        assert text.startswith("<?xml") and "<svg" in text and text.rstrip().endswith("</svg>")
    # loss is disabled: a placeholder in both formats, far shorter than the real reward figure
    assert image_stats(plots / "loss.png")[1][1] * 2 < image_stats(plots / "reward.png")[1][1]
    assert (plots / "loss.svg").stat().st_size < (plots / "reward.svg").stat().st_size
    first = {n: (plots / n).read_bytes() for n in ("reward.png", "reward.svg")}
    stage_ok(graph_root, FORMAT_FIGS, formats=["svg", "png"])  # same bytes (no date, fixed ids)
    assert {n: (plots / n).read_bytes() for n in first} == first
    stage_ok(graph_root, FORMAT_FIGS)  # png alone: the same png as beside an svg
    assert (plots / "reward.png").read_bytes() == first["reward.png"]
    assert not list(plots.glob("*.svg"))
    stage_ok(graph_root, FORMAT_FIGS, formats=["svg"])
    assert not list(plots.glob("*.png"))  # only svg asked for: the png files of before are gone
    assert image_stats(plots / "episode.gif")[0] == "GIF"  # GIFs stay GIFs


def test_one_gif_per_captured_episode_with_metadata(graph_root):
    plots = graph_root / "plots"
    stage_ok(graph_root, ["animation"])
    cap = graph_root / "training_output" / "captures"
    names = []
    for episode in (10, 20, 30):
        trace = json.loads((cap / f"ep{episode:06d}_trace.json").read_text())
        reward = sum(s["reward"] for s in trace["steps"])
        name = episode_gif_name(episode, reward)
        assert name == f"ep{episode:06d}_reward{reward:.3f}.gif"
        fmt, _, _, frames = image_stats(plots / "episodes" / name)
        assert fmt == "GIF" and frames == 4
        meta = json.loads((plots / "episodes" / name).with_suffix(".json").read_text())
        assert meta == {"episode": episode, "reward": pytest.approx(reward), "steps": 6,
                        "frames": 4, "fps": 4, "trace": f"ep{episode:06d}_trace.json"}
        names.append(name)
    assert sorted(p.name for p in (plots / "episodes").iterdir()) == sorted(
        names + [n.replace(".gif", ".json") for n in names])
    assert (plots / "episode.gif").read_bytes() == (plots / "episodes" / names[-1]).read_bytes()

    # fewer captures: the GIFs of captures that are gone go too
    synthetic.write_captures(graph_root, kind="graph", episodes=(10,), num_nodes=6, trace_steps=6)
    stage_ok(graph_root, ["animation"])
    assert sorted(p.name for p in (plots / "episodes").iterdir()) == [
        names[0], names[0].replace(".gif", ".json")]
    # the animation figure disabled: no per-episode GIFs either
    stage_ok(graph_root, ["reward"])
    assert list((plots / "episodes").iterdir()) == []


CAPTURE_FIGS = ["attention", "embeddings"]


def test_attention_and_embeddings_of_a_chosen_capture(graph_root, tmp_path):
    plots = graph_root / "plots"
    stage_ok(graph_root, CAPTURE_FIGS, capture_episode=10)
    chosen = {n: (plots / n).read_bytes() for n in ("attention.png", "embeddings_pca.png")}
    stage_ok(graph_root, CAPTURE_FIGS)  # 0: the newest (30)
    assert all((plots / n).read_bytes() != b for n, b in chosen.items())
    # the same figures as a run whose only capture is episode 10
    only = tmp_path / "only10"
    synthetic.write_summary(only, episodes=30, steps_per_episode=4)
    synthetic.write_captures(only, kind="graph", episodes=(10,), num_nodes=6, trace_steps=6)
    stage_ok(only, CAPTURE_FIGS)
    assert {n: (only / "plots" / n).read_bytes() for n in chosen} == chosen

    out = stage_ok(graph_root, CAPTURE_FIGS, capture_episode=15)
    for name in ("attention.png", "embeddings_pca.png", "embeddings_tsne.png"):
        assert_placeholder(plots / name)
    assert ("no attention capture at episode 15 (visualize.capture_episode; captured: 10, 20, 30)"
            in out)
    assert "no embeddings capture at episode 15" in out


@pytest.mark.parametrize("visualize, key, allowed", [
    ({"formats": []}, "visualize.formats", "at least one"),
    ({"formats": ["png", "png"]}, "visualize.formats", "at most once"),
    ({"formats": ["jpg"]}, "visualize.formats[0]", "one of 'png', 'svg'"),
    ({"formats": "svg"}, "visualize.formats", "a list of a string"),
    ({"capture_episode": -1}, "visualize.capture_episode", ">= 0"),
])
def test_params_errors(visualize, key, allowed):
    """Shape errors come from the section; figure names and formats from the figure registry,
    which the visualize stage checks before it writes anything."""
    with pytest.raises(ConfigError) as e:
        vis = Params.from_dict({"visualize": visualize}).visualize
        check_settings(vis.figures, vis.formats)
    assert str(e.value).startswith(key + ":") and allowed in str(e.value), str(e.value)
