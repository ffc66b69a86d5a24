"""A trial folder as bytes: read it whole, find what changed, write a snapshot atomically.

Trials send their files to the driver (no storage shared between nodes is needed): the driver
packs a trial's folder (checkpoints + logs) and sends it with the task; the worker unpacks it,
trains, and sends back the changed files after every checkpoint and at the end. A snapshot is
``(files, listing, appends)``: ``files`` the changed files in the order to write them, ``listing``
every file the folder holds now (files not in it are deleted, after the writes), ``appends`` the
bytes that grew at the end of files sent before (the logs: a CSV of every step grows by a few
rows between checkpoints, and sending it whole each time would cost the square of its length).

Write order keeps a kill at any moment resumable: appends and logs before checkpoints (a resume trims logs
that run ahead of the newest checkpoint, but cannot invent rows that never arrived), the marker
``state.pt`` of a checkpoint folder last, deletions (pruned checkpoints) after everything.
"""
from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path, PurePosixPath
from typing import Iterable, Sequence

from rlpipe.io_utils import atomic_write_bytes
from rlpipe.paths import SWEEP_TRIAL_META

TRIAL_META = SWEEP_TRIAL_META  # written by the driver only: never sent, never deleted by a snapshot

Files = list[tuple[str, bytes]]
Appends = list[tuple[str, int, bytes]]  # (path, its length when last sent, the bytes after it)


class UnsafePath(ValueError):
    """A snapshot named a path outside its trial folder."""


class SnapshotMismatch(ValueError):
    """An append does not start where the driver's copy of the file ends (nothing is written)."""


def _is_hidden(rel: PurePosixPath) -> bool:
    """Temporaries of atomic writes (``.name.xxx.tmp``, ``.ckpt_ep...``) are never sent."""
    return any(part.startswith(".") for part in rel.parts)


def list_files(root: str | os.PathLike) -> list[str]:
    """Relative POSIX paths of the regular files under ``root`` (sorted; hidden ones skipped)."""
    root = Path(root)
    if not root.is_dir():
        return []
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in filenames:
            p = Path(dirpath) / name
            rel = PurePosixPath(p.relative_to(root).as_posix())
            if not _is_hidden(rel) and rel.as_posix() != TRIAL_META and p.is_file():
                out.append(rel.as_posix())
    return sorted(out)


def write_order(paths: Iterable[str], checkpoint_dir: str) -> list[str]:
    """``paths`` sorted so that checkpoint files come last, each checkpoint's ``state.pt`` last."""
    ckpt = PurePosixPath(checkpoint_dir).parts

    def key(rel: str) -> tuple:
        parts = PurePosixPath(rel).parts
        in_ckpt = parts[:len(ckpt)] == ckpt
        return (in_ckpt, in_ckpt and parts[-1] == "state.pt", rel)

    return sorted(paths, key=key)


def read_files(root: str | os.PathLike, checkpoint_dir: str,
               paths: Sequence[str] | None = None) -> Files:
    """``(path, bytes)`` of ``paths`` (default: every file) in write order."""
    root = Path(root)
    names = list_files(root) if paths is None else paths
    return [(rel, (root / rel).read_bytes()) for rel in write_order(names, checkpoint_dir)]


def _safe(root: Path, rel: str) -> Path:
    p = PurePosixPath(rel)
    if p.is_absolute() or ".." in p.parts or not p.parts or _is_hidden(p) or rel == TRIAL_META:
        raise UnsafePath(f"refusing to write {rel!r} into a trial folder")
    return root.joinpath(*p.parts)


def unpack(root: str | os.PathLike, files: Files) -> None:
    """Write ``files`` into a fresh folder ``root`` (a worker's scratch copy; not atomic)."""
    root = Path(root)
    for rel, data in files:
        path = _safe(root, rel)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)


def apply_snapshot(root: str | os.PathLike, files: Files, listing: Sequence[str],
                   appends: Appends = ()) -> None:
    """Bring ``root`` to the snapshot: extend the ``appends``' files and write ``files``, each
    atomically, in that order; then delete the files (and emptied folders) that ``listing`` no
    longer names. ``trial.json`` is left alone. Every path and every append's offset is checked
    before anything is written (:class:`UnsafePath`, :class:`SnapshotMismatch`)."""
    root = Path(root)
    grown = []
    for rel, offset, tail in appends:
        path = _safe(root, rel)
        size = path.stat().st_size if path.is_file() else None
        if size != offset:
            raise SnapshotMismatch(f"{rel}: an append at byte {offset}, but the copy here has "
                                   f"{'no such file' if size is None else f'{size} bytes'}")
        grown.append((path, tail))
    targets = [(_safe(root, rel), data) for rel, data in files]
    keep = {str(_safe(root, rel)) for rel in listing}
    for path, tail in grown:  # the whole file again (a kill leaves the old or the new one)
        atomic_write_bytes(path, path.read_bytes() + tail)
    for path, data in targets:
        atomic_write_bytes(path, data)
    for rel in list_files(root):
        path = root / rel
        if str(path) not in keep:
            path.unlink()
    for dirpath, _dirnames, _filenames in os.walk(root, topdown=False):
        if Path(dirpath) != root and not os.listdir(dirpath):
            os.rmdir(dirpath)


def _hasher(data: bytes | memoryview = b"") -> "hashlib._Hash":
    return hashlib.blake2b(data, digest_size=16)


class ChangeTracker:
    """Remembers the files last sent; :meth:`changes` gives what is new, and how.

    A file changed when its size or modification time (ns) did, as rsync decides by default: the
    training run rewrites a file (atomic rename) or appends to it, and either changes both. A
    changed log that is longer and still starts with exactly the bytes last sent (compared by
    digest) goes as an append of its new bytes; any other change sends it whole. Checkpoint files
    always go whole (they are rewritten, never appended to), so they are never digested.
    """

    def __init__(self, root: str | os.PathLike, checkpoint_dir: str):
        self.root = Path(root)
        self.checkpoint_dir = checkpoint_dir
        self._ckpt_parts = PurePosixPath(checkpoint_dir).parts
        self.stats: dict[str, tuple[int, int]] = {}     # path -> (size, mtime_ns) when last read
        self.sent: dict[str, tuple[int, bytes]] = {}    # log path -> (length, digest) last sent

    def _stat(self, rel: str) -> tuple[int, int]:
        st = (self.root / rel).stat()
        return st.st_size, st.st_mtime_ns

    def _is_log(self, rel: str) -> bool:
        return PurePosixPath(rel).parts[:len(self._ckpt_parts)] != self._ckpt_parts

    def mark_sent(self, paths: Iterable[str]) -> None:
        """``paths`` are on the driver's side as they are here (the files a trial started with)."""
        for rel in paths:
            self.stats[rel] = self._stat(rel)
            if self._is_log(rel):
                data = (self.root / rel).read_bytes()
                self.sent[rel] = (len(data), _hasher(data).digest())

    def changes(self) -> tuple[Files, list[str], Appends]:
        """The changed files (write order), the full listing and the appends; marks them sent."""
        listing = list_files(self.root)
        # stat before reading: a file rewritten while being read is looked at again next time
        now = {rel: self._stat(rel) for rel in listing}
        changed = [rel for rel in listing if self.stats.get(rel) != now[rel]]
        files: Files = []
        appends: Appends = []
        sent = {rel: self.sent[rel] for rel in listing if rel in self.sent}
        for rel, data in read_files(self.root, self.checkpoint_dir, changed):
            if not self._is_log(rel):
                files.append((rel, data))
                continue
            view = memoryview(data)
            old_len, old_digest = sent.get(rel, (len(data), b""))
            grown = old_len < len(data)
            h = _hasher(view[:old_len] if grown else b"")
            if grown and h.digest() == old_digest:
                appends.append((rel, old_len, data[old_len:]))
            else:
                files.append((rel, data))
            h.update(view[old_len:] if grown else view)  # the digest of all of it, hashed once
            sent[rel] = (len(data), h.digest())
        self.stats = now
        self.sent = sent
        return files, listing, appends


def remove_tree(path: str | os.PathLike) -> None:
    shutil.rmtree(path, ignore_errors=True)
