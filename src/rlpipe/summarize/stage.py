"""The summarize stage: training CSV files in, Parquet + metrics.json + plot series out.

All inputs are read and checked, and every number is computed, before anything is written.
Outputs are then written to temporary files beside their targets and renamed over them only
when all of them are complete: a failing run (bad input, full disk, Ctrl-C) leaves the previous
outputs exactly as they were and no partial file behind.
"""
from __future__ import annotations

import json
import math
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pyarrow as pa

from rlpipe import paths
from rlpipe.errors import InputFileError
from rlpipe.io_utils import StagedWrites
from rlpipe.summarize import tables as T
from rlpipe.summarize.metrics import column, compute_metrics
from rlpipe.summarize.series import SERIES_FILES, build_series, to_csv

PRODUCER = "produced by the train stage (run `dvc repro train`)"
SUMMARY_DIR = paths.SUMMARY_DIR
PLOTS_DIR = paths.PLOT_SERIES_DIR
METRICS_PATH = paths.METRICS_PATH
NAME = "summarize"

Printer = Callable[[str], None]


def _stderr(msg: str) -> None:
    print(f"warning: {msg}", file=sys.stderr)


def _stdout(msg: str) -> None:
    print(msg)


@dataclass
class Summary:
    """What a run produced (for callers and tests)."""

    episodes: int
    updates: int
    steps: int
    metrics: dict[str, dict[str, Any]]
    outputs: list[Path] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


# --------------------------------------------------------------------------- inputs
def _display(path: Path) -> str:
    return path.as_posix()


def _required(path: Path) -> T.CsvLayout:
    if not path.is_file():
        raise InputFileError(f"{_display(path)}: file not found; it is {PRODUCER}")
    return T.inspect_csv(path, _display(path))


def _check_columns(layout: T.CsvLayout, kind: str) -> None:
    missing = [c for c in T.BASE_COLUMNS[kind] if c not in layout.columns]
    if missing:
        raise InputFileError(
            f"{layout.display} line 1: missing column(s) {', '.join(map(repr, missing))} "
            f"(see docs/FILES.md); it is {PRODUCER}")


def read_run_info(path: Path, warn: Printer) -> dict[str, Any]:
    """The optional ``run.json``; a damaged one is ignored with a warning."""
    if not path.is_file():
        return {}
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        warn(f"{_display(path)}: not readable JSON ({e}); run.wall_seconds, run.resumed_count "
             f"and the params digest are left out")
        return {}
    if not isinstance(doc, dict):
        warn(f"{_display(path)}: expected a JSON object; ignored")
        return {}
    info: dict[str, Any] = {}
    ws = doc.get("wall_seconds")
    if ws is not None:
        if isinstance(ws, (int, float)) and not isinstance(ws, bool) and math.isfinite(ws):
            info["wall_seconds"] = float(ws)
        else:
            warn(f"{_display(path)}: wall_seconds is not a finite number ({ws!r}); left out")
    rc = doc.get("resumed_count")
    if rc is not None:
        if isinstance(rc, int) and not isinstance(rc, bool):
            info["resumed_count"] = rc
        else:
            warn(f"{_display(path)}: resumed_count is not an integer ({rc!r}); left out")
    digest = doc.get("params_digest")
    if isinstance(digest, str) and digest:
        info["params_digest"] = digest
    if isinstance(doc.get("status"), str):
        info["status"] = doc["status"]
    return info


def _check_episode_order(table: pa.Table, display: str, warn: Printer) -> None:
    ep = column(table, "Episode")
    ep = ep[np.isfinite(ep)]
    if len(ep) > 1 and not bool(np.all(np.diff(ep) > 0)):
        warn(f"{display}: Episode numbers are not strictly increasing (rows repeated after a "
             f"resume?); the metrics take the rows in file order")


# --------------------------------------------------------------------------- the stage
def summarize(input_dir: str | os.PathLike, window: int, max_points: int, *,
              summary_dir: str | os.PathLike = SUMMARY_DIR,
              plots_dir: str | os.PathLike = PLOTS_DIR,
              metrics_path: str | os.PathLike = METRICS_PATH,
              warn: Printer = _stderr, note: Printer = _stdout,
              chunk_bytes: int = T.CHUNK_BYTES) -> Summary:
    """Summarise ``<input_dir>/{episodes,updates,steps,actions}.csv`` (+ optional ``run.json``).

    Raises :class:`InputFileError` (nothing written) when an input is missing or damaged beyond
    the one incomplete last line that a crash can leave.
    """
    input_dir, summary_dir, plots_dir = Path(input_dir), Path(summary_dir), Path(plots_dir)
    warnings: list[str] = []

    def _warn(msg: str) -> None:
        warnings.append(msg)
        warn(msg)

    # ---- inspect all inputs first (header + tail bytes only)
    ep_layout = _required(input_dir / paths.EPISODES_CSV)
    if not ep_layout.has_header:
        if ep_layout.dropped_line is not None:
            _warn(ep_layout.drop_warning() or "")
        what = "is empty" if ep_layout.size == 0 else "has no complete line"
        raise InputFileError(f"{ep_layout.display} {what}: no episode finished yet; it is "
                             f"{PRODUCER} and needs at least one finished episode")
    _check_columns(ep_layout, "episodes")
    up_layout = _required(input_dir / paths.UPDATES_CSV)
    if up_layout.has_header:
        _check_columns(up_layout, "updates")
    steps_path = input_dir / paths.STEPS_CSV
    st_layout = T.inspect_csv(steps_path, _display(steps_path)) if steps_path.is_file() else None
    if st_layout is not None and st_layout.has_header:
        _check_columns(st_layout, "steps")

    actions_path = input_dir / paths.ACTIONS_CSV
    ac_layout = T.inspect_csv(actions_path, _display(actions_path)) if actions_path.is_file() else None
    if ac_layout is not None and ac_layout.has_header:
        _check_columns(ac_layout, "actions")

    for layout in (ep_layout, up_layout, st_layout, ac_layout):
        if layout is not None and layout.dropped_line is not None:
            _warn(layout.drop_warning() or "")

    run_info = read_run_info(input_dir / paths.RUN_JSON, _warn)
    digest = run_info.get("params_digest", "unknown")
    if "status" in run_info:
        note(f"training run status (run.json): {run_info['status']}")

    # ---- read the small files and compute everything
    ep_stats = T.ReadStats()
    episodes = T.read_table(ep_layout, ep_stats, digest, chunk_bytes)
    if episodes.num_rows == 0:
        raise InputFileError(f"{ep_layout.display} has a header but no complete row: no episode "
                             f"finished yet; it is {PRODUCER} and needs at least one finished "
                             f"episode")
    if up_layout.has_header:
        up_stats = T.ReadStats()
        updates = T.read_table(up_layout, up_stats, digest, chunk_bytes)
    else:
        _warn(f"{up_layout.display} is empty (no header); no policy update recorded")
        up_stats = T.ReadStats()
        updates = T.schema_for(T.UPDATES_BASE, digest).empty_table()
    for msg in ep_stats.warnings(ep_layout.display) + up_stats.warnings(up_layout.display):
        _warn(msg)
    _check_episode_order(episodes, ep_layout.display, _warn)

    metrics = compute_metrics(episodes, updates, window, run_info)
    series = build_series(episodes, updates, window, max_points)

    # ---- write everything to temporary files, then rename together
    staging = StagedWrites()
    outputs: list[Path] = []
    try:
        steps_out = summary_dir / "steps.parquet"
        st_stats = T.ReadStats()
        if st_layout is None:
            note(f"{_display(steps_path)} not found (step logging off: "
                 f"experiment.step_log_interval: 0?); writing an empty {_display(steps_out)} "
                 f"with the base columns so that DVC finds its declared output")
            T.csv_to_parquet(T.CsvLayout(steps_path, _display(steps_path), 0),
                             staging.path(steps_out), digest, columns=T.STEPS_BASE)
        else:
            if not st_layout.has_header:
                _warn(f"{st_layout.display} is empty (no header); writing an empty "
                      f"{_display(steps_out)} with the base columns")
            T.csv_to_parquet(st_layout, staging.path(steps_out), digest, st_stats,
                             chunk_bytes, columns=T.STEPS_BASE)
            for msg in st_stats.warnings(st_layout.display):
                _warn(msg)
        outputs.append(steps_out)

        # per-dimension action histograms (Box / MultiDiscrete actions only); always written, so
        # that DVC finds its declared output: empty with the base columns for Discrete actions
        actions_out = summary_dir / paths.ACTIONS_PARQUET
        ac_stats = T.ReadStats()
        T.csv_to_parquet(ac_layout or T.CsvLayout(actions_path, _display(actions_path), 0),
                         staging.path(actions_out), digest, ac_stats, chunk_bytes,
                         columns=T.ACTIONS_BASE)
        if ac_layout is not None:
            for msg in ac_stats.warnings(ac_layout.display):
                _warn(msg)
        outputs.append(actions_out)

        for name, table in (("episodes.parquet", episodes), ("updates.parquet", updates)):
            T.write_parquet(table, staging.path(summary_dir / name))
            outputs.append(summary_dir / name)

        staging.write_text(Path(metrics_path),
                           json.dumps(metrics, indent=2, sort_keys=True, allow_nan=False) + "\n")
        outputs.append(Path(metrics_path))
        for name in SERIES_FILES:
            staging.write_text(plots_dir / name, to_csv(series[name]))
            outputs.append(plots_dir / name)
        staging.commit()
    except BaseException:
        staging.abort()
        raise

    return Summary(episodes=episodes.num_rows, updates=updates.num_rows, steps=st_stats.rows,
                   metrics=metrics, outputs=outputs, warnings=warnings)


def run(sections: dict[str, Any]) -> int:
    """The stage: summarise ``experiment.directory`` per the ``summarize`` section."""
    cfg, exp = sections["summarize"], sections["experiment"]

    def warn(msg: str) -> None:
        print(f"{NAME}: warning: {msg}", file=sys.stderr)

    def note(msg: str) -> None:
        print(f"{NAME}: {msg}")

    result = summarize(exp.directory, cfg.window, cfg.max_points, warn=warn, note=note)
    print(f"{NAME}: {result.episodes} episodes, {result.updates} updates, {result.steps} steps "
          f"-> {SUMMARY_DIR.as_posix()}/*.parquet, {METRICS_PATH.as_posix()}, "
          f"{PLOTS_DIR.as_posix()}/*.csv")
    return 0
