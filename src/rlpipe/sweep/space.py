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
from typing import Any, Mapping

from rlpipe.config_build import ConfigError  # noqa: F401 - raised by callers' checks
from rlpipe.config_sweep import (  # noqa: F401 - the section's checks live with the section
    CHOICE_TYPES, RANGE_KEYS, check_distribution, check_space)

def is_int_range(spec: Any) -> bool:
    return (isinstance(spec, Mapping) and all(isinstance(spec[k], int) for k in ("low", "high"))
            and isinstance(spec.get("step", 1), int))


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
