"""Read the visualize stage's inputs: the summary Parquet files and the optional captures.

Parquet columns are those of the CSV files in ``docs/FILES.md``. Every column is returned as a
float64 NumPy array with NaN for missing values (Arrow nulls), so figures never see ``None``.
Missing or unreadable summary files raise :class:`InputFileError` naming the file and the stage
that writes it. Capture problems never raise: they come back as notes, and the figures that need
the capture become placeholders.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from rlpipe import paths
from rlpipe.action_log import ACTIONS_COLUMNS
from rlpipe.statistics import EPISODE_COLUMNS, STEP_COLUMNS, UPDATE_COLUMNS
from rlpipe.errors import InputFileError

SUMMARY_DIR = paths.SUMMARY_DIR

SUMMARY_FILES = {
    "episodes": ("episodes.parquet", EPISODE_COLUMNS),
    "updates": ("updates.parquet", UPDATE_COLUMNS),
    "steps": ("steps.parquet", STEP_COLUMNS),
    # Box / MultiDiscrete action histograms; optional (summaries made before it existed lack it)
    "actions": (paths.ACTIONS_PARQUET, ACTIONS_COLUMNS),
}
OPTIONAL_SUMMARIES = ("actions",)
PRODUCER_HINT = "it is written by the summarize stage (run `dvc repro summarize`)"


@dataclass
class Table:
    """Columns of one Parquet file as float64 arrays (NaN = missing), in file order."""

    path: Path
    columns: list[str]
    data: dict[str, np.ndarray]
    num_rows: int
    notes: list[str] = field(default_factory=list)

    def __getitem__(self, name: str) -> np.ndarray:
        return self.data[name]

    def __contains__(self, name: str) -> bool:
        return name in self.data

    def __len__(self) -> int:
        return self.num_rows

    def columns_after(self, name: str) -> list[str]:
        """The (numeric) columns that follow ``name`` in file order."""
        if name not in self.columns:
            return []
        return [c for c in self.columns[self.columns.index(name) + 1:] if c in self.data]


def summary_path(kind: str, summary_dir: Path = SUMMARY_DIR) -> Path:
    return Path(summary_dir) / SUMMARY_FILES[kind][0]


def check_summary_files(summary_dir: Path = SUMMARY_DIR) -> None:
    """Raise :class:`InputFileError` for the first missing summary file."""
    for kind in SUMMARY_FILES:
        if kind in OPTIONAL_SUMMARIES:
            continue
        p = summary_path(kind, summary_dir)
        if not p.is_file():
            raise InputFileError(f"{p}: file not found; {PRODUCER_HINT}")


def read_summary(kind: str, summary_dir: Path = SUMMARY_DIR,
                 columns: tuple[str, ...] | None = None) -> Table:
    """Read ``data/summary/<kind>.parquet``; ``columns`` = the columns to load (default all).

    The file's fixed leading columns (docs/FILES.md) must all be present. Columns that are not
    numeric or boolean (not in the contract) are left out with a note.
    """
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    path = summary_path(kind, summary_dir)
    required = SUMMARY_FILES[kind][1]
    if not path.is_file() and kind in OPTIONAL_SUMMARIES:  # an older summary: no rows
        return Table(path=path, columns=list(required),
                     data={c: np.zeros(0) for c in required}, num_rows=0)
    if not path.is_file():
        raise InputFileError(f"{path}: file not found; {PRODUCER_HINT}")
    try:
        schema = pq.read_schema(path)
    except Exception as e:  # pyarrow raises several types for a bad file
        raise InputFileError(f"{path}: not a readable Parquet file ({e}); {PRODUCER_HINT}") from None
    names = list(schema.names)
    missing = [c for c in required if c not in names]
    if missing:
        raise InputFileError(
            f"{path}: missing column(s) {', '.join(repr(c) for c in missing)} "
            f"(expected the columns of docs/FILES.md); {PRODUCER_HINT}"
        )
    wanted = names if columns is None else [c for c in names if c in columns]
    try:
        table = pq.read_table(path, columns=wanted)
    except Exception as e:
        raise InputFileError(f"{path}: cannot read ({e}); {PRODUCER_HINT}") from None
    data: dict[str, np.ndarray] = {}
    notes: list[str] = []
    for name in wanted:
        col = table.column(name)
        t = col.type
        if not (pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_boolean(t)
                or pa.types.is_null(t) or pa.types.is_decimal(t)):
            notes.append(f"{path}: column {name!r} has type {t}, not numeric; not plotted")
            continue
        if pa.types.is_boolean(t):
            col = pc.cast(col, pa.int8())
        arr = pc.fill_null(pc.cast(col, pa.float64()), math.nan)
        data[name] = np.asarray(arr.to_numpy(), dtype=np.float64)
    return Table(path=path, columns=wanted, data=data, num_rows=table.num_rows, notes=notes)


# --------------------------------------------------------------------------- captures
@dataclass
class Capture:
    """One entry of ``captures/index.json`` with its files resolved (None = not recorded)."""

    episode: int
    embeddings: Path | None = None
    attention: Path | None = None
    trace: Path | None = None


def load_capture_index(captures_dir: Path) -> tuple[list[Capture], list[str]]:
    """Read ``<captures_dir>/index.json``: captures sorted by episode, and notes on problems."""
    captures_dir = Path(captures_dir)
    index = captures_dir / paths.CAPTURE_INDEX
    if not index.is_file():
        return [], [f"no captures: {index} not found (set capture.every, capture.episodes or "
                    f"capture.last and run `dvc repro train`)"]
    try:
        doc = json.loads(index.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        return [], [f"{index}: not valid JSON ({e}); captures ignored"]
    entries = doc.get("captures") if isinstance(doc, dict) else None
    if not isinstance(entries, list):
        return [], [f"{index}: expected {{\"captures\": [...]}}; captures ignored"]
    out: list[Capture] = []
    notes: list[str] = []
    for i, e in enumerate(entries):
        if not isinstance(e, dict) or isinstance(e.get("episode"), bool) \
                or not isinstance(e.get("episode"), int):
            notes.append(f"{index}: entry {i} has no integer 'episode'; skipped")
            continue
        c = Capture(episode=e["episode"])
        for key in ("embeddings", "attention", "trace"):
            name = e.get(key)
            if name is None:
                continue
            if not isinstance(name, str) or Path(name).is_absolute() or ".." in Path(name).parts:
                notes.append(f"{index}: entry {i} ({key}) is not a file name inside "
                             f"{captures_dir}; ignored")
                continue
            setattr(c, key, captures_dir / name)
        out.append(c)
    out.sort(key=lambda c: c.episode)
    if not out and not notes:
        notes.append(f"no captures: {index} lists none")
    return out, notes


class CaptureFileError(Exception):
    """A capture file that is missing or unreadable (the message names it)."""


def load_npz(path: Path) -> dict[str, np.ndarray]:
    """All arrays of an ``.npz`` capture, read without pickle (object arrays are refused)."""
    if not Path(path).is_file():
        raise CaptureFileError(f"{path}: listed in index.json but not found")
    try:
        with np.load(path, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    except ValueError as e:
        raise CaptureFileError(f"{path}: cannot read without pickle ({e})") from None
    except Exception as e:  # zipfile.BadZipFile, OSError, EOFError ...
        raise CaptureFileError(f"{path}: not a readable .npz file ({e})") from None


def load_json(path: Path) -> Any:
    if not Path(path).is_file():
        raise CaptureFileError(f"{path}: listed in index.json but not found")
    try:
        return json.loads(Path(path).read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise CaptureFileError(f"{path}: not valid JSON ({e})") from None
