"""Trial folders as bytes: listing, change tracking, atomic snapshots, the store's fencing."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from rlpipe.sweep.files import (TRIAL_META, ChangeTracker, SnapshotMismatch, UnsafePath,
                                apply_snapshot, list_files, read_files, unpack, write_order)
from rlpipe.sweep.store import TrialStore


def make_tree(root: Path, files: dict[str, bytes]) -> None:
    for rel, data in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)


def test_listing_skips_temporaries_and_the_drivers_record(tmp_path):
    make_tree(tmp_path, {"out/a.csv": b"1", "ck/ckpt_ep000002.pt": b"2", TRIAL_META: b"{}",
                         "out/.a.csv.x1.tmp": b"torn", "ck/.ckpt_ep000004.abcdefgh/state.pt": b"x"})
    assert list_files(tmp_path) == ["ck/ckpt_ep000002.pt", "out/a.csv"]
    assert list_files(tmp_path / "missing") == []


def test_write_order_puts_checkpoints_last_and_state_pt_last_of_all():
    order = write_order(["ck/ckpt_ep000004/state.pt", "ck/ckpt_ep000004/actor.pt", "out/z.csv",
                         "ck/best.pt", "out/a.log"], "ck")
    assert order == ["out/a.log", "out/z.csv", "ck/best.pt", "ck/ckpt_ep000004/actor.pt",
                     "ck/ckpt_ep000004/state.pt"]


def test_snapshot_round_trip_with_changes_and_deletions(tmp_path):
    worker, home = tmp_path / "worker", tmp_path / "home"
    make_tree(worker, {"out/episodes.csv": b"h\n1\n", "ck/ckpt_ep000002.pt": b"c2"})
    tracker = ChangeTracker(worker, "ck")
    files, listing, appends = tracker.changes()
    assert appends == []  # nothing was sent before: every file goes whole
    apply_snapshot(home, files, listing, appends)
    assert read_files(home, "ck") == read_files(worker, "ck")

    # the run goes on: a log grows, a checkpoint is added, an old one is pruned
    with open(worker / "out/episodes.csv", "ab") as f:
        f.write(b"2\n")
    (worker / "ck/ckpt_ep000004.pt").write_bytes(b"c4")
    (worker / "ck/ckpt_ep000002.pt").unlink()
    (home / TRIAL_META).write_text("{}")
    files, listing, appends = tracker.changes()
    assert [rel for rel, _ in files] == ["ck/ckpt_ep000004.pt"]
    assert appends == [("out/episodes.csv", 4, b"2\n")]  # only the new row travels
    apply_snapshot(home, files, listing, appends)
    assert read_files(home, "ck") == read_files(worker, "ck")
    assert (home / TRIAL_META).read_text() == "{}"  # the driver's file is never touched
    assert tracker.changes()[:3:2] == ([], [])  # nothing new


def test_a_growing_log_travels_once_and_a_rewritten_one_goes_whole(tmp_path):
    worker, home = tmp_path / "worker", tmp_path / "home"
    make_tree(worker, {"out/steps.csv": b"step\n", "ck/ckpt_ep000002.pt": b"c"})
    tracker = ChangeTracker(worker, "ck")
    apply_snapshot(home, *tracker.changes())
    sent = 0
    for k in range(1, 30):  # a log that grows by a row between sends
        with open(worker / "out/steps.csv", "ab") as f:
            f.write(f"{k}\n".encode())
        files, listing, appends = tracker.changes()
        assert files == [] and [rel for rel, _, _ in appends] == ["out/steps.csv"]
        sent += sum(len(tail) for _, _, tail in appends)
        apply_snapshot(home, files, listing, appends)
    final = (worker / "out/steps.csv").read_bytes()
    assert (home / "out/steps.csv").read_bytes() == final
    assert sent == len(final) - len(b"step\n")  # each byte sent once, not the file each time

    # a log rewritten longer with another start (a CSV widened by a new column) goes whole,
    # and so does a checkpoint that grew: appends are for logs only
    (worker / "out/steps.csv").write_bytes(b"step,loss\n" + final[5:] + b"30,\n")
    (worker / "ck/ckpt_ep000002.pt").write_bytes(b"c+more")
    files, listing, appends = tracker.changes()
    assert appends == [] and [rel for rel, _ in files] == ["out/steps.csv", "ck/ckpt_ep000002.pt"]
    apply_snapshot(home, files, listing, appends)
    assert read_files(home, "ck") == read_files(worker, "ck")


def test_an_append_that_does_not_fit_the_copy_writes_nothing(tmp_path):
    home = tmp_path / "home"
    apply_snapshot(home, [("out/log.csv", b"a\n1\n")], ["out/log.csv"])
    for offset in (2, 9):
        with pytest.raises(SnapshotMismatch, match="out/log.csv: an append at byte"):
            apply_snapshot(home, [("out/new.csv", b"x")], ["out/log.csv", "out/new.csv"],
                           [("out/log.csv", offset, b"2\n")])
    with pytest.raises(SnapshotMismatch, match="no such file"):
        apply_snapshot(home, [], ["out/gone.csv"], [("out/gone.csv", 0, b"2\n")])
    assert list_files(home) == ["out/log.csv"]
    assert (home / "out/log.csv").read_bytes() == b"a\n1\n"


def test_emptied_folders_go_and_unpack_seeds_a_fresh_folder(tmp_path):
    home = tmp_path / "home"
    apply_snapshot(home, [("ck/ckpt_ep000002/state.pt", b"s")], ["ck/ckpt_ep000002/state.pt"])
    apply_snapshot(home, [("ck/ckpt_ep000004.pt", b"c")], ["ck/ckpt_ep000004.pt"])
    assert not (home / "ck/ckpt_ep000002").exists()
    unpack(tmp_path / "scratch", read_files(home, "ck"))
    assert (tmp_path / "scratch/ck/ckpt_ep000004.pt").read_bytes() == b"c"


@pytest.mark.parametrize("rel", ["../evil", "/etc/passwd", "a/../../b", ".hidden", TRIAL_META])
def test_unsafe_paths_are_refused_and_nothing_is_written(tmp_path, rel):
    with pytest.raises(UnsafePath):
        apply_snapshot(tmp_path / "home", [("ok.txt", b"1"), (rel, b"x")], ["ok.txt", rel])
    assert not (tmp_path / "home" / "ok.txt").exists()
    with pytest.raises(UnsafePath):
        apply_snapshot(tmp_path / "home", [("ok.txt", b"1")], ["ok.txt"], [(rel, 0, b"x")])
    assert not (tmp_path / "home" / "ok.txt").exists()
    with pytest.raises(UnsafePath):
        unpack(tmp_path / "scratch", [(rel, b"x")])


def test_store_accepts_only_the_current_attempt(tmp_path):
    store = TrialStore(str(tmp_path))
    assert store.begin("t1", 1)
    assert store.put("t1", 1, [("a.csv", b"1")], ["a.csv"])
    store.begin("t1", 2)  # the driver gave up on attempt 1 and sent the folder out again
    assert not store.started("t1", 1, {"ip": "x"})
    assert not store.put("t1", 1, [("a.csv", b"stale")], ["a.csv"])
    assert not store.put("t1", 1, [], ["a.csv"], [("a.csv", 1, b"stale")])
    assert (tmp_path / "t1/a.csv").read_bytes() == b"1"
    assert store.started("t1", 2, {"ip": "127.0.0.3"})
    assert store.node("t1", 2) == {"ip": "127.0.0.3"}
    assert store.put("t1", 2, [("a.csv", b"2")], ["a.csv"])
    assert (tmp_path / "t1/a.csv").read_bytes() == b"2"
    assert not store.put("t2", 1, [("a.csv", b"x")], ["a.csv"])  # never begun
    assert not (tmp_path / "t2").exists()
    assert os.listdir(tmp_path) == ["t1"]
