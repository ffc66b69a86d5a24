"""Checkpoint files: the format, atomic saving, safe loading, finding the newest one to resume.

This module belongs to neither ``train/`` (which produces the state) nor ``hooks/`` (which saves
it), so the two never import each other. A checkpoint is a dict of tensors and primitive
containers (see ``Trainer.state_dict``) plus ``fingerprint`` and ``params``; docs/FILES.md lists
its keys. It is loaded with ``torch.load(weights_only=True)`` only, so a
file that carries pickled code is refused and its code never runs.
"""
from __future__ import annotations

import io
import logging
import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import torch

from rlpipe.errors import CheckpointError
from rlpipe.io_utils import _fsync_dir, atomic_write_bytes
from rlpipe.paths import ARCHIVE_DIR, BEST_CHECKPOINT as BEST, BEST_CHECKPOINT_DIR as BEST_DIR

#: bumped whenever the keys or their meaning change, together with an entry in MIGRATIONS
CHECKPOINT_FORMAT_VERSION = 1

#: ``{v: fn}``: ``fn(state)`` turns a loaded checkpoint of format version ``v`` into version
#: ``v + 1`` (returning the new dict; it sets no version, :func:`migrate` does). Loading applies
#: them in order up to :data:`CHECKPOINT_FORMAT_VERSION` and says so in one log line; a version
#: with no path to the current one is refused, never read as if it were current. Each older
#: version keeps a small stored checkpoint under tests/fixtures/ that the tests migrate.
MIGRATIONS: dict[int, Callable[[dict[str, Any]], dict[str, Any]]] = {}
CKPT_RE = re.compile(r"^ckpt_ep(\d{6,})(\.pt)?$")
REQUIRED_KEYS = ("format_version", "fingerprint", "episode", "global_step", "update", "actor",
                 "critic", "actor_optim", "critic_optim", "rng", "stats")
MODULE_KEYS = ("actor", "critic", "actor_optim", "critic_optim")


def checkpoint_name(episode: int, separate: bool) -> str:
    return f"ckpt_ep{episode:06d}" + ("" if separate else ".pt")


def best_name(separate: bool) -> str:
    """``best.pt``, or the folder ``best`` with ``checkpoint.store_separately``."""
    return BEST_DIR if separate else BEST


def _to_bytes(obj: Any) -> bytes:
    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getvalue()


def save_checkpoint(state: dict[str, Any], path: Path, store_separately: bool = False) -> Path:
    """Write atomically: a temporary file (or folder) beside the target, fsync, rename."""
    path = Path(path)
    if not store_separately:
        if path.is_dir():  # the same name held a folder (store_separately changed)
            shutil.rmtree(path)
        atomic_write_bytes(path, _to_bytes(state))
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    try:
        rest = {k: v for k, v in state.items() if k not in MODULE_KEYS}
        for key in MODULE_KEYS:
            atomic_write_bytes(tmp / f"{key}.pt", _to_bytes(state[key]))
        atomic_write_bytes(tmp / "state.pt", _to_bytes(rest))  # written last: marks completeness
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()
        os.replace(tmp, path)
        _fsync_dir(path.parent)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return path


def _load_file(path: Path) -> Any:
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise CheckpointError(f"{path}: file not found") from None
    except Exception as e:  # noqa: BLE001 - every failure becomes one clear message
        text = str(e)
        if "Weights only load failed" in text or "weights_only" in text:
            raise CheckpointError(
                f"{path}: refused: the file holds pickled Python objects or code, which is never "
                "loaded (only tensors and plain containers are accepted)") from None
        if os.path.getsize(path) == 0:
            raise CheckpointError(f"{path}: empty file (0 bytes)") from None
        raise CheckpointError(f"{path}: unreadable or truncated ({type(e).__name__}: "
                              f"{text.splitlines()[0] if text else ''})") from None


def migrate(state: dict[str, Any], path: Path) -> tuple[dict[str, Any], str | None]:
    """Bring a checkpoint of an older format version to the current one (:data:`MIGRATIONS`).

    Returns the state and a message saying what was migrated (None when it was current). Raises
    :class:`CheckpointError` for a version this rlpipe cannot read (newer, unknown, or older
    than every migration).
    """
    version = state.get("format_version")
    current = CHECKPOINT_FORMAT_VERSION
    if version == current:
        return state, None
    oldest = min((v for v in MIGRATIONS if v < current), default=current)
    if isinstance(version, bool) or not isinstance(version, int) or not oldest <= version < current:
        newer = "; written by a newer rlpipe?" if isinstance(version, int) and version > current else ""
        also = f" and migrates from version {oldest}" if oldest < current else ""
        raise CheckpointError(f"{path}: checkpoint format version {version!r} is not supported "
                              f"(this rlpipe reads version {current}{also}{newer})")
    start = version
    while version < current:
        step = MIGRATIONS.get(version)
        if step is None:  # a gap in MIGRATIONS: a bug of this module, still one clear line
            raise CheckpointError(f"{path}: no migration of checkpoint format version {version} "
                                  f"to {version + 1}")
        try:
            state = step(dict(state))
            if not isinstance(state, dict):
                raise TypeError(f"the migration returned {type(state).__name__}, not a dict")
        except Exception as e:  # noqa: BLE001 - a failed migration is one clear message
            raise CheckpointError(f"{path}: cannot migrate checkpoint format version {version} "
                                  f"to {version + 1} ({type(e).__name__}: {e})") from None
        version += 1
        state["format_version"] = version
    return state, f"{path}: checkpoint format version {start} migrated to {current} on load"


def read_checkpoint(path: str | os.PathLike) -> tuple[dict[str, Any], str | None]:
    """Load, migrate and check a checkpoint: (state, migration message or None).

    Raises :class:`CheckpointError` naming the file and the problem.
    """
    path = Path(path)
    if path.is_dir():
        if not (path / "state.pt").exists():
            raise CheckpointError(f"{path}: incomplete checkpoint folder (no state.pt)")
        state = _load_file(path / "state.pt")
        if not isinstance(state, dict):
            raise CheckpointError(f"{path / 'state.pt'}: not a checkpoint (expected a dict)")
        for key in MODULE_KEYS:
            state[key] = _load_file(path / f"{key}.pt")
    else:
        state = _load_file(path)
    if not isinstance(state, dict):
        raise CheckpointError(f"{path}: not a checkpoint (expected a dict, got {type(state).__name__})")
    state, migrated = migrate(state, path)
    missing = [k for k in REQUIRED_KEYS if k not in state]
    if missing:
        raise CheckpointError(f"{path}: not a complete checkpoint (missing {', '.join(missing)})")
    return state, migrated


def load_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """Load a checkpoint (file or ``store_separately`` folder), mapped to the CPU, migrated from
    an older format version with a log line (:func:`read_checkpoint`)."""
    state, migrated = read_checkpoint(path)
    if migrated:
        logging.getLogger("rlpipe").warning(migrated)
    return state


def list_checkpoints(directory: Path) -> list[tuple[int, Path]]:
    """Periodic checkpoints in the folder, newest (highest episode) first."""
    directory = Path(directory)
    if not directory.is_dir():
        return []
    found = []
    for p in directory.iterdir():
        m = CKPT_RE.match(p.name)
        if m:
            found.append((int(m.group(1)), p))
    return sorted(found, key=lambda t: t[0], reverse=True)


@dataclass
class ResumePlan:
    state: dict[str, Any] | None        # the checkpoint to resume, or None for a fresh start
    path: Path | None
    mismatch: tuple[Path, str] | None   # newest loadable checkpoint of other params, if any
    skipped: list[str]                  # messages for checkpoints that could not be used
    migrated: str | None = None         # how the resumed checkpoint was migrated, if it was


def find_resumable(directory: Path, fingerprint: str) -> ResumePlan:
    """The newest checkpoint that loads and matches ``fingerprint``.

    Unreadable ones are skipped (reported in ``skipped``); the newest loadable checkpoint decides:
    if its fingerprint differs, no older one of the same params is used behind its back, and the
    plan reports the mismatch instead.
    """
    skipped: list[str] = []
    for _, path in list_checkpoints(directory):
        try:
            state, migrated = read_checkpoint(path)
        except CheckpointError as e:
            skipped.append(str(e))
            continue
        if state["fingerprint"] != fingerprint:
            return ResumePlan(None, None, (path, str(state["fingerprint"])), skipped)
        return ResumePlan(state, path, None, skipped, migrated)
    return ResumePlan(None, None, None, skipped)


def archive_checkpoints(directory: Path, old_fingerprint: str) -> Path:
    """Move the checkpoints of another run aside (``archive/<fingerprint>/``) before a fresh start."""
    directory = Path(directory)
    dest = directory / ARCHIVE_DIR / old_fingerprint
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    for p in list(directory.iterdir()):
        if p.name == ARCHIVE_DIR:
            continue
        if CKPT_RE.match(p.name) or p.name in (BEST, BEST_DIR) or p.name.startswith(".ckpt_ep"):
            os.replace(p, dest / p.name)
    return dest


def prune(directory: Path, keep_last: int, on_remove: Callable[[Path], None] | None = None) -> None:
    for _, path in list_checkpoints(directory)[keep_last:]:
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink()
        if on_remove:
            on_remove(path)
