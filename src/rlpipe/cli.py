"""``rlpipe`` command line: evaluate, inspect or export checkpoints outside the DVC pipeline.

    rlpipe evaluate --checkpoint checkpoints/best.pt --episodes 50 --env-kwarg num_nodes=40
    rlpipe evaluate --checkpoint checkpoints/best.pt --policy random
    rlpipe inspect checkpoints/ckpt_ep000400.pt
    rlpipe export --checkpoint checkpoints/best.pt --output policy/policy.onnx
"""
from __future__ import annotations

import argparse
import json
import sys

from rlpipe.config import ConfigError
from rlpipe.stage_runner import run_stage

POLICIES = ("greedy", "sample", "random", "reference")  # rlpipe.evaluation.episodes.POLICIES


def _env_overrides(pairs: list[str]) -> dict:
    import yaml

    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--env-kwarg: expected KEY=VALUE, got {pair!r}")
        out[key.strip()] = yaml.safe_load(value)
    return out


def _evaluate(args) -> dict:
    """One policy block of eval/metrics.json (the same keys), on the evaluate stage's seeds."""
    from rlpipe.evaluation.runner import evaluate_checkpoint

    if args.episodes < 1:
        raise ConfigError(f"--episodes: must be >= 1, got {args.episodes}")
    if args.seed < 0:
        raise ConfigError(f"--seed: must be >= 0, got {args.seed}")
    return evaluate_checkpoint(args.checkpoint, args.episodes, args.seed, args.policy,
                               _env_overrides(args.env_kwarg), key="--env-kwarg")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="rlpipe", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    ev = sub.add_parser("evaluate", help="run a checkpoint's policy (or a baseline) without training")
    ev.add_argument("--checkpoint", required=True, help="checkpoint file or folder (mapped to CPU)")
    ev.add_argument("--episodes", type=int, default=50)
    ev.add_argument("--seed", type=int, default=0,
                    help="evaluation seed, as evaluate.seed: the episodes' seeds are derived from "
                         "it and are never training seeds (default: %(default)s)")
    ev.add_argument("--policy", default="greedy", choices=POLICIES,
                    help="the actor's argmax, its samples, uniform random actions, or the "
                         "environment's reference decisions (default: %(default)s)")
    ev.add_argument("--env-kwarg", action="append", default=[], metavar="KEY=VALUE",
                    help="override one of the checkpoint's env.kwargs (YAML value), e.g. "
                         "num_nodes=40 for a zero-shot test on larger graphs; repeatable")
    ins = sub.add_parser("inspect", help="print a checkpoint's counters, fingerprint and params")
    ins.add_argument("checkpoint")
    ex = sub.add_parser("export", help="export a checkpoint's policy to ONNX (needs the export "
                                       "extra: pip install -e '.[export]')")
    ex.add_argument("--checkpoint", required=True, help="checkpoint file or folder")
    ex.add_argument("--output", required=True, metavar="FILE",
                    help="the .onnx file; metadata.json is written beside it")
    ex.add_argument("--format", default="onnx", help="export format (only onnx; default: %(default)s)")
    args = parser.parse_args(argv)

    def run() -> int:
        if args.command == "evaluate":
            result = _evaluate(args)
        elif args.command == "export":
            from rlpipe.deploy.onnx_export import export_checkpoint

            done = export_checkpoint(args.checkpoint, args.output, args.format)
            result = {"model": str(done.model), "metadata": str(done.metadata),
                      "size_bytes": done.size_bytes, "export_seconds": round(done.seconds, 3),
                      "parity": done.parity}
        else:
            from rlpipe.checkpoints import load_checkpoint

            state = load_checkpoint(args.checkpoint)
            result = {k: state[k] for k in ("format_version", "fingerprint", "episode", "global_step", "update")}
            result["best_mean_reward"] = state["stats"]["best_mean_reward"]
            result["params"] = json.loads(state["params"])
        print(json.dumps(result, indent=2))
        return 0

    return run_stage("rlpipe", run)


if __name__ == "__main__":
    sys.exit(main())
