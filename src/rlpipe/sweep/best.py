"""The best setting of a sweep: chosen by ``sweep.objective``, written as a params fragment.

``best_params.yaml`` holds the setting's keys as nested params (``train: {actor_lr: ...}``): copy
it into params.yaml as it is, or pass each key to ``dvc exp run -S`` (its header comment gives
the command line). In a grid the best setting is the one whose mean across seeds of the
objective's metric is best; in a search it is the study's best trial.
"""
from __future__ import annotations

from typing import Any, Mapping, Sequence

import yaml

from rlpipe.sweep.grid import set_dotted
from rlpipe.sweep.objective import better


def grid_best(settings: Mapping[str, Any], values: Mapping[str, dict], metric: str,
              direction: str, order: Sequence[str]) -> dict | None:
    """``settings``: metrics.json's per-label entries; ``values``: label -> the setting's keys."""
    best = None
    for label in order:
        mean = settings.get(label, {}).get(metric, {}).get("mean")
        if mean is not None and (best is None or better(mean, best["value"], direction)):
            best = {"metric": metric, "direction": direction, "value": mean, "setting": label,
                    "seeds": settings[label]["seeds"], "params": dict(values[label])}
    return best


def fragment(params: Mapping[str, Any]) -> dict:
    """Dotted keys -> the nested mapping params.yaml uses."""
    out: dict = {}
    for key, value in params.items():
        set_dotted(out, key, value)
    return out


def set_args(params: Mapping[str, Any]) -> list[str]:
    """``dvc exp run -S`` arguments (``key=value``, values as YAML flow text)."""
    return [f"{k}={yaml.safe_dump(v, default_flow_style=True).strip().removesuffix('...').strip()}"
            for k, v in params.items()]


def best_params_text(best: dict | None, how: str) -> str:
    if best is None:
        return f"# {how}: no setting finished, so none is best yet.\n{{}}\n"
    args = " ".join(f"-S '{a}'" for a in set_args(best["params"]))
    head = (f"# Best setting of the sweep ({how}): {best['setting']}\n"
            f"# {best['metric']} {best['value']:.6g} ({best['direction']}d; mean of "
            f"{best['seeds']} seeds). Copy into params.yaml, or run:\n"
            f"#   dvc exp run {args}\n")
    body = yaml.safe_dump(fragment(best["params"]), sort_keys=False) if best["params"] else "{}\n"
    return head + body
