"""Typed settings for environment authors: declare an environment's ``env.kwargs`` as a frozen
dataclass, and rlpipe checks them before anything is written, each error one line naming
``env.kwargs.<key>`` (docs/ENVIRONMENTS.md, "Typed settings").

``setting(default, check)`` declares a field, ``in_range``/``positive``/``non_negative``/
``one_of`` are checks, ``require``/``require_ordered`` check across fields in an optional
``validate(section)``, and ``build(cls, kwargs, "env.kwargs")`` builds the class (the train stage
does it from the ``config_class`` attribute; an environment built directly does it itself).
The complete example is in docs/ENVIRONMENTS.md; the built-in environments' ``config.py`` use it.

Imports nothing heavy (no numpy, no gymnasium).
"""
from __future__ import annotations

from typing import Any

from rlpipe.config_build import (
    ConfigError, build, in_range, non_negative, one_of, positive, require, setting,
)

__all__ = ["ConfigError", "build", "in_range", "non_negative", "one_of", "positive", "require",
           "require_ordered", "setting"]


def require_ordered(settings: Any, section: str, *pairs: tuple[str, str]) -> None:
    """For each ``(low, high)`` pair of field names, require ``settings.low <= settings.high``;
    the error names ``<section>.<low>`` and the value of ``<section>.<high>``."""
    for lo, hi in pairs:
        a, b = getattr(settings, lo), getattr(settings, hi)
        require(a <= b, f"{section}.{lo}", f"must be <= {section}.{hi} ({b})", a)
