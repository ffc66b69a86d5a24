"""The machinery of typed params: checks, field declarations, building a frozen dataclass from
a mapping with errors that name the key (``train.actor_lr: must be between ...``).

:mod:`rlpipe.config` declares the sections with it; environments declare their ``config_class``
with it too (``env.kwargs``). Imports nothing heavy.
"""
from __future__ import annotations

import dataclasses
import math
import re
from dataclasses import field, fields
from pathlib import Path
from typing import Any, Callable, Mapping, Union, get_args, get_origin, get_type_hints

AUTO = "auto"


class ConfigError(ValueError):
    """A bad value in params.yaml; the message names the key and what is allowed."""


# --------------------------------------------------------------------------- validation helpers
def require(cond: bool, key: str, allowed: str, value: Any) -> None:
    """Raise :class:`ConfigError` ``"<key>: <allowed>, got <value>"`` unless ``cond``."""
    if not cond:
        raise ConfigError(f"{key}: {allowed}, got {value!r}")


_check = require  # the short name the params sections of config.py use


def positive(key: str, v: Any) -> None:
    require(v > 0, key, "must be > 0", v)


def non_negative(key: str, v: Any) -> None:
    require(v >= 0, key, "must be >= 0", v)


def in_range(lo: float, hi: float) -> Callable[[str, Any], None]:
    def check(key: str, v: Any) -> None:
        require(lo <= v <= hi, key, f"must be between {lo} and {hi}", v)

    return check


def one_of(*choices: str) -> Callable[[str, Any], None]:
    def check(key: str, v: Any) -> None:
        require(v in choices, key, f"must be one of {', '.join(map(repr, choices))}", v)

    return check


def int_or_auto(lo: int) -> Callable[[str, Any], None]:
    """An int >= lo, or the string 'auto' (exact spelling)."""

    def check(key: str, v: Any) -> None:
        if isinstance(v, str):
            require(v == AUTO, key, f"must be an integer or '{AUTO}'", v)
        else:
            require(v >= lo, key, f"must be an integer >= {lo} or '{AUTO}'", v)

    return check


def resolve_interval(setting: int | str, total: int, points: int) -> int:
    """An interval setting in episodes: ``'auto'`` -> about ``points`` per run of ``total``
    episodes (at least 1); ``<= 0`` -> 0 (off); else the number itself."""
    if setting == AUTO:
        return max(1, total // points)
    return max(0, int(setting))


def setting(default: Any, check: Callable[[str, Any], None] | None = None,
            allowed: str | None = None, **kw: Any) -> Any:
    """A dataclass field with its default and an optional ``check(key, value)`` (e.g.
    ``in_range(1, 100)``) that :func:`build` runs; ``allowed`` describes the type in errors."""
    meta: dict[str, Any] = {"check": check} if check else {}
    if allowed:
        meta["allowed"] = allowed  # how to describe the type in errors
    if isinstance(default, (list, dict, tuple)):
        return field(default_factory=lambda d=default: type(d)(d), metadata=meta, **kw)
    return field(default=default, metadata=meta, **kw)


_field = setting  # the short name the params sections of config.py use


def _type_name(tp: Any) -> str:
    origin = get_origin(tp)
    if origin is Union:
        return " or ".join(_type_name(a) for a in get_args(tp) if a is not type(None))
    if origin in (tuple, list):
        return f"a list of {_type_name(get_args(tp)[0])}"
    if dataclasses.is_dataclass(tp):
        return f"a mapping of settings ({', '.join(f.name for f in fields(tp))})"
    return {int: "an integer", float: "a number", bool: "true/false", str: "a string",
            dict: "a mapping"}.get(
        tp, getattr(tp, "__name__", str(tp))
    )


def _coerce(key: str, tp: Any, value: Any) -> Any:
    """Check ``value`` against the annotation ``tp``; return it converted (int -> float, list -> tuple)."""
    origin = get_origin(tp)
    if origin is Union:
        args = [a for a in get_args(tp) if a is not type(None)]
        if value is None and type(None) in get_args(tp):
            return None
        for a in args:
            try:
                return _coerce(key, a, value)
            except ConfigError:
                continue
        raise ConfigError(f"{key}: expected {_type_name(tp)}, got {value!r}")
    if origin in (tuple, list):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{key}: expected {_type_name(tp)}, got {value!r}")
        inner = get_args(tp)[0]
        return tuple(_coerce(f"{key}[{i}]", inner, v) for i, v in enumerate(value))
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{key}: expected true/false, got {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{key}: expected an integer, got {value!r}")
        return value
    if tp is float:
        if isinstance(value, str):  # YAML reads 3e-4 (no dot) as a string
            try:
                value = float(value)
            except ValueError:
                raise ConfigError(f"{key}: expected a number, got {value!r}") from None
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{key}: expected a number, got {value!r}")
        if not math.isfinite(value):
            raise ConfigError(f"{key}: expected a finite number, got {value!r}")
        return float(value)
    if dataclasses.is_dataclass(tp):  # a nested section (experiment.wandb): its own keys, checked
        if not isinstance(value, Mapping):
            raise ConfigError(f"{key}: expected {_type_name(tp)}, got {value!r}")
        return build(tp, value, key)
    if tp is dict:
        if not isinstance(value, Mapping):
            raise ConfigError(f"{key}: expected a mapping of settings, got {value!r}")
        return dict(value)
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{key}: expected a string, got {value!r}")
        return value
    raise TypeError(f"unsupported config type {tp!r} for {key}")


def build(cls: type, data: Mapping[str, Any] | None, section: str) -> Any:
    """Build the frozen dataclass ``cls`` from a mapping, naming ``section.key`` in every error."""
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        raise ConfigError(f"{section}: expected a mapping of settings, got {data!r}")
    prepare = getattr(cls, "prepare", None)  # defaults that depend on other given keys
    if prepare is not None:
        data = prepare(data, section)
    hints = get_type_hints(cls)
    known = {f.name: f for f in fields(cls)}
    for name, why in getattr(cls, "REMOVED", {}).items():  # keys that once existed: say why
        if name in data:
            raise ConfigError(f"{section}.{name}: removed, {why}; delete the line")
    unknown = sorted(set(data) - set(known))
    if unknown:
        raise ConfigError(
            f"{section}.{unknown[0]}: unknown key (allowed keys: {', '.join(sorted(known))})"
        )
    kwargs = {}
    for name, value in data.items():
        key = f"{section}.{name}"
        try:
            value = _coerce(key, hints[name], value)
        except ConfigError:
            allowed = known[name].metadata.get("allowed")
            if allowed is None:
                raise
            raise ConfigError(f"{key}: expected {allowed}, got {value!r}") from None
        check = known[name].metadata.get("check")
        if check is not None and value is not None:
            if isinstance(value, tuple):
                for i, v in enumerate(value):
                    check(f"{key}[{i}]", v)
            else:
                check(key, value)
        kwargs[name] = value
    obj = cls(**kwargs)
    post = getattr(obj, "validate", None)
    if post is not None:
        post(section)
    return obj


def relative_path(key: str, value: str) -> None:
    """A path setting must stay inside the repository: relative, no '..'."""
    p = Path(value)
    require(
        not p.is_absolute() and ".." not in p.parts and value.strip() != "",
        key,
        "must be a relative path inside the repository (no absolute path, no '..')",
        value,
    )


_DEVICE = re.compile(r"^(auto|cpu|cuda(:\d+)?)$")


def device_name(key: str, v: Any) -> None:
    """'auto', 'cpu', 'cuda' or 'cuda:N' (whether that GPU exists is checked when training starts)."""
    require(bool(_DEVICE.match(v)), key, "must be 'auto', 'cpu', 'cuda' or 'cuda:N'", v)


def bool_or_auto(key: str, v: Any) -> None:
    """true, false, or the string 'auto' (exact spelling)."""
    if isinstance(v, str):
        require(v == AUTO, key, f"must be true, false or '{AUTO}'", v)
