"""Assemble and run a training run: environments, agent, hooks, resume, signals, run.json."""
from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import torch

from rlpipe import checkpoints as ckpt
from rlpipe.agents.device import describe_device, resolve_device
from rlpipe.agents.spaces import check_spaces
from rlpipe.config import ConfigError, Params, fingerprint, params_digest
from rlpipe.envs import contract
from rlpipe.errors import CheckpointError, RlpipeError
from rlpipe.events import RunInfo
from rlpipe.hooks.base import HookList
from rlpipe.hooks.capture import CaptureHook
from rlpipe.hooks.checkpoint import CheckpointHook
from rlpipe.hooks.export import RolloutExportHook
from rlpipe.hooks.live import LiveHook
from rlpipe.hooks.metrics import MetricsHook
from rlpipe.hooks.progress import ProgressHook
from rlpipe.hooks.text_log import TextLogHook
from rlpipe.io_utils import atomic_write_text
from rlpipe.paths import CAPTURES_DIR, LIVE_DIR, ROLLOUTS_DIR, RUN_JSON, TEXT_LOG
from rlpipe.train.budget import Budget
from rlpipe.train.env_group import LocalEnvs
from rlpipe.train.env_workers import WorkerEnvs
from rlpipe.train.environment import env_settings, make_env
from rlpipe.train.trainer import EnvironmentFailure, Trainer

EXIT_OK, EXIT_NAN, EXIT_SIGINT, EXIT_SIGTERM = 0, 3, 130, 143


def build_components(params: Params, device: torch.device | None = None):
    """The environment group (:mod:`rlpipe.train.env_group`, in process or in
    ``train.env_workers`` processes), agent and algorithm for ``params`` (no files touched);
    ``device`` defaults to ``train.device`` resolved on this machine."""
    settings = env_settings(params.env)
    n_envs, n_workers = params.train.num_envs, params.train.env_workers
    if n_workers:
        envs = WorkerEnvs(params.env, settings, n_envs, n_workers, make_env(params.env, settings))
    else:
        envs = LocalEnvs([make_env(params.env, settings) for _ in range(n_envs)])
    template = envs.template
    # the agent's modules load after the envs are made: a bad env.id fails before them (and
    # before torch_geometric, which only a graph agent loads)
    from rlpipe.agents.algorithms import build_algorithm
    from rlpipe.agents.normalize import resolve_normalization
    from rlpipe.agents.policy import build_agent

    obs_spec, act_spec = check_spaces(template.observation_space, template.action_space)
    normalize = resolve_normalization(params.train.normalize_observations, obs_spec.kind,
                                      act_spec.kind)
    agent = build_agent(template.observation_space, template.action_space, params.agent, normalize,
                        resolve_device(params.train.device) if device is None else device)
    return envs, agent, build_algorithm(agent, params.train)


@contextmanager
def _graceful_stop(trainer: Trainer) -> Iterator[None]:
    """First SIGINT/SIGTERM: finish the rollout in flight, checkpoint, stop. Second: abort."""

    def handler(signum, frame):
        if trainer.stop_reason is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt
        trainer.stop_reason = signal.Signals(signum).name

    old = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)


def _run_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def _check_folder(key: str, root: Path, rel: str) -> None:
    """A folder setting whose path (or a parent) is an existing file fails before anything is written."""
    p = root
    for part in Path(rel).parts:
        p = p / part
        if p.exists() and not p.is_dir():
            raise ConfigError(f"{key}: must name a folder, but {p.relative_to(root).as_posix()} "
                              f"is a file, got {rel!r}")


_PARTIAL_CHECKPOINT_DIR = re.compile(r"^\.(ckpt_ep\d{6,}|best)\.\w{8}$")  # save_checkpoint's mkdtemp


def _remove_leftovers(ckpt_dir: Path, out_dir: Path, live_dir: Path) -> int:
    """Delete the temporary files of atomic writes that a kill cut short (``.<name>.<random>.tmp``)
    so that they never become part of the DVC outputs; returns how many were removed."""
    removed = 0
    for folder in (ckpt_dir, out_dir, out_dir / CAPTURES_DIR, out_dir / ROLLOUTS_DIR, live_dir):
        if not folder.is_dir():
            continue
        for p in folder.iterdir():
            if p.name.startswith(".") and p.name.endswith(".tmp") and p.is_file():
                p.unlink()
            elif folder == ckpt_dir and _PARTIAL_CHECKPOINT_DIR.match(p.name) and p.is_dir():
                shutil.rmtree(p)
            else:
                continue
            removed += 1
    return removed


def _capture_hook(params: Params, directory: Path, agent, env) -> CaptureHook:
    """Captures on the environment's probe states (made by a separate environment instance, so
    the training environments' generators are never touched), else the captured episodes' own."""
    cap = params.capture

    def probes():
        probe_env = make_env(params.env)
        try:
            return contract.probe_states(probe_env, cap.probe_graphs, cap.probe_seed)
        finally:
            probe_env.close()

    return CaptureHook(directory, cap.episodes, cap.every, cap.last, cap.probe_graphs, agent,
                       probes, lambda obs: contract.node_kinds(env, obs, _num_nodes(obs)))


def _num_nodes(obs) -> int:
    nodes = getattr(obs, "nodes", None)
    return int(nodes.shape[0]) if nodes is not None else 0


def _reached_stop_at(state: dict | None, stop_at: float | None) -> float | None:
    """The best evaluation return of a checkpoint when it reached ``train.stop_at`` (a run that
    stopped there is finished, like one that spent its budget), else None."""
    best = ((state or {}).get("evaluation") or {}).get("best")
    return best if stop_at is not None and best is not None and best >= stop_at else None


def _evaluator(params: Params, budget: Budget):
    """Evaluation during training (train.eval_interval), or None when it is off."""
    cfg = params.train
    interval = budget.interval(cfg.eval_interval, 20)
    if interval.every <= 0:
        return None
    from rlpipe.evaluation.during_training import TrainingEvaluator

    return TrainingEvaluator(lambda: make_env(params.env), interval, cfg.eval_episodes, cfg.seed,
                             params.env.action_masking, cfg.stop_at)


def train(params: Params, root: Path = Path("."), extra_hooks=(), console: bool = True) -> int:
    """Train per ``params`` in ``root``; resume from the newest valid checkpoint. Returns an exit code."""
    root = Path(root)
    device = resolve_device(params.train.device)  # a missing GPU is a params error: before any file
    fp = fingerprint(params)
    budget = Budget.of(params.train)
    target = params.train.episodes or 0
    ckpt_dir = root / params.checkpoint.directory
    out_dir = root / params.experiment.directory
    _check_folder("experiment.directory", root, params.experiment.directory)
    _check_folder("checkpoint.directory", root, params.checkpoint.directory)

    plan = ckpt.find_resumable(ckpt_dir, fp)
    restart_reason = None
    if plan.mismatch is not None:
        path, old_fp = plan.mismatch
        msg = (f"checkpoint {path} was made with other params (fingerprint {old_fp}, current {fp})")
        if params.train.on_mismatch == "error":
            raise CheckpointError(msg + "; set train.on_mismatch: restart to start afresh, "
                                  "or restore the params of that run")
        restart_reason = msg
    removed = _remove_leftovers(ckpt_dir, out_dir, root / LIVE_DIR)
    if plan.state is not None and budget.done(plan.state["episode"], plan.state["global_step"]):
        print(f"train: checkpoint {plan.path} is at episode {plan.state['episode']} (step "
              f"{plan.state['global_step']}), the budget {budget.key} ({budget.total}) is spent; "
              "nothing to do", file=sys.stderr)
        return EXIT_OK
    reached = _reached_stop_at(plan.state, params.train.stop_at)
    if reached is not None:
        print(f"train: checkpoint {plan.path} (episode {plan.state['episode']}) has an evaluation "
              f"return {reached:.6g} >= train.stop_at ({params.train.stop_at}); nothing to do",
              file=sys.stderr)
        return EXIT_OK

    if params.train.torch_threads:
        torch.set_num_threads(params.train.torch_threads)
    # Trained GAT updates produce subnormal floats that this class of CPU handles ~1.6x slower
    # (bench/ measured 3.3 s vs 2.1 s per update); flushing them to zero costs no accuracy.
    torch.set_flush_denormal(True)
    torch.manual_seed(params.train.seed)  # network initialisation is part of the seeded run
    envs, agent, algorithm = build_components(params, device)
    with contextlib.closing(envs):   # worker processes end on every exit path
        hooks = HookList()
        evaluator = _evaluator(params, budget)
        trainer = Trainer(params, envs, agent, algorithm, hooks, evaluator)
        trainer.seed(params.train.seed)
        if plan.state is not None:
            try:
                trainer.load_state_dict(plan.state)
            except (KeyError, RuntimeError, ValueError) as e:
                raise CheckpointError(f"{plan.path}: does not fit the current agent/envs: {e}") from None
        if plan.mismatch is not None:
            ckpt.archive_checkpoints(ckpt_dir, plan.mismatch[1])

        exp = params.experiment
        hooks.hooks = [
            TextLogHook(out_dir / TEXT_LOG, console=console),
            MetricsHook(out_dir, exp.write_interval, exp.step_log_interval, exp.wandb),
            LiveHook(root),
            RolloutExportHook(out_dir / ROLLOUTS_DIR, exp.export_rollouts),
            _capture_hook(params, out_dir / CAPTURES_DIR, agent, envs.template),
            CheckpointHook(ckpt_dir, params.checkpoint.interval, params.checkpoint.keep_last,
                           params.checkpoint.store_separately),
            *extra_hooks,
            *([ProgressHook()] if params.train.progress_bar and console else []),
        ]
        run = RunInfo(
            params=params, root=root, fingerprint=fp, params_digest=params_digest(params),
            start_episode=trainer.episode, target_episodes=target, budget=budget,
            start_global_step=trainer.global_step,
            resumed_from=os.path.relpath(plan.path, root) if plan.state is not None else None,
            restart_reason=restart_reason,
            env=trainer.env_description,
            agent_kind=agent.kind,
            action_layout=agent.actions.layout(),
            device=describe_device(agent.device),
            normalize_observations=agent.normalizer is not None,
            notes=tuple(f"skipped checkpoint: {m}" for m in plan.skipped) + ((
                f"removed {removed} temporary files left by an interrupted run",) if removed else ())
            + ((plan.migrated,) if plan.migrated and plan.state is not None else ())
            + trainer.resume_notes,
        )
        previous = _run_json(out_dir / RUN_JSON) if plan.state is not None else {}
        started = time.monotonic()
        status, code = "finished", EXIT_OK
        try:
            with _graceful_stop(trainer):
                result = trainer.run(run)
            if result.stop_reason == "nan":
                status, code = "stopped: NaN/inf loss", EXIT_NAN
            elif result.stop_reason:
                status = f"interrupted ({result.stop_reason})"
                code = EXIT_SIGTERM if result.stop_reason == "SIGTERM" else EXIT_SIGINT
            atomic_write_text(out_dir / RUN_JSON, json.dumps({
                "status": status, "episodes": trainer.episode, "global_step": trainer.global_step,
                "updates": trainer.update_count,
                "wall_seconds": float(previous.get("wall_seconds", 0.0)) + time.monotonic() - started,
                "resumed_count": trainer.resumed_count, "params_digest": run.params_digest,
                "fingerprint": fp,
            }, indent=2))
            hooks.close()  # the last flushes can fail too (a full disk): a write error like any other
        except EnvironmentFailure as e:
            hooks.on_warning(f"{e}; the last checkpoint is kept")
            raise RlpipeError(str(e)) from None
        except OSError as e:
            hooks.on_warning(f"write failed: {e}; the previous checkpoint stays valid")
            raise RlpipeError(f"write failed: {e}") from None
        finally:
            # after an error, closing must not replace its message (a full disk fails every flush)
            for h in [*hooks.hooks, *([evaluator] if evaluator else [])]:
                with contextlib.suppress(Exception):
                    h.close()
        if code == EXIT_NAN:
            print("train: stopped because a loss became NaN/inf (train.on_nan: stop); "
                  "the last good state is checkpointed", file=sys.stderr)
        return code


def run(sections: dict, no_progress: bool = False) -> int:
    """The stage: train per the sections it reads (other sections keep their defaults)."""
    from dataclasses import replace

    params = replace(Params.from_dict({}), **sections)
    if no_progress:
        params = replace(params, train=replace(params.train, progress_bar=False))
    return train(params, Path("."))
