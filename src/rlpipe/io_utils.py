"""Atomic file writes: a temporary file in the same folder, flush, fsync, rename.

A kill at any moment leaves either the old file or the new one, never a torn one.
"""
from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import IO, Iterator


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_UMASK = _current_umask()


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "wb", durable: bool = True) -> Iterator[IO]:
    """Open a temporary sibling of ``path`` for writing; rename it over ``path`` on success.

    ``durable=False`` skips the fsyncs: still never torn by a kill (the rename is atomic), but a
    power loss may lose the new content; for files rewritten often that hold nothing the durable
    ones do not (the live progress files).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600; outputs get the usual mode
        with os.fdopen(fd, mode) as f:
            yield f
            f.flush()
            if durable:
                os.fsync(f.fileno())
        os.replace(tmp, path)
        if durable:
            _fsync_dir(path.parent)
    except BaseException as e:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        named = with_filename(e, path) if isinstance(e, OSError) else e
        if named is not e:
            raise named from e
        raise


def with_filename(e: OSError, path: str | os.PathLike) -> OSError:
    """``e`` naming ``path`` when it names no file (a failed write or fsync: "No space left")."""
    if e.filename is not None or e.errno is None:
        return e
    return OSError(e.errno, e.strerror or os.strerror(e.errno), str(path))


def _fsync_dir(folder: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    with atomic_open(path, "wb") as f:
        f.write(data)


def atomic_write_text(path: str | os.PathLike, text: str, durable: bool = True) -> None:
    with atomic_open(path, "w", durable) as f:
        f.write(text)


class StagedWrites:
    """Several outputs written as temporary siblings, then renamed over their targets together.

    A stage computes everything, writes every file through :meth:`path`/:meth:`write_text`,
    and calls :meth:`commit` last; on any error :meth:`abort` removes the temporaries, so the
    previous outputs stay intact.
    """

    def __init__(self) -> None:
        self.items: list[tuple[Path, Path]] = []

    def path(self, final: str | os.PathLike) -> Path:
        final = Path(final)
        final.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{final.name}.", suffix=".tmp", dir=final.parent)
        try:
            os.fchmod(fd, 0o666 & ~_UMASK)
        finally:
            os.close(fd)
        self.items.append((Path(tmp), final))
        return Path(tmp)

    def write_text(self, final: str | os.PathLike, text: str) -> None:
        with open(self.path(final), "w", encoding="utf-8", newline="") as f:
            f.write(text)

    def commit(self) -> None:
        for tmp, _ in self.items:
            fd = os.open(tmp, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        for tmp, final in self.items:
            os.replace(tmp, final)
        for folder in {final.parent for _, final in self.items}:
            _fsync_dir(folder)
        self.items = []

    def abort(self) -> None:
        for tmp, _ in self.items:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
        self.items = []
