"""The export stage (``deploy/dvc.yaml``, a DVC project of its own): the run's best checkpoint
-> ``deploy/policy/policy.onnx`` and ``deploy/policy/metadata.json``.

Why the best checkpoint and not the final one: ``best.pt`` (``best/`` with
``checkpoint.store_separately``) has one name whatever the run's length, so the stage's input is
known before the run ends; it exists in every run that finished a rollout, also with
``checkpoint.interval <= 0`` (no periodic or final checkpoints); and it is the policy of the
run's reported result (``best_mean_reward``). ``rlpipe export --checkpoint`` exports any other.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from rlpipe.checkpoints import best_name
from rlpipe.errors import InputFileError
from rlpipe.paths import EXPORT_MODEL

NAME = "export"


def best_checkpoint(cfg, root: str | Path = ".") -> Path:
    """The best checkpoint of the run ``checkpoint`` section ``cfg`` describes, the run's
    folders being relative to ``root``."""
    return Path(root) / cfg.directory / best_name(cfg.store_separately)


def run(sections: dict[str, Any], root: str = ".", out: str = "policy") -> int:
    """Export ``<root>/<checkpoint.directory>/best.pt`` to ``<out>/policy.onnx``."""
    from rlpipe.deploy.onnx_export import export_checkpoint

    source = best_checkpoint(sections["checkpoint"], root)
    if not source.exists():
        raise InputFileError(f"{source}: not found; the train stage writes it (run `dvc repro` "
                             "at the repository root first)")
    result = export_checkpoint(source, Path(out) / EXPORT_MODEL)
    p = result.parity
    print(f"{NAME}: {source} -> {result.model} ({result.size_bytes / 1024:.0f} KiB, traced in "
          f"{result.seconds:.2f} s) and {result.metadata}; parity on {p['states']} states: max "
          f"difference {p['max_abs_difference']:.2g}, greedy actions differing: "
          f"{p['greedy_actions_differing']} (ties {p['greedy_ties']})")
    return 0
