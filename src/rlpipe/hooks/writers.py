"""Writers that receive recorded values: CSV files, and the recorder that feeds the scalar sinks.

Following SB3's logger, hooks *record* key/value pairs into a :class:`Recorder` and *dump* them
at a step; the recorder hands the same dict to every writer of that stream, so the CSV and
TensorBoard (and W&B: :mod:`rlpipe.hooks.scalar_sinks`) always hold the same numbers.
"""
from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Iterator, Mapping, Sequence

from rlpipe.io_utils import atomic_write_text, with_filename

if TYPE_CHECKING:  # the streams' type only (scalar_sinks imports this module)
    from rlpipe.hooks.scalar_sinks import ScalarStream


def format_cell(value: Any) -> str:
    """CSV cell text: '' for missing, 1/0 for bools, shortest round-trip repr for floats."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value)
    if hasattr(value, "item"):           # numpy / torch scalar
        return format_cell(value.item())
    raise TypeError(f"refusing to write a {type(value).__name__} into a CSV cell")


class CSVLog:
    """An append-only CSV file whose rows are keyed by an episode number column.

    On open, an existing file is trimmed to ``keep_through`` (rows with a key <= it stay; a torn
    last line from a crash is dropped); ``keep_through=0`` starts the file afresh. A column that
    appears later widens the header: the file is rewritten once, older rows get empty cells.
    Rows are flushed at every :meth:`flush` (episode boundary).
    """

    def __init__(self, path: Path, columns: Sequence[str], key_column: str, keep_through: int):
        self.path = Path(path)
        self.key_column = key_column
        self.columns = list(columns)
        self.dropped_rows = 0
        self.missing_rows = False
        if keep_through > 0 and self._truncate_tail(keep_through):
            self._f = open(self.path, "a", newline="")
            return
        existing_header, rows = self._read_existing(keep_through) if keep_through > 0 else (None, [])
        if existing_header:
            for c in existing_header:
                if c not in self.columns:
                    self.columns.append(c)
            order = [existing_header.index(c) if c in existing_header else None for c in self.columns]
            rows = [[r[i] if i is not None else "" for i in order] for r in rows]
        self._rewrite(rows)
        self._f = open(self.path, "a", newline="")

    TAIL_WINDOW = 1 << 16  # bytes read from the end first; doubled until the cut is found

    def _truncate_tail(self, keep_through: int) -> bool:
        """Resume fast path: cut the file right after its last row keyed <= ``keep_through``.

        Rows are appended in key order, so only the tail is read: the cost grows with the rows
        dropped, not with the file (a million-step steps.csv resumes in milliseconds). A torn
        last line goes with the cut. Returns False (the caller rewrites the file instead) when
        the header does not start with this log's columns.
        """
        if not self.path.is_file():
            return False
        with open(self.path, "rb+") as f:
            header_line = f.readline()
            if not header_line.endswith(b"\n"):
                return False
            header = header_line[:-1].decode("utf-8", "replace").split(",")
            if header[:len(self.columns)] != self.columns or self.key_column not in header:
                return False
            key, width, data_start = header.index(self.key_column), len(header), len(header_line)
            size = f.seek(0, os.SEEK_END)
            n = self.TAIL_WINDOW
            while True:
                start = max(data_start, size - n)
                f.seek(start)
                window = f.read(size - start)
                if start > data_start:  # skip the partial line the window starts in
                    nl = window.find(b"\n")
                    window, start = (window[nl + 1:], start + nl + 1) if nl >= 0 else (b"", size)
                cut, last_key, dropped = _cut_after(window, start, key, width, keep_through)
                if cut is not None or size - n <= data_start:
                    break
                n *= 2
            if cut is None:
                cut = data_start
            f.truncate(cut)
            f.flush()
            os.fsync(f.fileno())
        self.columns = header
        self.dropped_rows = dropped
        self.missing_rows = last_key < keep_through
        return True

    def _read_existing(self, keep_through: int) -> tuple[list[str] | None, list[list[str]]]:
        if not self.path.exists():
            self.missing_rows = True
            return None, []
        text = self.path.read_text()
        lines = text.split("\n")
        if not lines or not lines[0]:
            self.missing_rows = True
            return None, []
        header = lines[0].split(",")
        if self.key_column not in header:
            return None, []
        key = header.index(self.key_column)
        complete = lines[1:-1] if not text.endswith("\n") else lines[1:]
        self.dropped_rows += 0 if text.endswith("\n") or len(lines) < 2 else 1
        kept, last_key = [], 0
        for line in complete:
            if not line:
                continue
            cells = line.split(",")
            try:
                k = int(cells[key])
            except (ValueError, IndexError):
                self.dropped_rows += 1
                continue
            if len(cells) != len(header):
                self.dropped_rows += 1
                continue
            if k <= keep_through:
                kept.append(cells)
                last_key = max(last_key, k)
            else:
                self.dropped_rows += 1
        self.missing_rows = last_key < keep_through
        return header, kept

    def _rewrite(self, rows: Iterable[Sequence[str]]) -> None:
        body = "".join(",".join(r) + "\n" for r in rows)
        atomic_write_text(self.path, ",".join(self.columns) + "\n" + body)

    def write(self, values: Mapping[str, Any]) -> None:
        new = [k for k in values if k not in self.columns]
        if new:
            self._widen(new)
        with self._naming():
            self._f.write(",".join(format_cell(values.get(c)) for c in self.columns) + "\n")

    def write_rows(self, rows: Iterable[Sequence[Any]]) -> None:
        """Fast path: rows already in column order."""
        text = "".join(",".join(format_cell(v) for v in r) + "\n" for r in rows)
        with self._naming():
            self._f.write(text)

    @contextlib.contextmanager
    def _naming(self) -> Iterator[None]:
        """An append that fails (a full disk) raises an OSError naming this file."""
        try:
            yield
        except OSError as e:
            named = with_filename(e, self.path)
            if named is e:
                raise
            raise named from e

    def _widen(self, new_columns: list[str]) -> None:
        self._f.close()
        lines = self.path.read_text().splitlines()[1:]
        pad = "," * len(new_columns)
        self.columns += new_columns
        atomic_write_text(self.path, ",".join(self.columns) + "\n" + "".join(l + pad + "\n" for l in lines))
        self._f = open(self.path, "a", newline="")

    def flush(self, fsync: bool = False) -> None:
        with self._naming():
            self._f.flush()
            if fsync:
                os.fsync(self._f.fileno())

    def close(self) -> None:
        if not self._f.closed:
            with self._naming():
                self._f.flush()
                self._f.close()


def _cut_after(window: bytes, start: int, key: int, width: int, keep_through: int):
    """Scan ``window`` (whole lines from file offset ``start``) from its end for the last valid
    row keyed <= ``keep_through``; return (offset just after it or None, its key, rows after it)."""
    pieces = window.split(b"\n")
    ends, pos = [], start
    for piece in pieces[:-1]:
        pos += len(piece) + 1
        ends.append(pos)
    dropped = int(pieces[-1] != b"")  # text after the last newline: a torn row
    for i in range(len(pieces) - 2, -1, -1):
        cells = pieces[i].split(b",")
        try:
            k = int(cells[key]) if len(cells) == width else None
        except ValueError:
            k = None
        if k is not None and k <= keep_through:
            return ends[i], k, dropped
        dropped += 1
    return None, 0, dropped


class Recorder:
    """Record values, then dump them to every writer of the stream at a step: the CSV file and
    the scalar streams (TensorBoard, the optional W&B mirror)."""

    def __init__(self, csv: CSVLog, streams: Sequence["ScalarStream"] = ()):
        self.csv = csv
        self.streams = list(streams)
        self.values: dict[str, Any] = {}

    def record(self, key: str, value: Any) -> None:
        self.values[key] = value

    def dump(self, step: int) -> None:
        self.csv.write(self.values)
        for stream in self.streams:
            stream.write(self.values, step)
        self.values = {}
