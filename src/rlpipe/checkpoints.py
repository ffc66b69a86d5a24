"""Checkpoint files: the format, atomic saving, safe loading, finding the newest one to resume.

This module belongs to neither ``train/`` (which produces the state) nor ``hooks/`` (which saves
it), so the two never import each other. A checkpoint is a dict of tensors and primitive
containers (see ``Trainer.state_dict``) plus ``fingerprint`` and ``params``; docs/FILES.md lists
its keys. It is loaded with ``torch.load(weights_only=True)`` only, so a
file that carries pickled code is refused and its code never runs.
"""
from __future__ import annotations

import io
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
from rlpipe.paths import ARCHIVE_DIR, BEST_CHECKPOINT as BEST

#: bumped whenever the keys or their meaning change; older versions are refused with a message
CHECKPOINT_FORMAT_VERSION = 1
CKPT_RE = re.compile(r"^ckpt_ep(\d{6,})(\.pt)?$")
REQUIRED_KEYS = ("format_version", "fingerprint", "episode", "global_step", "update", "actor",
                 "critic", "actor_optim", "critic_optim", "rng", "stats")
MODULE_KEYS = ("actor", "critic", "actor_optim", "critic_optim")


def checkpoint_name(episode: int, separate: bool) -> str:
    return f"ckpt_ep{episode:06d}" + ("" if separate else ".pt")


def _to_bytes(obj: Any) -> bytes:
    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getvalue()


def save_checkpoint(state: dict[str, Any], path: Path, store_separately: bool = False) -> Path:
    """Write atomically: a temporary file (or folder) beside the target, fsync, rename."""
    path = Path(path)
    if not store_separately:
        atomic_write_bytes(path, _to_bytes(state))
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    try:
        rest = {k: v for k, v in state.items() if k not in MODULE_KEYS}
        for key in MODULE_KEYS:
            atomic_write_bytes(tmp / f"{key}.pt", _to_bytes(state[key]))
        atomic_write_bytes(tmp / "state.pt", _to_bytes(rest))  # written last: marks completeness
        if path.exists():
            shutil.rmtree(path)
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


def load_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """Load and check a checkpoint (file or ``store_separately`` folder), mapped to the CPU.

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
    version = state.get("format_version")
    if version != CHECKPOINT_FORMAT_VERSION:
        raise CheckpointError(f"{path}: checkpoint format version {version!r} is not supported "
                              f"(this rlpipe reads version {CHECKPOINT_FORMAT_VERSION})")
    missing = [k for k in REQUIRED_KEYS if k not in state]
    if missing:
        raise CheckpointError(f"{path}: not a complete checkpoint (missing {', '.join(missing)})")
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


def find_resumable(directory: Path, fingerprint: str) -> ResumePlan:
    """The newest checkpoint that loads and matches ``fingerprint``.

    Unreadable ones are skipped (reported in ``skipped``); the newest loadable checkpoint decides:
    if its fingerprint differs, no older one of the same params is used behind its back, and the
    plan reports the mismatch instead.
    """
    skipped: list[str] = []
    for _, path in list_checkpoints(directory):
        try:
            state = load_checkpoint(path)
        except CheckpointError as e:
            skipped.append(str(e))
            continue
        if state["fingerprint"] != fingerprint:
            return ResumePlan(None, None, (path, str(state["fingerprint"])), skipped)
        return ResumePlan(state, path, None, skipped)
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
        if CKPT_RE.match(p.name) or p.name == BEST or p.name.startswith(".ckpt_ep"):
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
