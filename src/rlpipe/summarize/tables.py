"""Training CSV files -> typed Arrow tables and Parquet files, read column-wise and in chunks.

Typing (docs/FILES.md): int64 for the integer columns (:data:`INT_COLUMNS`), bool for
``Feasible``, float64 for every other column, including columns this module has never heard of
(performance metrics, custom ``rlpipe.track`` tags, environment step summaries). Every column is
nullable; an empty cell is a null; ``nan``/``inf`` text is a real NaN/inf float.

The column types are built from the header and handed to ``pyarrow.csv`` explicitly, so nothing
is inferred. Files are read in newline-aligned chunks of :data:`CHUNK_BYTES` with the
multi-threaded ``pyarrow.csv.read_csv``, which keeps memory bounded for million-row
``steps.csv`` files while staying as fast as one whole-file ``read_csv``.

Rules for damaged files (the train stage writes one ``\\n``-terminated line per row and rewrites
the whole file, atomically, when a column is added, so every row has the header's field count):

* The **last** line is dropped, with a warning naming the file and line, when it has no line
  terminator (a crash cut the write: even a complete-looking number may be partial) or when it
  has fewer fields than the header. Only the file's tail bytes are read for this check.
* Every **other** line must have exactly the header's number of fields, and every cell must
  parse as its column's type (or be empty). Otherwise :class:`InputFileError` names the file,
  the line and the column. (pyarrow's own message carries no line number, so the failing chunk
  is re-scanned with the ``csv`` module to find it; that only happens on the error path.)
* A value may not contain a newline (quoted multi-line cells are not supported).
"""
from __future__ import annotations

import csv
import io
import os
import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Sequence

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from rlpipe.action_log import ACTIONS_COLUMNS as ACTIONS_BASE
from rlpipe.errors import InputFileError
from rlpipe.statistics import EPISODE_COLUMNS as EPISODES_BASE
from rlpipe.statistics import STEP_COLUMNS as STEPS_BASE
from rlpipe.statistics import UPDATE_COLUMNS as UPDATES_BASE
from rlpipe.statistics import column_types

# --------------------------------------------------------------------------- column contract
BASE_COLUMNS = {"episodes": EPISODES_BASE, "updates": UPDATES_BASE, "steps": STEPS_BASE,
                "actions": ACTIONS_BASE}

# the types of rlpipe.statistics, and the integer columns of actions.csv
INT_COLUMNS = frozenset({c for c, t in column_types().items() if t is int}
                        | {"Dimension", "Bin", "Count"})
BOOL_COLUMNS = frozenset(c for c, t in column_types().items() if t is bool)
TRUE_VALUES = ["1", "true", "True", "TRUE"]
FALSE_VALUES = ["0", "false", "False", "FALSE"]

PARAMS_DIGEST_KEY = "rlpipe.params_digest"
PARQUET_COMPRESSION = "zstd"
CHUNK_BYTES = 16 << 20  # CSV bytes per read_csv call = one Parquet row group (~120k steps rows)
_TAIL_BYTES = 64 << 10


def arrow_type(name: str) -> pa.DataType:
    """The Arrow type of a CSV column, by name."""
    if name in INT_COLUMNS:
        return pa.int64()
    if name in BOOL_COLUMNS:
        return pa.bool_()
    return pa.float64()


def schema_for(columns: Sequence[str], params_digest: str | None = None) -> pa.Schema:
    """Nullable fields of the contract types, with ``rlpipe.params_digest`` metadata if given."""
    schema = pa.schema([pa.field(c, arrow_type(c), nullable=True) for c in columns])
    if params_digest is not None:
        schema = schema.with_metadata({PARAMS_DIGEST_KEY: params_digest})
    return schema


# --------------------------------------------------------------------------- file layout
@dataclass
class CsvLayout:
    """What :func:`inspect_csv` learnt from a CSV file's first line and its tail bytes."""

    path: Path
    display: str                    # the name used in messages
    size: int
    columns: tuple[str, ...] = ()   # () = no complete header line
    data_start: int = 0             # byte offset of the first data line
    data_end: int = 0               # kept data ends here (a dropped last line starts here)
    dropped_line: int | None = None  # 1-based line number of a dropped incomplete last line
    dropped_reason: str = ""
    dropped_text: str = ""

    @property
    def has_header(self) -> bool:
        return bool(self.columns)

    @property
    def has_data(self) -> bool:
        return self.data_end > self.data_start

    def drop_warning(self) -> str | None:
        if self.dropped_line is None:
            return None
        text = self.dropped_text if len(self.dropped_text) <= 80 else self.dropped_text[:77] + "..."
        return (f"{self.display} line {self.dropped_line}: incomplete last line dropped "
                f"({self.dropped_reason}; the train stage was probably interrupted while "
                f"writing it): {text!r}")


def _split_row(line: str) -> list[str]:
    return next(csv.reader([line]), [])


def _count_newlines(f, end: int, block: int = 8 << 20) -> int:
    f.seek(0)
    n, pos = 0, 0
    while pos < end:
        data = f.read(min(block, end - pos))
        if not data:
            break
        n += data.count(b"\n")
        pos += len(data)
    return n


def _last_line_start(f, lo: int, hi: int) -> int:
    """Offset just after the last ``\\n`` in ``[lo, hi)`` (``lo`` if there is none)."""
    pos = hi
    step = _TAIL_BYTES
    while pos > lo:
        start = max(lo, pos - step)
        f.seek(start)
        data = f.read(pos - start)
        i = data.rfind(b"\n")
        if i >= 0:
            return start + i + 1
        pos = start
        step *= 2
    return lo


def inspect_csv(path: str | os.PathLike, display: str | None = None) -> CsvLayout:
    """Read the header and the file's tail; decide which bytes hold complete data rows.

    Raises :class:`InputFileError` for an unreadable file or a bad header (duplicate/empty
    column names). Never reads more than the first line and the last line(s).
    """
    path = Path(path)
    display = display or str(path)
    try:
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            layout = CsvLayout(path=path, display=display, size=size)
            if size == 0:
                return layout
            header = f.readline()
            if not header.endswith(b"\n"):
                # not even the header line was completed
                layout.dropped_line = 1 if header.strip() else None
                layout.dropped_reason = "no line terminator"
                layout.dropped_text = header.decode("utf-8", "replace")
                return layout
            try:
                header_text = header.decode("utf-8-sig").rstrip("\r\n")
            except UnicodeDecodeError:
                raise InputFileError(f"{display} line 1: the header is not UTF-8 text") from None
            names = tuple(_split_row(header_text))
            if not names or any(not n.strip() for n in names):
                raise InputFileError(f"{display} line 1: empty column name in header {header_text!r}")
            dup = sorted({n for n in names if names.count(n) > 1})
            if dup:
                raise InputFileError(f"{display} line 1: duplicate column name(s) "
                                     f"{', '.join(map(repr, dup))} in the header")
            layout.columns = names
            layout.data_start = layout.data_end = len(header)
            if size == len(header):
                return layout
            _inspect_tail(f, layout)
    except OSError as e:
        raise InputFileError(f"{display}: cannot read ({e.strerror or e})") from None
    return layout


def _inspect_tail(f, layout: CsvLayout) -> None:
    lo, size = layout.data_start, layout.size
    f.seek(size - 1)
    terminated = f.read(1) == b"\n"
    end = size
    while True:
        if terminated:
            start = _last_line_start(f, lo, end - 1)
            f.seek(start)
            line = f.read(end - start)
            if not line.strip():            # trailing blank line(s): look at the one before
                if start <= lo:
                    layout.data_end = end
                    return
                end = start
                continue
        else:
            start = _last_line_start(f, lo, end)
            f.seek(start)
            line = f.read(end - start)
        break
    text = line.decode("utf-8", "replace").rstrip("\r\n")
    reason = ""
    if not terminated:
        reason = "no line terminator" if text.strip() else ""
    else:
        n = len(_split_row(text))
        if n < len(layout.columns):
            reason = f"{n} of {len(layout.columns)} fields"
    if not terminated or reason:
        layout.data_end = start
        if reason:
            layout.dropped_line = _count_newlines(f, start) + 1
            layout.dropped_reason = reason
            layout.dropped_text = text
    else:
        layout.data_end = size


# --------------------------------------------------------------------------- chunked reading
@dataclass
class ReadStats:
    """Counts gathered while reading: rows, and NaN/inf cells per float column."""

    rows: int = 0
    nonfinite: dict[str, int] = field(default_factory=dict)

    def warnings(self, display: str) -> list[str]:
        return [f"{display}: column {name!r} has {n} NaN/inf value{'s' if n != 1 else ''} "
                f"(left out of means and moving averages)"
                for name, n in self.nonfinite.items() if n]


def _options(columns: Sequence[str]) -> tuple[pacsv.ReadOptions, pacsv.ParseOptions, pacsv.ConvertOptions]:
    read = pacsv.ReadOptions(column_names=list(columns))
    parse = pacsv.ParseOptions(newlines_in_values=False)
    convert = pacsv.ConvertOptions(
        column_types={c: arrow_type(c) for c in columns},
        null_values=[""], strings_can_be_null=False, quoted_strings_can_be_null=True,
        true_values=TRUE_VALUES, false_values=FALSE_VALUES,
    )
    return read, parse, convert


def _count_nonfinite(table: pa.Table, names: Sequence[str], stats: ReadStats) -> None:
    for name in names:
        col = table.column(name)
        valid = len(col) - col.null_count
        if valid == 0:
            continue
        finite = pc.sum(pc.is_finite(col)).as_py() or 0
        if valid - finite:
            stats.nonfinite[name] = stats.nonfinite.get(name, 0) + valid - finite


def _chunks(layout: CsvLayout, chunk_bytes: int) -> Iterator[tuple[int, memoryview]]:
    """Yield ``(file offset, bytes)`` for newline-aligned chunks of ``[data_start, data_end)``.

    One reusable buffer (no allocation per chunk); a yielded view is valid until the next one.
    """
    try:
        f = open(layout.path, "rb")
    except OSError as e:
        raise InputFileError(f"{layout.display}: cannot read ({e.strerror or e})") from None
    with f:
        pos, end = layout.data_start, layout.data_end
        buf = bytearray(max(1, min(chunk_bytes, end - pos)))
        filled = 0
        f.seek(pos)
        while pos < end:
            want = min(len(buf), end - pos) - filled
            if want > 0:
                n = f.readinto(memoryview(buf)[filled:filled + want])
                if not n:
                    raise InputFileError(f"{layout.display}: the file shrank while it was read "
                                         f"(is the train stage still writing it?)")
                filled += n
            if pos + filled >= end:
                cut = filled
            else:
                cut = buf.rfind(b"\n", 0, filled) + 1
                if cut == 0:                  # a line longer than the buffer: grow it
                    bigger = bytearray(2 * len(buf))
                    bigger[:filled] = buf[:filled]
                    buf = bigger
                    continue
            view = memoryview(buf)[:cut]
            yield pos, view
            rest = filled - cut
            try:
                view.release()
            except BufferError:  # something still refers to the bytes: never overwrite them
                old, buf = buf, bytearray(len(buf))
                buf[:rest] = old[cut:filled]
            else:
                if rest:
                    buf[:rest] = buf[cut:filled]
            filled = rest
            pos += cut


def _line_of(layout: CsvLayout, offset: int) -> int:
    """1-based line number of the line starting at byte ``offset`` (error path only)."""
    with open(layout.path, "rb") as f:
        return _count_newlines(f, offset) + 1


def iter_tables(layout: CsvLayout, stats: ReadStats | None = None,
                chunk_bytes: int = CHUNK_BYTES) -> Iterator[pa.Table]:
    """Yield typed tables for consecutive newline-aligned chunks of the kept data rows."""
    if not layout.has_header:
        return
    stats = stats if stats is not None else ReadStats()
    read, parse, convert = _options(layout.columns)
    floats = [c for c in layout.columns if pa.types.is_floating(arrow_type(c))]
    for pos, view in _chunks(layout, chunk_bytes):
        try:
            table = pacsv.read_csv(pa.BufferReader(pa.py_buffer(view)), read_options=read,
                                   parse_options=parse, convert_options=convert)
        except pa.ArrowInvalid as e:
            raise _diagnose(layout, bytes(view), _line_of(layout, pos), e) from None
        stats.rows += table.num_rows
        _count_nonfinite(table, floats, stats)
        yield table


def read_table(layout: CsvLayout, stats: ReadStats | None = None,
               params_digest: str | None = None, chunk_bytes: int = CHUNK_BYTES) -> pa.Table:
    """The whole file as one typed table (for the small episodes/updates files)."""
    schema = schema_for(layout.columns, params_digest)
    tables = list(iter_tables(layout, stats, chunk_bytes))
    if not tables:
        return schema.empty_table()
    return pa.concat_tables(tables).replace_schema_metadata(schema.metadata)


# --------------------------------------------------------------------------- error diagnosis
_BAD_VALUE = re.compile(r"CSV column #(\d+): CSV conversion error to (\w+): invalid value '(.*)'\s*$",
                        re.S)
_BAD_COUNT = re.compile(r"Expected (\d+) columns, got (\d+)")
_TYPE_WORDS = {"int64": "an integer", "double": "a number", "bool": "0 or 1"}


def _diagnose(layout: CsvLayout, data: bytes, first_line: int, exc: Exception) -> InputFileError:
    """Turn pyarrow's message (no line number) into one naming the file, line and column."""
    msg = str(exc)
    text = data.decode("utf-8", "replace")
    rows = csv.reader(io.StringIO(text, newline=""))
    ncols = len(layout.columns)
    m = _BAD_VALUE.search(msg)
    if m:
        k, typ, value = int(m.group(1)), m.group(2), m.group(3)
        name = layout.columns[k] if k < ncols else f"#{k}"
        what = _TYPE_WORDS.get(typ, typ)
        for row in rows:
            if len(row) > k and row[k] == value:
                line = first_line + rows.line_num - 1
                return InputFileError(
                    f"{layout.display} line {line}, column {name!r}: {value!r} is not {what} "
                    f"(the file is damaged; re-run the train stage: `dvc repro train`)")
        return InputFileError(f"{layout.display}, column {name!r}: {value!r} is not {what}")
    m = _BAD_COUNT.search(msg)
    if m:
        for row in rows:
            if row and len(row) != ncols:
                line = first_line + rows.line_num - 1
                return InputFileError(
                    f"{layout.display} line {line}: {len(row)} fields, but the header has {ncols} "
                    f"(the file is damaged; re-run the train stage: `dvc repro train`)")
    first = msg.splitlines()[0] if msg else type(exc).__name__
    return InputFileError(f"{layout.display}: cannot parse ({first})")


# --------------------------------------------------------------------------- Parquet output
def _parquet_kwargs(schema: pa.Schema) -> dict:
    # Dictionary encoding pays off for the integer/bool columns (few distinct values); for
    # continuous floats it is slower and makes the file larger, so it is off for them.
    dict_cols = [f.name for f in schema if not pa.types.is_floating(f.type)]
    return {"compression": PARQUET_COMPRESSION, "use_dictionary": dict_cols or False}


def write_parquet(table: pa.Table, path: str | os.PathLike) -> None:
    """Write one table (its schema metadata included) as zstd Parquet to ``path``."""
    pq.write_table(table, str(path), **_parquet_kwargs(table.schema))


def csv_to_parquet(layout: CsvLayout, path: str | os.PathLike, params_digest: str,
                   stats: ReadStats | None = None, chunk_bytes: int = CHUNK_BYTES,
                   columns: Sequence[str] | None = None) -> ReadStats:
    """Stream a CSV file into Parquet, one row group per chunk (bounded memory).

    ``columns`` gives the schema when the file has no header (an empty Parquet file is written).
    """
    stats = stats if stats is not None else ReadStats()
    schema = schema_for(layout.columns or tuple(columns or ()), params_digest)
    # Encoding/compressing row group k (one thread, GIL released) overlaps parsing chunk k+1
    # (pyarrow's thread pool); at most two chunks' tables are alive at once.
    with pq.ParquetWriter(str(path), schema, **_parquet_kwargs(schema)) as writer, \
            ThreadPoolExecutor(max_workers=1) as pool:
        pending = None
        for table in iter_tables(layout, stats, chunk_bytes):
            if pending is not None:
                pending.result()
            pending = pool.submit(writer.write_table, table)
        if pending is not None:
            pending.result()
    return stats
