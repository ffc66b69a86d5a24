"""Unit tests of the visualize stage's pure functions and figure builders (in-process, fast)."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from rlpipe.errors import InputFileError  # noqa: E402
from rlpipe.plots import FigureUnavailable, inputs, projection  # noqa: E402
from devkit import synthetic  # noqa: E402
from rlpipe.plots.animation import (  # noqa: E402
    GraphTrace, SimpleTrace, episode_gif, frame_indices, validate_trace,
)
from rlpipe.plots.attention import (  # noqa: E402
    attention_figure, attention_matrices, type_pair_means, validate_attention,
)
from rlpipe.plots.embeddings import pca_figure, tsne_figure, validate_embeddings  # noqa: E402
from rlpipe.plots.training import (  # noqa: E402
    action_window_counts, actions_figure, performance_metrics,
)
from rlpipe.plots.value import reward_to_go  # noqa: E402


# --------------------------------------------------------------------------- attention
def probe_graph():
    """6 nodes (2 cloud), a few directed edges plus one self-loop per node; 2 layers, 4 and 1 heads."""
    src = np.array([0, 1, 2, 3, 4, 5, 1, 3])
    dst = np.array([1, 0, 3, 2, 5, 4, 2, 4])
    loops = np.arange(6)
    ei = np.stack([np.concatenate([src, loops]), np.concatenate([dst, loops])]).astype(np.int64)
    rng = np.random.default_rng(1)
    return ei, rng.random((ei.shape[1], 4)).astype(np.float32), rng.random((ei.shape[1], 1))


def test_attention_matrix_places_alpha_at_target_source() -> None:
    ei, alpha, _ = probe_graph()
    M = attention_matrices(ei, alpha, 6)
    assert M.shape == (4, 6, 6)
    for e in range(ei.shape[1]):
        s, t = ei[:, e]
        np.testing.assert_allclose(M[:, t, s], alpha[e], rtol=1e-6)
    # diagonal = self-loop weights (the last 6 columns of edge_index)
    np.testing.assert_allclose(np.diagonal(M, axis1=1, axis2=2), alpha[-6:].T, rtol=1e-6)
    # no edge -> NaN (drawn as "no edge", distinct from a zero weight)
    present = np.zeros((6, 6), bool)
    present[ei[1], ei[0]] = True
    assert np.isnan(M[:, ~present]).all() and np.isfinite(M[:, present]).all()
    # 1-D alpha = one head
    assert attention_matrices(ei, alpha[:, 0], 6).shape == (1, 6, 6)


def test_type_pair_means() -> None:
    ei = np.array([[0, 1, 2, 2, 0, 1, 2], [1, 0, 0, 1, 0, 1, 2]])  # 0 = cloud; 1, 2 = edge
    alpha = np.array([[0.1], [0.2], [0.3], [0.4], [0.5], [0.6], [0.7]])
    m = type_pair_means(ei, alpha, np.array([1, 0, 0]), ("edge", "cloud"))
    assert m["cloud→edge"][0] == pytest.approx(0.1)  # 0 -> 1
    assert m["edge→cloud"][0] == pytest.approx(0.25)  # 1 -> 0, 2 -> 0
    assert m["edge→edge"][0] == pytest.approx(0.4)  # 2 -> 1
    assert np.isnan(m["cloud→cloud"][0])  # only a self-loop there
    assert m["self-loop"][0] == pytest.approx(0.6)


def attention_npz():
    return synthetic.attention_arrays(6, (4, 1))


def test_attention_figure_is_built_from_captured_arrays() -> None:
    z = attention_npz()
    att = validate_attention(z, 100)
    fig = attention_figure(att)
    heat = [ax for ax in fig.axes if ax.images and ax.get_title().startswith("layer")]
    assert [ax.get_title() for ax in heat] == [f"layer 0, head {h}" for h in range(4)] + [
        "layer 1, head 0"]
    expected = [attention_matrices(z["edge_index_0"], z["alpha_0"], 6)[h] for h in range(4)] + [
        attention_matrices(z["edge_index_1"], z["alpha_1"], 6)[0]]
    for ax, M in zip(heat, expected):
        shown = ax.images[0].get_array()
        np.testing.assert_allclose(np.ma.filled(shown, np.nan), M, rtol=1e-6)
    assert [t.get_text() for t in heat[0].get_xticklabels()] == list(z["node_labels"])
    assert "episode 100" in fig.get_suptitle()


@pytest.mark.parametrize("breakage, message", [
    (lambda z: z.update(node_labels=z["node_labels"][:4]), "'node_labels' has 4 entries"),
    (lambda z: z.update(alpha_0=z["alpha_0"][:-1]), "'alpha_0' has shape"),
    (lambda z: z.update(edge_index_1=z["edge_index_1"] + 1), "outside 0..5"),
    (lambda z: z.pop("alpha_1"), "'alpha_1' is missing"),
    (lambda z: z.update(node_kinds=np.zeros(7, np.int64)), "'node_kinds' has 7 entries"),
    (lambda z: z.update(node_kinds=np.full(6, 2)), "outside the 2 kind names"),
    (lambda z: z.update(edge_index_0=z["edge_index_0"].T), "must be an integer [2, E]"),
])
def test_attention_shape_mismatch_is_unavailable(breakage, message) -> None:
    z = attention_npz()
    breakage(z)
    with pytest.raises(FigureUnavailable, match=message.replace("[", r"\[").replace("]", r"\]")):
        validate_attention(z, 1)


# --------------------------------------------------------------------------- embeddings
def test_pca_2d_shape_and_determinism() -> None:
    X = np.random.default_rng(0).normal(size=(50, 8)) * np.arange(1, 9)
    Y, ratio = projection.pca_2d(X)
    assert Y.shape == (50, 2)
    assert 0 < ratio[1] <= ratio[0] <= 1
    Y2, _ = projection.pca_2d(X[::-1])
    np.testing.assert_allclose(Y2[::-1], Y, atol=1e-9)  # sign convention fixed
    assert np.abs(Y[:, 0]).std() > np.abs(Y[:, 1]).std() * 0.9
    Y1, r1 = projection.pca_2d(X[:, :1])
    assert Y1.shape == (50, 2) and (Y1[:, 1] == 0).all() and r1[1] == 0


def test_subsample_and_perplexity() -> None:
    keep = np.zeros(1000, bool)
    keep[[3, 500, 999]] = True
    idx = projection.subsample_indices(1000, 100, keep=keep)
    assert idx.size == 100 and np.unique(idx).size == 100 and {3, 500, 999} <= set(idx)
    np.testing.assert_array_equal(idx, projection.subsample_indices(1000, 100, keep=keep))
    assert projection.subsample_indices(40, 100).size == 40
    assert projection.tsne_perplexity(30, 2000) == 30
    assert projection.tsne_perplexity(30, 31) == pytest.approx(10.0)


BACKENDS = ["scikit-learn"] + (["openTSNE"] if importlib.util.find_spec("openTSNE") else [])


@pytest.mark.parametrize("backend", BACKENDS)
def test_tsne_subsample_is_bounded(backend: str) -> None:
    X = np.random.default_rng(0).normal(size=(120, 6))
    idx, Y, p = projection.tsne_2d(X, perplexity=30.0, sample=40, backend=backend)
    assert idx.size == 40 and Y.shape == (40, 2) and np.isfinite(Y).all()
    assert p == pytest.approx(13.0)  # (40 - 1) / 3 < 30
    with pytest.raises(FigureUnavailable):
        projection.tsne_fit(X[:4], 30.0, backend=backend)
    with pytest.raises(FigureUnavailable):
        projection.tsne_fit(np.ones((10, 3)), 30.0, backend=backend)


def test_validate_embeddings_graph_and_mlp() -> None:
    g = validate_embeddings(synthetic.graph_embeddings(2, 6), 5)
    assert g.kind == "graph" and g.X.shape == (12, 16) and set(g.arrays) >= {"chosen", "probs"}
    m = validate_embeddings(synthetic.mlp_embeddings(30), 5)
    assert m.kind == "mlp" and set(m.arrays) == {"action", "value"}
    bad = synthetic.graph_embeddings(2, 6)
    bad["probs"] = bad["probs"][:5]
    with pytest.raises(FigureUnavailable, match="'probs' has shape"):
        validate_embeddings(bad, 5)
    with pytest.raises(FigureUnavailable, match="neither graph arrays"):
        validate_embeddings({"embeddings": np.zeros((3, 2))}, 5)
    nan = synthetic.mlp_embeddings(10)
    nan["embeddings"][2] = np.nan
    e = validate_embeddings(nan, 5)
    assert e.X.shape[0] == 9 and "1 of 10 rows" in e.note


def test_pca_figure_plots_the_projection_of_the_capture() -> None:
    z = synthetic.graph_embeddings(2, 6)
    emb = validate_embeddings(z, 7)
    older = validate_embeddings(synthetic.graph_embeddings(2, 6, seed=3), 3)
    fig = pca_figure(emb, [older])
    Y, _ = projection.pca_2d(z["embeddings"])
    first = fig.axes[0]
    shown = np.concatenate([c.get_offsets() for c in first.collections])
    chosen, ref = z["chosen"], z["reference"]
    # the nodes (not chosen, then chosen as stars), then the reference set ringed on top
    np.testing.assert_allclose(shown, np.concatenate([Y[~chosen], Y[chosen], Y[ref]]), rtol=1e-6)
    legend = [t.get_text() for t in first.get_legend().get_texts()]
    assert legend[:2] == ["edge node", "cloud node"] and "in the reference set" in legend
    titles = [ax.get_title() for ax in fig.axes]
    assert "episode 3" in titles and "episode 7" in titles  # evolution row
    idx = np.arange(12)
    fig = tsne_figure(emb, idx, Y, 3.7, "scikit-learn")
    assert "scikit-learn" in fig.get_suptitle()


# --------------------------------------------------------------------------- training series
def test_reward_to_go_per_episode() -> None:
    # rows shuffled; episode 2 is sub-sampled (steps 1, 3) -> not exact
    ep = np.array([1, 2, 1, 1, 2, 3])
    st = np.array([2, 3, 1, 3, 1, 1])
    rw = np.array([2.0, 5.0, 1.0, 3.0, 4.0, 7.0])
    rtg, exact = reward_to_go(ep, st, rw)
    np.testing.assert_allclose(rtg[[2, 0, 3]], [6.0, 5.0, 3.0])
    assert rtg[5] == 7.0
    assert exact.tolist() == [True, False, True, True, False, True]
    # discounted: G_t = r_t + γ G_{t+1} within each episode (episode 1: rewards 1, 2, 3)
    g, exact_g = reward_to_go(ep, st, rw, gamma=0.5)
    np.testing.assert_allclose(g[[2, 0, 3]], [1 + 0.5 * 2 + 0.25 * 3, 2 + 0.5 * 3, 3.0])
    np.testing.assert_allclose(g[[4, 1]], [4 + 0.5 * 5, 5.0])  # by step order, not row order
    assert (exact_g == exact).all()


def test_action_window_counts() -> None:
    ep = np.array([1, 1, 2, 3, 4, 4, 5], float)
    act = np.array([0, 1, 1, 2, 2, np.nan, 0])
    counts, starts = action_window_counts(ep, act, 2, 3)
    assert starts.tolist() == [1, 3, 5]
    assert counts.tolist() == [[1, 0, 1], [2, 0, 0], [0, 2, 0]]


def summary_tables(tmp_path: Path, **kw):
    synthetic.write_summary(tmp_path, **kw)
    d = tmp_path / "data" / "summary"
    return {k: inputs.read_summary(k, d) for k in ("episodes", "updates", "steps")}


def test_read_summary_nulls_and_extra_columns(tmp_path: Path) -> None:
    t = summary_tables(tmp_path, episodes=12, steps_per_episode=3, oracle=False)
    ep, st = t["episodes"], t["steps"]
    assert np.isnan(ep["Deployment Accuracy"]).all()
    assert np.isnan(st["Oracle Action"]).all() and np.isnan(st["Feasible"]).all()
    assert ep.columns_after("Deployment Accuracy") == list(synthetic.GRAPH_METRICS)
    assert performance_metrics(ep) == list(synthetic.GRAPH_METRICS)  # accuracy all null: left out
    assert np.isnan(ep["Actor Loss"][0])  # first rollout: empty


def test_read_summary_errors(tmp_path: Path) -> None:
    with pytest.raises(InputFileError, match="dvc repro summarize"):
        inputs.read_summary("steps", tmp_path)
    p = tmp_path / "steps.parquet"
    p.write_bytes(b"not parquet")
    with pytest.raises(InputFileError, match="not a readable Parquet file"):
        inputs.read_summary("steps", tmp_path)


def test_actions_figure_with_and_without_oracle(tmp_path: Path) -> None:
    t = summary_tables(tmp_path / "a", episodes=30, steps_per_episode=5, oracle=True)
    fig = actions_figure(t["steps"], 5)
    assert len([ax for ax in fig.axes if ax.get_label() != "<colorbar>"]) == 2
    t = summary_tables(tmp_path / "b", episodes=30, steps_per_episode=5, oracle=False)
    fig = actions_figure(t["steps"], 5)
    assert len([ax for ax in fig.axes if ax.get_label() != "<colorbar>"]) == 1
    t = summary_tables(tmp_path / "c", episodes=5, steps_per_episode=2, step_rows=False)
    assert len(t["steps"]) == 0
    with pytest.raises(FigureUnavailable, match="no rows"):
        actions_figure(t["steps"], 5)


# --------------------------------------------------------------------------- animation
def test_frame_indices() -> None:
    f = frame_indices(100, 7)
    assert f.size == 7 and f[0] == 0 and f[-1] == 99 and (np.diff(f) > 0).all()
    assert frame_indices(5, 60).tolist() == [0, 1, 2, 3, 4]


def test_trace_validation_and_gif() -> None:
    from io import BytesIO

    from PIL import Image

    g = validate_trace(synthetic.graph_trace(9, 6, 7), 9)
    assert isinstance(g, GraphTrace) and g.node_values.shape == (7, 6)
    assert g.kind_names == ("edge", "cloud") and g.value_name == "utilisation"
    s = validate_trace(synthetic.simple_trace(9, 7), 9)
    assert isinstance(s, SimpleTrace) and s.reward.size == 7
    for tr in (g, s):
        with Image.open(BytesIO(episode_gif(tr, fps=5, max_frames=4, dpi=50))) as im:
            assert im.format == "GIF" and im.n_frames == 4
            assert im.info["duration"] == 200
    bad = synthetic.graph_trace(9, 6, 3)
    bad["positions"] = bad["positions"][:5]
    with pytest.raises(FigureUnavailable, match="'positions' has shape"):
        validate_trace(bad, 9)
    bad = synthetic.graph_trace(9, 6, 3)
    bad["steps"][1]["reference"] = [6]
    with pytest.raises(FigureUnavailable, match="reference holds a node outside"):
        validate_trace(bad, 9)
    # no positions: drawn on a circle
    circle = synthetic.graph_trace(9, 6, 3)
    del circle["positions"]
    assert validate_trace(circle, 9).positions.shape == (6, 2)
    with pytest.raises(FigureUnavailable, match="no steps"):
        validate_trace({"episode": 1, "steps": []}, 1)


@pytest.mark.parametrize("style", ["whitegrid", "darkgrid", "white", "ticks", "default"])
def test_every_style_draws(style: str, tmp_path: Path) -> None:
    from rlpipe.plots.render import figure_png, placeholder_png
    from rlpipe.plots.style import apply_style
    from rlpipe.plots.training import reward_figure

    t = summary_tables(tmp_path, episodes=20, steps_per_episode=2)
    with matplotlib.rc_context():
        apply_style(style)
        assert figure_png(reward_figure(t["episodes"], 4), 40)[:8] == b"\x89PNG\r\n\x1a\n"
        assert placeholder_png("t", "m", 40)[:4] == b"\x89PNG"


# --------------------------------------------------------------------------- value figure
def _table(name: str, cols: dict) -> inputs.Table:
    data = {k: np.asarray(v, dtype=np.float64) for k, v in cols.items()}
    return inputs.Table(Path(f"{name}.parquet"), list(data), data, len(next(iter(data.values()))))


@pytest.mark.parametrize("gamma", [0.2, 0.9])
def test_value_figure_compares_values_with_the_return_at_train_gamma(gamma) -> None:
    """A critic that predicts the γ-discounted return exactly lies on V = G, whatever γ is; the
    same values read at another γ do not."""
    from rlpipe.plots.value import reward_to_go, value_figure

    rng = np.random.default_rng(0)
    ep = np.repeat(np.arange(1, 41), 30)
    st = np.tile(np.arange(1, 31), 40)
    rw = rng.choice([1.0, 0.5, -1.0], ep.size)
    perfect, _ = reward_to_go(ep, st, rw, gamma)
    updates = _table("updates", {"Update": [1, 2, 3], "Explained Variance": [0.1, 0.5, 0.9]})

    def calibration_gap(assumed: float) -> float:
        steps = _table("steps", {"Episode": ep, "Step": st, "Reward": rw, "Value": perfect})
        fig = value_figure(steps, updates, 20, assumed)
        ax = next(a for a in fig.axes if a.get_ylabel() == "critic value estimate V")
        assert f"γ = {assumed:g}" in ax.get_xlabel() and f"γ = {assumed:g}" in fig.get_suptitle()
        line = next(ln for ln in ax.get_lines() if ln.get_label() == "mean V per bin of G")
        x, y = line.get_xdata(), line.get_ydata()
        return float(np.max(np.abs(y - x)))

    assert calibration_gap(gamma) < 1e-9
    assert calibration_gap(0.5) > 0.05


def _legend_texts(fig) -> list[str]:
    return [t.get_text() for ax in fig.axes if ax.get_legend() for t in ax.get_legend().get_texts()]


@pytest.mark.parametrize("episodes, updates, ep_label, up_label", [
    (480, 60, "centred mean of 19 episodes", "centred mean of 5 updates"),   # a default run
    (48, 6, "centred mean of 3 episodes", "6 updates, too few to smooth"),   # a 48-episode run
])
def test_smoothing_fits_each_series_and_the_legend_says_the_window(episodes, updates, ep_label,
                                                                    up_label) -> None:
    from rlpipe.plots.training import loss_figure, reward_figure

    rng = np.random.default_rng(1)
    ep = _table("episodes", {"Episode": np.arange(1, episodes + 1),
                             "Cumulative Reward": rng.normal(size=episodes),
                             "Mean Episode Reward": rng.normal(size=episodes)})
    up = _table("updates", {"Update": np.arange(1, updates + 1), "Global Step": np.arange(updates),
                            "Actor Loss": rng.normal(size=updates),
                            "Critic Loss": rng.random(updates) + 0.1})
    assert any(ep_label in t for t in _legend_texts(reward_figure(ep, 20)))
    texts = _legend_texts(loss_figure(up, ep, 20))
    assert sum(up_label in t for t in texts) == 2, texts   # actor and critic


def test_integer_axes_get_integer_ticks() -> None:
    """Episodes, updates and action indices: never a tick at 2.5 (a short run's 3 updates would
    get 1.25, 1.5 ... by default)."""
    from rlpipe.plots.training import entropy_figure, loss_figure

    rng = np.random.default_rng(2)
    n = 12 * 5
    steps = _table("steps", {"Episode": np.repeat(np.arange(1, 13), 5), "Step": np.tile(np.arange(1, 6), 12),
                             "Action": rng.integers(0, 6, n), "Reward": rng.random(n),
                             "Value": rng.random(n), "Oracle Action": rng.integers(0, 6, n)})
    up = _table("updates", {"Update": [1, 2, 3], "Global Step": [20, 40, 60],
                            "Actor Loss": [0.3, 0.1, 0.2], "Critic Loss": [1.0, 0.5, 0.2],
                            "Policy Entropy": [1.5, 1.2, 1.0], "Approx KL": [0.01, 0.02, 0.01],
                            "Clip Fraction": [0.1, 0.2, 0.1]})
    ep = _table("episodes", {"Episode": np.arange(1, 13)})
    actions = actions_figure(steps, 20)
    bars = next(a for a in actions.axes if a.get_xlabel().startswith("action index"))
    axes = [(actions.axes[0], "xy"), (bars, "x")]
    axes += [(a, "x") for a in loss_figure(up, ep, 20).axes if a.get_xlabel()]
    axes += [(a, "x") for a in entropy_figure(up, ep, 20).axes if a.get_xlabel()]
    for ax, which in axes:
        ticks = [*(ax.get_xticks() if "x" in which else []), *(ax.get_yticks() if "y" in which else [])]
        assert ticks and all(float(t).is_integer() for t in ticks), (ax.get_xlabel(), list(ticks))


def test_evaluation_figure_bars_are_the_means_of_eval_episodes(tmp_path: Path) -> None:
    import csv

    from rlpipe.plots.evaluation import evaluation_figure

    path = synthetic.write_eval_episodes(tmp_path, episodes=6)
    rows = list(csv.DictReader(path.open()))
    fig = evaluation_figure(path)
    ret_ax, acc_ax = fig.axes[:2]
    heights = [p.get_height() for p in ret_ax.patches]
    assert len(heights) == 2 * 4                 # variants x policies
    # bars are drawn policy by policy, each over the variants
    for k, policy in enumerate(["final", "best", "random", "reference"]):
        for v, variant in enumerate(["trained", "zero_shot_2x"]):
            values = [float(r["Return"]) for r in rows if (r["Variant"], r["Policy"]) == (variant, policy)]
            assert heights[2 * k + v] == pytest.approx(np.mean(values))
    assert [t.get_text() for t in ret_ax.get_xticklabels()] == ["trained", "zero_shot_2x"]
    assert "accuracy" in acc_ax.get_ylabel()
    returns_only = evaluation_figure(synthetic.write_eval_episodes(tmp_path / "no_ref", reference=False))
    assert len([a for a in returns_only.axes if a.patches]) == 1


def test_evaluation_figure_needs_the_evaluate_stage_output(tmp_path: Path) -> None:
    from rlpipe.plots.evaluation import evaluation_figure

    with pytest.raises(FigureUnavailable, match="no .*eval/episodes.csv"):
        evaluation_figure(tmp_path / "eval" / "episodes.csv")
    bad = tmp_path / "bad.csv"
    bad.write_text("Variant,Return\ntrained,1.0\n")
    with pytest.raises(FigureUnavailable, match="lacks the columns Policy"):
        evaluation_figure(bad)


def test_reward_figure_draws_evaluation_during_training_beside_training(tmp_path: Path) -> None:
    from rlpipe.plots.evaluation import read_training_evaluations
    from rlpipe.plots.inputs import read_summary

    synthetic.write_summary(tmp_path, episodes=40, steps_per_episode=3)
    episodes = read_summary("episodes", tmp_path / "data" / "summary")
    evals = tmp_path / "eval.csv"
    evals.write_text("Episode,Global Step,Update,Episodes,Mean Return,Return SD,Best Mean Return\n"
                     "10,30,1,3,1.5,0.5,1.5\n20,60,2,3,2.5,0.25,2.5\n")
    from rlpipe.plots.training import reward_figure

    plain = reward_figure(episodes, 5)
    fig = reward_figure(episodes, 5, read_training_evaluations(evals))
    added = [line for line in fig.axes[0].lines if "evaluation" in line.get_label()]
    assert len(fig.axes[0].lines) == len(plain.axes[0].lines) + 1 and len(added) == 1
    assert added[0].get_xdata().tolist() == [10, 20] and added[0].get_ydata().tolist() == [1.5, 2.5]
    assert read_training_evaluations(tmp_path / "missing.csv") is None
