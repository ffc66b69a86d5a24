"""CSVLog on resume: trims to the checkpoint's episode, drops torn rows, keeps widened headers."""
from __future__ import annotations

import pytest

from rlpipe.hooks.writers import CSVLog

COLS = ["Episode", "Value"]


def rows_text(keys, extra=""):
    return "".join(f"{k},{k * 0.5}{extra}\n" for k in keys)


@pytest.fixture(params=[1 << 16, 7], ids=["one-window", "tiny-windows"])
def window(request, monkeypatch):
    monkeypatch.setattr(CSVLog, "TAIL_WINDOW", request.param)  # tiny: forces window doubling
    return request.param


@pytest.mark.parametrize("tail", ["", "11,5.", "11"])
def test_trim_to_checkpoint_drops_later_and_torn_rows(tmp_path, window, tail):
    p = tmp_path / "log.csv"
    keys = [1, 2, 2, 3, 4, 5, 6, 7, 8, 9, 10]  # several rows per key, as in steps.csv
    p.write_text("Episode,Value\n" + rows_text(keys) + tail)
    log = CSVLog(p, COLS, "Episode", keep_through=7)
    log.write({"Episode": 8, "Value": 4.0})
    log.close()
    assert p.read_text() == "Episode,Value\n" + rows_text([1, 2, 2, 3, 4, 5, 6, 7]) + "8,4.0\n"
    assert log.dropped_rows == 3 + (1 if tail else 0) and not log.missing_rows


def test_trim_keeps_a_widened_header(tmp_path, window):
    p = tmp_path / "log.csv"
    p.write_text("Episode,Value,Late\n" + rows_text(range(1, 6), ",") + "6,3.0,1.5\n")
    log = CSVLog(p, COLS, "Episode", keep_through=4)
    log.write({"Episode": 5, "Value": 9.0, "Late": 2.0})
    log.close()
    assert log.columns == ["Episode", "Value", "Late"]
    assert p.read_text().splitlines()[-2:] == ["4,2.0,", "5,9.0,2.0"]


def test_rows_lost_before_the_checkpoint_are_reported(tmp_path, window):
    p = tmp_path / "log.csv"
    p.write_text("Episode,Value\n" + rows_text([1, 2]))
    log = CSVLog(p, COLS, "Episode", keep_through=5)
    log.close()
    assert log.missing_rows and p.read_text() == "Episode,Value\n" + rows_text([1, 2])


def test_nothing_kept_and_other_header_falls_back_to_rewrite(tmp_path, window):
    p = tmp_path / "log.csv"
    p.write_text("Episode,Value\n" + rows_text([5, 6]))
    log = CSVLog(p, COLS, "Episode", keep_through=3)
    log.close()
    assert p.read_text() == "Episode,Value\n"
    p.write_text("Value,Episode\n1.0,1\n2.0,2\n")  # another column order: rewritten in ours
    log = CSVLog(p, COLS, "Episode", keep_through=1)
    log.close()
    assert p.read_text() == "Episode,Value\n1,1.0\n"
