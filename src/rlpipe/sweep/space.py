"""``sweep.space``: dotted training key -> a distribution to search (pure; optuna imported lazily).

A distribution is written as one of:

* ``{low: 1e-4, high: 1e-2, log: true}``: a float in [low, high] (``log`` optional, default false;
  ``step`` optional: a grid of that step from low);
* the same with integer bounds (``{low: 16, high: 128}``): an integer (``log`` and ``step`` too);
* a list of choices (``[16, 32, 64]``): one of them (numbers, strings, booleans or null).

:func:`check_space` validates the section's shape (it runs when params.yaml is read);
whether each key is a real training setting is checked by building one trial's params per
corner of the space (:func:`corners`), before any trial starts.
"""
from __future__ import annotations

import json
import math
from typing import Any, Mapping

from rlpipe.config_build import ConfigError

RANGE_KEYS = ("low", "high", "log", "step")
CHOICE_TYPES = (str, int, float, bool, type(None))


def _number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def check_distribution(key: str, spec: Any) -> None:
    """Raise :class:`ConfigError` naming ``key`` when ``spec`` is not a distribution."""
    if isinstance(spec, list):
        if not spec:
            raise ConfigError(f"{key}: a list of choices must not be empty")
        bad = [v for v in spec if not isinstance(v, CHOICE_TYPES)]
        if bad:
            raise ConfigError(f"{key}: choices must be numbers, strings, booleans or null, "
                              f"got {bad[0]!r}")
        texts = [json.dumps(v) for v in spec]
        if len(set(texts)) != len(texts):
            raise ConfigError(f"{key}: must not repeat a choice, got {spec!r}")
        return
    if not isinstance(spec, Mapping):
        raise ConfigError(f"{key}: must be {{low, high, log}} or a list of choices, got {spec!r}")
    unknown = sorted(set(spec) - set(RANGE_KEYS))
    if unknown:
        raise ConfigError(f"{key}: unknown distribution key {unknown[0]!r} "
                          f"(allowed: {', '.join(RANGE_KEYS)}; or a list of choices)")
    for name in ("low", "high"):
        if name not in spec:
            raise ConfigError(f"{key}: missing {name} (a range is {{low, high, log}})")
        if not _number(spec[name]):
            raise ConfigError(f"{key}.{name}: must be a finite number, got {spec[name]!r}")
    low, high = spec["low"], spec["high"]
    if low > high:
        raise ConfigError(f"{key}: low must be <= high, got low={low!r} > high={high!r}")
    log = spec.get("log", False)
    if not isinstance(log, bool):
        raise ConfigError(f"{key}.log: expected true/false, got {log!r}")
    if log and low <= 0:
        raise ConfigError(f"{key}: a log range needs low > 0, got low={low!r}")
    step = spec.get("step")
    if step is not None:
        if not _number(step) or step <= 0:
            raise ConfigError(f"{key}.step: must be a number > 0, got {step!r}")
        if log:
            raise ConfigError(f"{key}: step and log cannot be combined")


def is_int_range(spec: Any) -> bool:
    return (isinstance(spec, Mapping) and all(isinstance(spec[k], int) for k in ("low", "high"))
            and isinstance(spec.get("step", 1), int))


def check_space(section: str, space: Mapping[str, Any], train_sections: tuple[str, ...]) -> None:
    """The shape of ``sweep.space`` (keys dotted training keys, values distributions)."""
    for name, spec in space.items():
        key = f"{section}.space.{name}"
        if not (isinstance(name, str) and name.count(".") >= 1 and all(name.split("."))):
            raise ConfigError(f"{key}: must be a dotted param key such as train.actor_lr")
        if name.split(".")[0] not in train_sections:
            raise ConfigError(f"{key}: must name a training section ({', '.join(train_sections)})")
        if name == "train.seed":
            raise ConfigError(f"{key}: seeds come from {section}.seeds, not the space")
        check_distribution(key, spec)


def corners(space: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Settings that together use every bound and every choice of the space once (to check
    that each value is a valid training setting before any trial starts)."""
    values = {k: (list(s) if isinstance(s, list) else [s["low"], s["high"]])
              for k, s in space.items()}
    n = max((len(v) for v in values.values()), default=0)
    return [{k: v[min(i, len(v) - 1)] for k, v in values.items()} for i in range(n)]


def to_optuna(space: Mapping[str, Any]) -> dict[str, Any]:
    """The space as Optuna distributions, in the space's key order."""
    from optuna.distributions import (CategoricalDistribution, FloatDistribution,
                                      IntDistribution)

    out = {}
    for name, spec in space.items():
        if isinstance(spec, list):
            out[name] = CategoricalDistribution(spec)
        elif is_int_range(spec):
            out[name] = IntDistribution(spec["low"], spec["high"], log=spec.get("log", False),
                                        step=spec.get("step", 1))
        else:
            out[name] = FloatDistribution(float(spec["low"]), float(spec["high"]),
                                          log=spec.get("log", False), step=spec.get("step"))
    return out


def format_value(value: Any) -> str:
    """A sampled value in labels: 4 significant digits for floats."""
    if isinstance(value, float):
        return f"{value:.4g}"
    return value if isinstance(value, str) else json.dumps(value)
