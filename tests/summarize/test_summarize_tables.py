"""summarize: CSV -> typed Arrow/Parquet (docs/FILES.md typing), chunked reading, damage rules."""
from __future__ import annotations

import math
import random

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from rlpipe.errors import InputFileError
from rlpipe.summarize import tables as T
from tests.helpers import EPISODES, STEPS, UPDATES, cell, write_csv


def steps_rows(n: int, seed: int = 0) -> list[list]:
    rnd = random.Random(seed)
    rows = []
    for i in range(n):
        oracle = i % 7 != 0
        rows.append([i // 10 + 1, i % 10 + 1, i + 1, rnd.randrange(20), rnd.gauss(0, 1),
                     rnd.gauss(0, 1), -rnd.random() * 3, rnd.random(),
                     rnd.randrange(20) if oracle else None, (rnd.random() < 0.5) if oracle else None,
                     rnd.random(), rnd.random()])
    return rows


def same(a, b) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return a == b


def assert_table_equals(table: pa.Table, header: list[str], rows: list[list]) -> None:
    assert table.column_names == header
    assert table.num_rows == len(rows)
    cols = table.to_pydict()
    for j, name in enumerate(header):
        got = cols[name]
        want = [r[j] for r in rows]
        bad = [i for i, (g, w) in enumerate(zip(got, want)) if not same(g, w)]
        assert not bad, f"{name}: row {bad[0]}: {got[bad[0]]!r} != {want[bad[0]]!r}"


def test_steps_round_trip_types_metadata_and_chunks(tmp_path):
    header = STEPS + ["Mean Utilization", "Max Utilization"]
    rows = steps_rows(500)
    rows[3][5] = float("nan")
    rows[4][6] = float("-inf")
    src = tmp_path / "steps.csv"
    write_csv(src, header, rows)
    layout = T.inspect_csv(src)
    out = tmp_path / "steps.parquet"
    stats = T.csv_to_parquet(layout, out, "digest42", chunk_bytes=1000)  # many chunks

    f = pq.ParquetFile(out)
    assert f.metadata.num_row_groups > 5
    assert f.metadata.row_group(0).column(0).compression == "ZSTD"
    assert f.schema_arrow.metadata[b"rlpipe.params_digest"] == b"digest42"
    types = {fld.name: fld.type for fld in f.schema_arrow}
    for name in ("Episode", "Step", "Global Step", "Action", "Oracle Action"):
        assert types[name] == pa.int64(), name
    assert types["Feasible"] == pa.bool_()
    for name in ("Reward", "Value", "Log Prob", "Entropy", "Mean Utilization", "Max Utilization"):
        assert types[name] == pa.float64(), name
    assert all(fld.nullable for fld in f.schema_arrow)

    table = f.read()
    assert_table_equals(table, header, rows)
    assert table.column("Oracle Action").null_count == sum(r[8] is None for r in rows) > 0
    assert stats.rows == 500
    assert stats.nonfinite == {"Value": 1, "Log Prob": 1}


def test_episodes_and_updates_types_with_extra_columns(tmp_path):
    ep_header = EPISODES + ["Acceptance Rate", "Mean Latency"]
    ep_rows = [[i, 0.1 * i, float(i), None if i < 3 else 0.5, None if i < 3 else 1.5, 0.9, 50,
                float(i) / 2, None, 0.25 * (i % 4), 10.0 + i] for i in range(1, 21)]
    write_csv(tmp_path / "episodes.csv", ep_header, ep_rows)
    episodes = T.read_table(T.inspect_csv(tmp_path / "episodes.csv"), params_digest="d")
    assert_table_equals(episodes, ep_header, ep_rows)
    assert episodes.schema.field("Episode Length").type == pa.int64()
    assert episodes.schema.field("Deployment Accuracy").type == pa.float64()
    assert episodes.schema.field("Acceptance Rate").type == pa.float64()
    assert episodes.column("Actor Loss").null_count == 2

    up_header = UPDATES + ["my/custom tag"]
    up_rows = [[u, 100 * u, u, 0.1, 0.2, 1.0, 0.01, 0.1, 0.5, 1e-3, 1.0, 2.0, u % 2, float(u)]
               for u in range(1, 6)]
    write_csv(tmp_path / "updates.csv", up_header, up_rows)
    updates = T.read_table(T.inspect_csv(tmp_path / "updates.csv"))
    assert_table_equals(updates, up_header, up_rows)
    assert updates.schema.field("Skipped").type == pa.int64()
    assert updates.schema.field("Update").type == pa.int64()
    assert updates.schema.field("my/custom tag").type == pa.float64()


@pytest.mark.parametrize("tail,reason", [
    ("51,0.5,12.", "no line terminator"),           # crash mid-number
    ("51,0.5,12.25,0.1,0.2,0.3,50,1.0,", "no line terminator"),
    ("51,0.5,12.25\n", "3 of 9 fields"),             # fewer fields, terminated
    ("51,0.5,12.25\n\n", "3 of 9 fields"),           # ... and a blank line after it
])
def test_incomplete_last_line_is_dropped(tmp_path, tail, reason):
    rows = [[i, 0.5, float(i), 0.1, 0.2, 0.3, 50, 1.0, None] for i in range(1, 51)]
    src = tmp_path / "episodes.csv"
    write_csv(src, EPISODES, rows, tail)
    layout = T.inspect_csv(src)
    assert layout.dropped_line == 52
    assert reason in layout.dropped_reason
    assert "episodes.csv line 52" in layout.drop_warning()
    table = T.read_table(layout, chunk_bytes=64)
    assert_table_equals(table, EPISODES, rows)


def test_complete_file_keeps_every_row_crlf_and_blank_lines(tmp_path):
    rows = [[i, 0.5, float(i), 0.1, 0.2, 0.3, 50, 1.0, 0.75] for i in range(1, 31)]
    src = tmp_path / "episodes.csv"
    text = ",".join(EPISODES) + "\r\n" + "".join(",".join(cell(v) for v in r) + "\r\n" for r in rows)
    src.write_bytes((text + "\r\n").encode())
    layout = T.inspect_csv(src)
    assert layout.dropped_line is None
    assert_table_equals(T.read_table(layout, chunk_bytes=100), EPISODES, rows)


def test_header_only_and_empty_files(tmp_path):
    (tmp_path / "a.csv").write_text(",".join(STEPS) + "\n")
    layout = T.inspect_csv(tmp_path / "a.csv")
    assert layout.columns == tuple(STEPS) and not layout.has_data
    assert T.read_table(layout).num_rows == 0
    (tmp_path / "b.csv").write_text("")
    layout = T.inspect_csv(tmp_path / "b.csv")
    assert not layout.has_header
    T.csv_to_parquet(layout, tmp_path / "b.parquet", "d", columns=STEPS)
    schema = pq.read_schema(tmp_path / "b.parquet")
    assert schema.names == STEPS and schema.field("Feasible").type == pa.bool_()
    assert pq.read_metadata(tmp_path / "b.parquet").num_rows == 0


@pytest.mark.parametrize("chunk_bytes", [40, 1 << 20])
def test_garbage_value_names_file_line_and_column(tmp_path, chunk_bytes):
    rows = steps_rows(200)
    src = tmp_path / "steps.csv"
    write_csv(src, STEPS + ["Mean Utilization", "Max Utilization"], rows)
    lines = src.read_text().split("\n")
    cells = lines[150].split(",")
    cells[5] = "0.3x"                                 # Value column, file line 151
    lines[150] = ",".join(cells)
    src.write_text("\n".join(lines))
    with pytest.raises(InputFileError) as e:
        list(T.iter_tables(T.inspect_csv(src), chunk_bytes=chunk_bytes))
    msg = str(e.value)
    assert "steps.csv line 151" in msg and "'Value'" in msg and "0.3x" in msg


def test_int_column_rejects_a_float_and_short_row_mid_file(tmp_path):
    rows = [[i, 0.5, float(i), 0.1, 0.2, 0.3, 50, 1.0, None] for i in range(1, 11)]
    src = tmp_path / "episodes.csv"
    write_csv(src, EPISODES, rows)
    lines = src.read_text().split("\n")
    lines[4] = lines[4].replace(",50,", ",50.5,")     # Episode Length, line 5
    src.write_text("\n".join(lines))
    with pytest.raises(InputFileError, match=r"line 5, column 'Episode Length'.*not an integer"):
        T.read_table(T.inspect_csv(src))

    write_csv(src, EPISODES, rows)
    lines = src.read_text().split("\n")
    lines[6] = ",".join(lines[6].split(",")[:5])      # 5 of 9 fields, not the last line
    src.write_text("\n".join(lines))
    with pytest.raises(InputFileError, match=r"episodes.csv line 7: 5 fields, but the header has 9"):
        T.read_table(T.inspect_csv(src))


def test_line_longer_than_the_chunk(tmp_path):
    header = STEPS + [f"Extra {i}" for i in range(40)]
    rows = [r[:10] + [float(j) / 3 for j in range(40)] for r in steps_rows(30)]
    src = tmp_path / "steps.csv"
    write_csv(src, header, rows)
    assert_table_equals(T.read_table(T.inspect_csv(src), chunk_bytes=16), header, rows)


def test_bad_headers(tmp_path):
    src = tmp_path / "x.csv"
    src.write_text("Episode,Reward,Reward\n1,2,3\n")
    with pytest.raises(InputFileError, match="duplicate column"):
        T.inspect_csv(src)
