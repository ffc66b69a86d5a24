"""The evaluate stage: the trained checkpoints and the baselines on held-out episodes.

Reads the ``evaluate`` section and ``checkpoint.directory``; loads the checkpoints it names
(``final``: the newest periodic checkpoint, which a finished run writes at its end; ``best``:
best.pt), the environment and agent settings from the checkpoint itself (what was trained), and
plays ``evaluate.episodes`` episodes of every policy on every variant, all on the same seeds.
Everything is checked first (checkpoints, every variant's settings, that the networks fit every
variant's environment), then played, then written together (``eval/metrics.json``,
``eval/episodes.csv``): a bad setting or a failure leaves the previous outputs as they were.
"""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

from rlpipe import checkpoints as ckpt
from rlpipe.config import EVAL_CHECKPOINTS, ConfigError, EvaluateConfig, Params
from rlpipe.errors import CheckpointError
from rlpipe.evaluation import seeds as S
from rlpipe.evaluation.episodes import EvaluationError, run_episodes
from rlpipe.evaluation.report import episode_rows_csv, summarize
from rlpipe.evaluation.runner import (BATCH, checkpoint_agent, configure_torch, has_reference,
                                      make_envs, params_from_checkpoint, same_weights)
from rlpipe.io_utils import StagedWrites
from rlpipe.paths import EVAL_EPISODES_CSV, EVAL_METRICS

NAME = "evaluate"


def checkpoint_paths(directory: Path, which: str) -> dict[str, Path]:
    """``{"final": path, "best": path}`` for ``evaluate.checkpoints``; a missing one is an error."""
    out = {}
    for name in EVAL_CHECKPOINTS[which]:
        if name == "final":
            found = ckpt.list_checkpoints(directory)
            if not found:
                raise CheckpointError(
                    f"{directory.as_posix()}: no periodic checkpoint (ckpt_epNNNNNN.pt) to evaluate "
                    f"as 'final' (evaluate.checkpoints: {which}); run `dvc repro train` first, or "
                    "set evaluate.checkpoints: best when checkpoint.interval <= 0")
            out[name] = found[0][1]
        else:
            path = next((directory / ckpt.best_name(sep) for sep in (False, True)
                         if (directory / ckpt.best_name(sep)).exists()), None)
            if path is None:
                raise CheckpointError(
                    f"{directory.as_posix()}: no {ckpt.best_name(False)} to evaluate as 'best' "
                    f"(evaluate.checkpoints: {which}); run `dvc repro train` first")
            out[name] = path
    return out


def _same_run(states: dict[str, dict], paths: dict[str, Path]) -> Params:
    params = {n: params_from_checkpoint(s) for n, s in states.items()}
    first = next(iter(params))
    for name, p in params.items():
        if (p.env, p.agent) != (params[first].env, params[first].agent):
            raise CheckpointError(f"{paths[name]} and {paths[first]} come from different env/agent "
                                  "settings; evaluate the checkpoints of one run")
    return params[first]


def plan(cfg: EvaluateConfig, ckpt_dir: Path) -> tuple[Params, dict[str, Any], dict, dict]:
    """Load and check everything the evaluation needs: (params, agents per variant and
    checkpoint, environments per variant, {checkpoint: the earlier checkpoint with the same
    weights}). Raises ConfigError / CheckpointError."""
    paths = checkpoint_paths(ckpt_dir, cfg.checkpoints)
    states = {name: ckpt.load_checkpoint(p) for name, p in paths.items()}
    params = _same_run(states, paths)
    names = list(states)
    twins = {b: a for i, a in enumerate(names) for b in names[i + 1:]
             if same_weights(states[a], states[b])}
    envs, agents = {}, {}
    try:
        for variant, overrides in cfg.variants.items():
            key = f"evaluate.variants.{variant}"
            envs[variant] = make_envs(params.env, dict(overrides), key, min(cfg.episodes, BATCH))
            agents[variant] = {name: checkpoint_agent(state, params, envs[variant][0], key)
                               for name, state in states.items()}
    except BaseException:
        _close(envs)
        raise
    return params, agents, envs, twins


def _close(envs: dict) -> None:
    for group in envs.values():
        for e in group:
            e.close()


def evaluate_all(cfg: EvaluateConfig, params: Params, agents: dict, envs: dict,
                 twins: dict | None = None, log=print) -> tuple[dict, list]:
    """Play every (variant, policy): ({variant: {policy: block}}, per-episode rows). A checkpoint
    with the same weights as an earlier one (``twins``: best.pt saved at the final rollout)
    reuses its episodes: they would be played exactly alike."""
    twins = twins or {}
    seeds = [S.episode_seed(cfg.seed, j, S.TEST) for j in range(cfg.episodes)]
    metrics: dict[str, dict] = {}
    rows: list = []
    for variant, group in envs.items():
        policies: list[tuple[str, str, Any]] = [
            (name, cfg.policy, agent) for name, agent in agents[variant].items()]
        for baseline in cfg.baselines:
            if baseline == "reference" and not has_reference(group):
                log(f"evaluate: {variant} / reference: left out, {params.env.id!r} has no "
                    "reference decisions")
                continue
            policies.append((baseline, baseline, None))
        metrics[variant] = {}
        played: dict[str, list] = {}
        for name, policy, agent in policies:
            t0 = time.perf_counter()
            if name in twins and twins[name] in played:
                results = played[name] = played[twins[name]]
                metrics[variant][name] = summarize(results)
                rows += [(variant, name, r) for r in results]
                log(f"evaluate: {variant} / {name}: the same weights as {twins[name]}, "
                    "the same episodes")
                continue
            try:
                results = run_episodes(group, seeds, policy, agent, params.env.action_masking,
                                       repr(params.env.id))
            except EvaluationError as e:
                raise ConfigError(f"evaluate.baselines: {e}") from None
            played[name] = results
            block = summarize(results)
            metrics[variant][name] = block
            rows += [(variant, name, r) for r in results]
            acc = block.get("reference_accuracy", {}).get("mean")
            log(f"evaluate: {variant} / {name} ({policy}): return {block['return']['mean']:.4g} "
                f"± {block['return']['sd']:.3g}" + ("" if acc is None else f", reference accuracy "
                f"{acc:.3f}") + f" over {len(results)} episodes ({time.perf_counter() - t0:.1f} s)")
    return metrics, rows


def run(sections: dict, root: Path = Path(".")) -> int:
    cfg: EvaluateConfig = sections["evaluate"]
    root = Path(root)
    ckpt_dir = root / sections["checkpoint.directory"]
    t0 = time.perf_counter()
    params, agents, envs, twins = plan(cfg, ckpt_dir)
    configure_torch()
    try:
        metrics, rows = evaluate_all(cfg, params, agents, envs, twins)
    finally:
        _close(envs)
    writes = StagedWrites()
    try:
        writes.write_text(root / EVAL_METRICS, json.dumps(metrics, indent=2) + "\n")
        writes.write_text(root / EVAL_EPISODES_CSV, episode_rows_csv(rows))
        writes.commit()
    except BaseException:
        writes.abort()
        raise
    print(f"evaluate: wrote {EVAL_METRICS.as_posix()} and {EVAL_EPISODES_CSV.as_posix()} "
          f"({time.perf_counter() - t0:.1f} s)", file=sys.stderr)
    return 0
