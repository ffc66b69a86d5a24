"""The ``evaluate`` section of params.yaml (a section of :class:`rlpipe.config.Params`, kept in a
module of its own so that config.py stays small). Imports nothing heavy."""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Mapping

from rlpipe.config_build import _check, _field, in_range, one_of

_VARIANT_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")
EVAL_CHECKPOINTS = {"final": ("final",), "best": ("best",), "both": ("final", "best")}


@dataclass(frozen=True)
class EvaluateConfig:
    """``evaluate``: the trained policy on held-out episodes, beside baselines (the evaluate stage).

    Every (variant, policy) plays the same episodes: seeds derived from ``seed`` so that they
    never overlap the training seeds (rlpipe.evaluation.seeds, docs/DESIGN.md). Changing this
    section re-runs the evaluate stage (and the figures), never training.
    """

    #: episodes per variant and policy.
    episodes: int = _field(50, in_range(1, 1_000_000))
    #: evaluation seed: the episodes' reset seeds are derived from it (never a training seed).
    seed: int = _field(0, in_range(0, 2**32 - 1))
    #: the checkpoints' actions: greedy (the distribution's mode) or sample (the stochastic policy).
    policy: str = _field("greedy", one_of("greedy", "sample"))
    #: which checkpoints: final (the newest periodic checkpoint: the end of training), best
    #: (best.pt), or both.
    checkpoints: str = _field("both", one_of(*EVAL_CHECKPOINTS))
    #: name -> settings replacing entries of the trained env.kwargs ({} = as trained); e.g.
    #: {trained: {}, zero_shot_2x: {num_nodes: 40}}.
    variants: dict = _field({"trained": {}})
    #: baseline policies on the same episodes: random (uniform actions) and reference (the
    #: environment's reference decisions; left out for an environment that has none).
    baselines: tuple[str, ...] = _field(("random", "reference"), one_of("random", "reference"))

    def validate(self, s: str) -> None:
        _check(len(self.variants) > 0, f"{s}.variants", "must name at least one setting, e.g. "
               "{trained: {}}", self.variants)
        for name, overrides in self.variants.items():
            _check(isinstance(name, str) and bool(_VARIANT_NAME.match(name)), f"{s}.variants",
                   "names must be letters, digits, '_', '.' or '-'", name)
            _check(isinstance(overrides, Mapping) and all(isinstance(k, str) for k in overrides),
                   f"{s}.variants.{name}", "must map env.kwargs settings to values ({} = as "
                   "trained)", overrides)
        _check(len(set(self.baselines)) == len(self.baselines), f"{s}.baselines",
               "must list each baseline at most once", list(self.baselines))
