"""The visualize stage: read the summary tables and captures, draw the selected figures, write them.

Every output of :data:`rlpipe.plots.FIGURE_OUTPUTS` is written on every run, atomically (rendered to
bytes first, then :func:`rlpipe.io_utils.atomic_write_bytes`), so that the outputs dvc.yaml declares
always exist and a failure leaves the previous files intact:

- a figure left out of ``visualize.figures`` → a small placeholder saying "figure disabled";
- a figure whose optional inputs are missing or malformed (no captures, mismatched array shapes,
  no rows) → a placeholder naming what is missing, and a printed note; the stage still exits 0;
- a missing or unreadable summary Parquet file → :class:`InputFileError` (exit 2), nothing written.
"""
from __future__ import annotations

import multiprocessing
import time
from pathlib import Path
from typing import Callable

import numpy as np

from rlpipe.config import ALL_FIGURES, ExperimentConfig, VisualizeConfig
from rlpipe.io_utils import atomic_write_bytes
from rlpipe.plots import FIGURE_OUTPUTS
from rlpipe.plots import inputs, projection
from rlpipe.plots.render import FigureUnavailable, figure_png, placeholder_gif, placeholder_png
from rlpipe.plots.style import apply_style

OUTPUT_DIR = Path("plots")
STEP_COLUMNS_USED = ("Episode", "Step", "Action", "Reward", "Value", "Oracle Action")
TITLES = {
    "reward": "Episode reward", "loss": "Losses", "actions": "Action distribution",
    "entropy": "Policy entropy", "value": "Value function", "performance": "Performance metrics",
    "embeddings_pca.png": "Embeddings by PCA", "embeddings_tsne.png": "Embeddings by t-SNE",
    "attention": "GAT attention", "animation": "Captured episode",
}
# Errors a malformed capture file can still raise past validation; they become notes, not tracebacks.
CAPTURE_ERRORS = (ValueError, TypeError, IndexError, KeyError)


class _Run:
    def __init__(self, vis: VisualizeConfig, exp: ExperimentConfig, root: Path, log: Callable[[str], None]):
        self.vis, self.exp, self.root, self.log = vis, exp, Path(root), log
        self.summary_dir = self.root / inputs.SUMMARY_DIR
        self.out_dir = self.root / OUTPUT_DIR
        self.captures_dir = self.root / exp.directory / "captures"
        self._tables: dict[str, inputs.Table] = {}
        self.written = 0
        self.placeholders = 0

    # ---------------------------------------------------------------- inputs
    def table(self, kind: str) -> inputs.Table:
        if kind not in self._tables:
            cols = STEP_COLUMNS_USED if kind == "steps" else None
            t = inputs.read_summary(kind, self.summary_dir, cols)
            for n in t.notes:
                self.note(n)
            self._tables[kind] = t
        return self._tables[kind]

    def note(self, message: str) -> None:
        self.log(f"visualize: note: {message}")

    # ---------------------------------------------------------------- outputs
    def write(self, name: str, data: bytes, placeholder: bool = False) -> None:
        atomic_write_bytes(self.out_dir / name, data)
        self.written += 1
        self.placeholders += placeholder

    def placeholder(self, name: str, title: str, message: str) -> None:
        if name.endswith(".gif"):
            data = placeholder_gif(title, message, self.vis.dpi)
        else:
            data = placeholder_png(title, message, self.vis.dpi)
        self.write(name, data, placeholder=True)

    def draw(self, name: str, title: str, build: Callable[[], object], capture: bool = False) -> None:
        """Build a figure (or GIF bytes) and write it; a placeholder with a note when unavailable."""
        t0 = time.perf_counter()
        try:
            result = build()
            data = result if isinstance(result, bytes) else figure_png(result, self.vis.dpi)
        except FigureUnavailable as e:
            self.note(f"{name}: {e}; wrote a placeholder")
            self.placeholder(name, title, f"not drawn: {e}")
            return
        except CAPTURE_ERRORS as e:
            if not capture:
                raise
            self.note(f"{name}: malformed capture ({type(e).__name__}: {e}); wrote a placeholder")
            self.placeholder(name, title, f"not drawn: malformed capture ({type(e).__name__}: {e})")
            return
        self.write(name, data)
        self.log(f"visualize: wrote {self.out_dir / name} ({time.perf_counter() - t0:.2f} s)")


# The summary tables each figure reads.
TABLES_NEEDED = {
    "reward": ("episodes",), "performance": ("episodes",), "loss": ("updates", "episodes"),
    "entropy": ("updates", "episodes"), "value": ("steps", "updates"), "actions": ("steps",),
}


def _actions(run: _Run, smoothing: int, training):
    """Per-dimension histograms for Box / MultiDiscrete actions (actions.parquet has rows),
    else the action counts of steps.parquet (Discrete)."""
    from rlpipe.plots.action_dims import action_dimensions_figure

    if inputs.summary_path("actions", run.summary_dir).is_file() and len(run.table("actions")):
        return action_dimensions_figure(run.table("actions"), smoothing)
    return training.actions_figure(run.table("steps"), smoothing)


def run_visualize(vis: VisualizeConfig, exp: ExperimentConfig, root: Path | str = ".",
                  log: Callable[[str], None] = print) -> int:
    """Draw every figure of ``vis.figures`` into ``<root>/plots/``; placeholders for the rest."""
    from rlpipe.plots import animation, attention, embeddings, training

    t_start = time.perf_counter()
    run = _Run(vis, exp, Path(root), log)
    inputs.check_summary_files(run.summary_dir)
    selected = set(vis.figures)

    captures, capture_notes = [], []
    if selected & {"embeddings", "attention", "animation"}:
        captures, capture_notes = inputs.load_capture_index(run.captures_dir)
        for n in capture_notes:
            run.note(n)

    # t-SNE is the slow part (seconds for 2000 points): it runs in a separate process, started
    # before anything else, while this one draws the other figures; its figure is drawn last.
    tsne_job = _TsneJob()
    try:
        emb_latest, emb_history, emb_error = None, [], None
        if "embeddings" in selected:
            emb_latest, emb_history, emb_error = _load_embeddings(run, captures, capture_notes)
            if emb_latest is not None:
                chosen = emb_latest.arrays.get("chosen")
                tsne_job.start(emb_latest.X, vis.tsne_perplexity, vis.tsne_sample,
                               None if chosen is None else chosen.astype(bool))

        # Read every table a selected figure needs before writing anything: a bad input fails
        # here, and the previous plots stay as they were.
        for fig_name in ALL_FIGURES:
            if fig_name in selected:
                for kind in TABLES_NEEDED.get(fig_name, ()):
                    run.table(kind)
        if "actions" in selected and inputs.summary_path("actions", run.summary_dir).is_file():
            run.table("actions")
        apply_style(vis.style)

        s = vis.smoothing
        builders: dict[str, Callable[[], object]] = {
            "reward": lambda: training.reward_figure(run.table("episodes"), s),
            "loss": lambda: training.loss_figure(run.table("updates"), run.table("episodes"), s),
            "actions": lambda: _actions(run, s, training),
            "entropy": lambda: training.entropy_figure(run.table("updates"), run.table("episodes"), s),
            "value": lambda: training.value_figure(run.table("steps"), run.table("updates"), s),
            "performance": lambda: training.performance_figure(run.table("episodes"), s),
            "attention": lambda: _attention(captures, capture_notes, attention),
            "animation": lambda: _animation(run, captures, capture_notes, animation),
        }
        for fig_name in ALL_FIGURES:
            if fig_name not in selected:
                for out in FIGURE_OUTPUTS[fig_name]:
                    run.placeholder(out, TITLES.get(fig_name, TITLES.get(out, fig_name)),
                                    f"figure disabled (visualize.figures does not list '{fig_name}')")
            elif fig_name in builders:
                run.draw(FIGURE_OUTPUTS[fig_name][0], TITLES[fig_name], builders[fig_name],
                         capture=fig_name in ("attention", "animation"))
        if "embeddings" in selected:  # last: gives the t-SNE worker the most time
            def pca():
                if emb_latest is None:
                    raise FigureUnavailable(emb_error)
                return embeddings.pca_figure(emb_latest, emb_history)

            def tsne():
                if emb_latest is None:
                    raise FigureUnavailable(emb_error)
                return embeddings.tsne_figure(emb_latest, *tsne_job.result())

            run.draw("embeddings_pca.png", TITLES["embeddings_pca.png"], pca, capture=True)
            run.draw("embeddings_tsne.png", TITLES["embeddings_tsne.png"], tsne, capture=True)
    finally:
        tsne_job.close()
    log(f"visualize: {run.written} files in {run.out_dir} ({run.placeholders} placeholders) "
        f"in {time.perf_counter() - t_start:.1f} s")
    return 0


class _TsneJob:
    """t-SNE of a seeded subsample in a spawned worker process (computed here if that fails).

    The worker imports only NumPy, scikit-learn / openTSNE and :mod:`rlpipe.plots.projection`;
    it is a daemon, terminated by :meth:`close` if the stage stops early.
    """

    def __init__(self) -> None:
        self.proc = None
        self.conn = None
        self.args: tuple | None = None
        self.idx: np.ndarray | None = None
        self.backend = ""

    def start(self, X: np.ndarray, perplexity: float, sample: int, keep: np.ndarray | None) -> None:
        self.idx = projection.subsample_indices(X.shape[0], sample, projection.SEED, keep)
        self.backend = projection.tsne_backend()
        self.args = (np.ascontiguousarray(X[self.idx]), perplexity, projection.SEED, 1,
                     self.backend)
        try:
            ctx = multiprocessing.get_context("spawn")
            self.conn, child = ctx.Pipe(duplex=False)
            self.proc = ctx.Process(target=projection.tsne_worker, args=(child, self.args),
                                    name="rlpipe-tsne", daemon=True)
            self.proc.start()
            child.close()
        except (OSError, RuntimeError, ValueError):
            self.close()

    def result(self) -> tuple[np.ndarray, np.ndarray, float, str]:
        Y = None
        if self.conn is not None:
            try:
                status, value = self.conn.recv()
            except (EOFError, OSError):  # the worker died: compute here
                status, value = "error", "worker process ended"
            if status == "unavailable":
                raise FigureUnavailable(value)
            if status == "ok":
                Y = value
        if Y is None:
            Y = projection.tsne_fit(*self.args)
        return self.idx, Y, projection.tsne_perplexity(self.args[1], self.idx.size), self.backend

    def close(self) -> None:
        if self.proc is not None:
            if self.proc.is_alive():
                self.proc.terminate()
            self.proc.join()
            self.proc = None
        if self.conn is not None:
            self.conn.close()
            self.conn = None


def _missing(kind: str, notes: list[str]) -> str:
    why = notes[0] if notes else "no capture lists one"
    return f"no {kind} capture ({why})"


def _load_embeddings(run: _Run, captures, notes):
    """(latest Embeddings or None, all valid Embeddings, reason when None)."""
    from rlpipe.plots.embeddings import validate_embeddings

    with_emb = [c for c in captures if c.embeddings is not None]
    if not with_emb:
        return None, [], _missing("embeddings", notes)
    history = []
    latest = None
    error = None
    for c in with_emb:
        is_latest = c is with_emb[-1]
        try:
            emb = validate_embeddings(inputs.load_npz(c.embeddings), c.episode, str(c.embeddings))
        except (inputs.CaptureFileError, FigureUnavailable, *CAPTURE_ERRORS) as e:
            if is_latest:
                error = str(e)
            else:
                run.note(f"embeddings evolution: {e}; capture left out")
            continue
        if emb.note:
            run.note(f"{c.embeddings}: {emb.note}")
        history.append(emb)
        if is_latest:
            latest = emb
    if latest is not None and history:
        kinds = {h.kind for h in history}
        if len(kinds) > 1:
            history = [h for h in history if h.kind == latest.kind]
    return latest, history, error


def _attention(captures, notes, attention):
    with_att = [c for c in captures if c.attention is not None]
    if not with_att:
        if captures:
            raise FigureUnavailable("no attention capture (captures of an MLP agent have none)")
        raise FigureUnavailable(_missing("attention", notes))
    c = with_att[-1]
    try:
        z = inputs.load_npz(c.attention)
    except inputs.CaptureFileError as e:
        raise FigureUnavailable(str(e)) from None
    return attention.attention_figure(attention.validate_attention(z, c.episode, str(c.attention)))


def _animation(run: _Run, captures, notes, animation):
    with_trace = [c for c in captures if c.trace is not None]
    if not with_trace:
        raise FigureUnavailable(_missing("episode trace", notes))
    c = with_trace[-1]
    try:
        doc = inputs.load_json(c.trace)
    except inputs.CaptureFileError as e:
        raise FigureUnavailable(str(e)) from None
    trace = animation.validate_trace(doc, c.episode, str(c.trace))
    return animation.episode_gif(trace, run.vis.animation_fps, run.vis.animation_max_frames,
                                 run.vis.dpi)
