"""``rlpipe.track(tag, value)``: custom scalars from user code or environments.

Values are buffered while a training run is active and drained by the trainer at each policy
update (the mean of each tag's values since the previous update), then flow like every other
update statistic to ``updates.csv`` (column ``tag``) and TensorBoard (``Custom / tag``).
"""
from __future__ import annotations

import math
from collections import defaultdict

_active = False
_buffer: dict[str, list[float]] = defaultdict(list)


def record(tag: str, value: float) -> None:
    if not _active:
        return
    if not isinstance(tag, str) or not tag or "," in tag or "\n" in tag:
        raise ValueError(f"rlpipe.track: tag must be a non-empty string without commas, got {tag!r}")
    _buffer[tag].append(float(value))


def activate() -> None:
    global _active
    _active = True
    _buffer.clear()


def deactivate() -> None:
    global _active
    _active = False
    _buffer.clear()


def drain() -> dict[str, float]:
    """The mean of every tag recorded since the last drain (NaN-safe: NaN stays NaN)."""
    out = {tag: math.fsum(vals) / len(vals) for tag, vals in _buffer.items() if vals}
    _buffer.clear()
    return out
