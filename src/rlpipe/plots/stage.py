"""The visualize stage: read the summary tables and captures, draw the selected figures, write them.

The figures, their files and inputs come from the registry (:mod:`rlpipe.plots.registry`). Every
output of every registered figure is written on every run, atomically (rendered to bytes first,
then :func:`rlpipe.io_utils.atomic_write_bytes`), so that the outputs dvc.yaml declares always
exist and a failure leaves the previous files intact:

- a figure left out of ``visualize.figures`` → a small placeholder saying "figure disabled";
- a figure whose optional inputs are missing or malformed (no captures, mismatched array shapes,
  no rows) → a placeholder naming what is missing, and a printed note; the stage still exits 0;
- a missing or unreadable summary Parquet file → :class:`InputFileError` (exit 2), nothing written.

Each ``.png`` output is written in every format of ``visualize.formats`` side by side
(``reward.png``, ``reward.svg``; GIFs stay GIFs). Files named per capture (one GIF per captured
episode, ``FigureSpec.per_capture``) go to their own folder, which keeps only this run's files.
"""
from __future__ import annotations

import importlib
import json
import multiprocessing
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

from rlpipe.config import ExperimentConfig, TrainConfig, VisualizeConfig
from rlpipe.io_utils import atomic_write_bytes, atomic_write_text
from rlpipe.paths import CAPTURES_DIR, FIGURES_DIR
from rlpipe.plots import inputs, projection
from rlpipe.plots.registry import FIGURE_FORMATS, FIGURES, FigureSpec, check_settings
from rlpipe.plots.render import (FigureUnavailable, figure_bytes, placeholder_figure,
                                 placeholder_gif)
from rlpipe.plots.style import apply_style

OUTPUT_DIR = FIGURES_DIR
STEP_COLUMNS_USED = ("Episode", "Step", "Action", "Reward", "Value", "Oracle Action")
# Errors a malformed capture file can still raise past validation; they become notes, not tracebacks.
CAPTURE_ERRORS = (ValueError, TypeError, IndexError, KeyError)


def _resolve(ref: str) -> Callable:
    module, _, name = ref.partition(":")
    return getattr(importlib.import_module(module), name)


class Context:
    """What builders see: the params, the tables (read once), the captures, shared state."""

    def __init__(self, vis: VisualizeConfig, exp: ExperimentConfig, root: Path, log: Callable[[str], None],
                 gamma: float | None = None):
        self.vis, self.exp, self.root, self.log = vis, exp, Path(root), log
        self.gamma = TrainConfig().gamma if gamma is None else gamma  # train.gamma (value figure)
        self.summary_dir = self.root / inputs.SUMMARY_DIR
        self.out_dir = self.root / OUTPUT_DIR
        self.captures_dir = self.root / exp.directory / CAPTURES_DIR
        self._tables: dict[str, inputs.Table] = {}
        self.captures: list = []
        self.capture_notes: list[str] = []
        self.state: dict[str, Any] = {}
        self._resources: list = []
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

    def resource(self, obj):
        """Register something with a ``close()`` to call when the stage ends (even on failure)."""
        self._resources.append(obj)
        return obj

    def close(self) -> None:
        for r in self._resources:
            r.close()
        self._resources = []

    # ---------------------------------------------------------------- outputs
    def _formats(self, name: str) -> list[tuple[str, str]]:
        """(file name, format) of one declared output: a ``.png`` output in each of
        ``visualize.formats`` (side by side), anything else (a GIF) as it is."""
        if not name.endswith(".png"):
            return [(name, "")]
        stem = name[:-len(".png")]  # png first whatever the order asked: its bytes never depend
        return [(f"{stem}.{fmt}", fmt) for fmt in FIGURE_FORMATS if fmt in self.vis.formats]

    def write(self, name: str, data: bytes, placeholder: bool = False) -> None:
        atomic_write_bytes(self.out_dir / name, data)
        self.written += 1
        self.placeholders += placeholder

    def placeholder(self, name: str, title: str, message: str) -> None:
        if name.endswith(".gif"):
            self.write(name, placeholder_gif(title, message, self.vis.dpi), placeholder=True)
            return
        fig = placeholder_figure(title, message)
        for file, fmt in self._formats(name):
            self.write(file, figure_bytes(fig, fmt, self.vis.dpi), placeholder=True)

    def draw(self, name: str, title: str, build: Callable[[], object], capture: bool = False) -> None:
        """Build a figure (or GIF bytes) and write it; a placeholder with a note when unavailable."""
        t0 = time.perf_counter()
        try:
            result = build()
            files = [(name, result)] if isinstance(result, bytes) else [
                (file, figure_bytes(result, fmt, self.vis.dpi)) for file, fmt in self._formats(name)]
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
        for file, data in files:
            self.write(file, data)
        self.log(f"visualize: wrote {', '.join(str(self.out_dir / f) for f, _ in files)} "
                 f"({time.perf_counter() - t0:.2f} s)")

    def remove_other_formats(self) -> None:
        """Delete figure files in a format that ``visualize.formats`` no longer asks for (left by
        an earlier run outside DVC, which empties plots/ itself)."""
        for spec in FIGURES:
            for name in spec.outputs:
                if not name.endswith(".png"):
                    continue
                for fmt in FIGURE_FORMATS:
                    if fmt not in self.vis.formats:
                        (self.out_dir / f"{name[:-len('.png')]}.{fmt}").unlink(missing_ok=True)

    def write_per_capture(self, spec: FigureSpec, selected: bool) -> None:
        """The figure's files named per capture (``spec.per_capture``), each with its metadata
        JSON beside it; the folder keeps only what this run wrote."""
        folder = self.out_dir / spec.per_capture_dir
        kept: set[str] = set()
        for name, data, meta in _resolve(spec.per_capture)(self) if selected else ():
            stem = name.rsplit(".", 1)[0]
            atomic_write_bytes(folder / name, data)
            atomic_write_text(folder / f"{stem}.json", json.dumps(meta, indent=1) + "\n")
            kept.update((name, f"{stem}.json"))
            self.written += 2
        if folder.is_dir():
            for p in folder.iterdir():
                if p.is_file() and p.name not in kept:
                    p.unlink()
        if kept:
            self.log(f"visualize: wrote {len(kept) // 2} files (+ .json) in {folder}")


def run(sections: dict[str, Any]) -> int:
    """The stage: draw the figures per the ``visualize`` section (Agg backend, no torch)."""
    import matplotlib

    matplotlib.use("Agg")
    return run_visualize(sections["visualize"], sections["experiment"],
                         gamma=sections.get("train.gamma"))


def _disabled(ctx: Context, spec: FigureSpec) -> None:
    for out, title in zip(spec.outputs, spec.titles):
        ctx.placeholder(out, title, f"figure disabled (visualize.figures does not list '{spec.name}')")


def run_visualize(vis: VisualizeConfig, exp: ExperimentConfig, root: Path | str = ".",
                  log: Callable[[str], None] = print, gamma: float | None = None) -> int:
    """Draw every figure of ``vis.figures`` into ``<root>/plots/``; placeholders for the rest.
    ``gamma``: the run's ``train.gamma`` (the value figure's discount; None = its default)."""
    t_start = time.perf_counter()
    names = set(check_settings(vis.figures, vis.formats))
    ctx = Context(vis, exp, Path(root), log, gamma)
    inputs.check_summary_files(ctx.summary_dir)
    selected = [f for f in FIGURES if f.name in names]
    if any(f.captures for f in selected):
        ctx.captures, ctx.capture_notes = inputs.load_capture_index(ctx.captures_dir)
        for n in ctx.capture_notes:
            ctx.note(n)
    try:
        # Read every table a selected figure needs before writing anything: a bad input fails
        # here, and the previous plots stay as they were.
        for spec in selected:
            for kind in spec.tables:
                ctx.table(kind)
        for spec in selected:
            if spec.prepare:
                _resolve(spec.prepare)(ctx)
        apply_style(vis.style)
        for spec in FIGURES:
            if spec not in selected:
                _disabled(ctx, spec)
                continue
            builds = _resolve(spec.builder)(ctx)
            for out, title, build in zip(spec.outputs, spec.titles, builds):
                ctx.draw(out, title, build, capture=bool(spec.captures))
        for spec in FIGURES:
            if spec.per_capture:
                ctx.write_per_capture(spec, spec in selected)
        ctx.remove_other_formats()
    finally:
        ctx.close()
    log(f"visualize: {ctx.written} files in {ctx.out_dir} ({ctx.placeholders} placeholders) "
        f"in {time.perf_counter() - t_start:.1f} s")
    return 0


class TsneJob:
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
