"""The sweep stage: plan the trials, skip finished ones, run the rest on Ray, aggregate.

Outputs, under the output folder (``sweeps/`` for ``dvc --cd sweeps repro``):

* ``trials/<trial_id>/``: each trial's training folders and ``trial.json`` (kept between runs:
  a rerun skips finished trials and resumes the others from their checkpoints)
* ``results/episodes.parquet``, ``results/trials.csv``: see :mod:`rlpipe.sweep.aggregate`
* ``metrics.json``: per setting, mean and sd across seeds (``dvc metrics show``)
* ``figures/*.png``: see :mod:`rlpipe.sweep.figures`

Exit status: 0 every trial finished; 1 some trial failed after its retries (the others ran, the
results cover the finished ones, the message names the failed ones); 2 bad params or an
unreachable cluster, before any trial starts; 130 interrupted (SIGINT or SIGTERM).
"""
from __future__ import annotations

import contextlib
import json
import signal
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any, Callable, Iterator

from rlpipe.config import Params, SweepConfig
from rlpipe.errors import RlpipeError
from rlpipe.io_utils import StagedWrites
from rlpipe.paths import (SWEEP_BEST_PARAMS, SWEEP_EPISODES, SWEEP_FIGURES_DIR, SWEEP_METRICS,
                          SWEEP_TRIALS_TABLE)
from rlpipe.sweep import records
from rlpipe.sweep.grid import Trial, expand, settings

EXIT_TRIALS_FAILED = 1

Say = Callable[[str], None]


def _stdout(msg: str) -> None:
    print(f"sweep: {msg}", flush=True)


def _stderr(msg: str) -> None:
    print(f"sweep: {msg}", file=sys.stderr, flush=True)


def plan_text(params: Params, trials: list[Trial]) -> str:
    n_settings = len(settings(params.sweep.grid))
    seeds = len(params.sweep.seeds)
    return (f"{len(trials)} trial{'s' if len(trials) != 1 else ''} = {n_settings} setting"
            f"{'s' if n_settings != 1 else ''} x {seeds} seed{'s' if seeds != 1 else ''}, "
            f"{trials[0].params.train.episodes if trials else 0} episodes each")


SWEEP_PACKAGES = ("ray", "pandas", "seaborn", "scipy")  # the `sweep` extra of pyproject.toml


def check_packages(search: str = "grid") -> None:
    import importlib.util

    names = SWEEP_PACKAGES + (("optuna",) if search == "optuna" else ())
    missing = [name for name in names if importlib.util.find_spec(name) is None]
    if missing:
        raise RlpipeError(f"the sweep needs {', '.join(missing)}: pip install -e '.[sweep]'")


def check_environments(trials: list[Trial]) -> None:
    """Make each distinct environment once here, so that a bad ``env.id`` (or env setting) of
    the grid fails before any trial starts instead of on every worker."""
    from rlpipe.config import ConfigError
    from rlpipe.train.environment import make_env

    seen: set[str] = set()
    for trial in trials:
        key = json.dumps(trial.params.to_dict()["env"], sort_keys=True)
        if key in seen:
            continue
        seen.add(key)
        try:
            make_env(trial.params.env).close()
        except ConfigError as e:
            if any(k.startswith("env.") for k in trial.values):
                raise ConfigError(f"sweep.grid: {e} (setting {trial.label})") from None
            raise


def run_pending(params: Params, todo: list[Trial], trials_dir: Path, say: Say,
                feed: Any = None) -> dict:
    """Start or join Ray, run ``todo`` (and what ``feed`` adds), leave Ray; returns the outcomes
    by trial id."""
    from rlpipe.sweep.cluster import ClusterError, connect, disconnect
    from rlpipe.sweep.driver import Driver

    cfg = params.sweep
    started = time.monotonic()
    cluster = connect(cfg.address, cfg.max_concurrent, cfg.cpus_per_trial,
                      {t.params.env.id for t in todo} or {params.env.id})
    try:
        say(f"{cluster.describe()} in {time.monotonic() - started:.1f} s")
        if cfg.cpus_per_trial > cluster.max_node_cpus:
            raise ClusterError(f"sweep.cpus_per_trial: a trial needs {cfg.cpus_per_trial:g} CPUs "
                               f"but no node of {cfg.address} has more than "
                               f"{cluster.max_node_cpus:g}")
        started = time.monotonic()
        outcomes = Driver(todo, trials_dir, cfg, cluster, say, feed).run()
        n = len(outcomes)
        say(f"{n} trial{'s' if n != 1 else ''} ran in "
            f"{time.monotonic() - started:.1f} s")
        return outcomes
    finally:
        disconnect()


def write_results(out_dir: Path, trials: list[Trial], finished: list[Trial], cfg: SweepConfig,
                  say: Say, search: Any = None) -> None:
    """Aggregate the finished trials into results/, metrics.json, best_params.yaml and figures/
    (all or nothing). ``search``: the :class:`rlpipe.sweep.search.Search` of an optuna sweep."""
    from rlpipe.summarize.tables import write_parquet
    from rlpipe.sweep.aggregate import collect, setting_metrics
    from rlpipe.sweep.best import best_params_text, grid_best
    from rlpipe.sweep.figures import draw_all

    episodes, summaries = collect(out_dir / records.TRIALS_DIR, finished, cfg.window)
    order = list(dict.fromkeys(t.label for t in trials))
    grid_keys = list(trials[0].values) if trials and search is None else []
    metrics = setting_metrics(summaries, order)
    if search is None:
        metrics["trials"] = {"total": len(trials), "finished": len(finished)}
        best = grid_best(metrics["settings"], {t.label: t.values for t in trials},
                         cfg.objective.metric, cfg.objective.direction, order)
        how = f"grid of {len(order)} settings x {len(cfg.seeds)} seeds"
    else:
        metrics["trials"] = search.counts()
        for group in search.groups.values():  # complete or pruned (the mean of what ran)
            if group.seeds[0].label in metrics["settings"]:
                metrics["settings"][group.seeds[0].label]["state"] = group.state
        best = search.best()
        how = f"optuna {cfg.sampler}, {metrics['trials']['asked']} trials x {len(cfg.seeds)} seeds"
    metrics["best"] = ({k: best[k] for k in ("metric", "direction", "value", "setting")}
                       if best else None)
    figures_dir = out_dir / SWEEP_FIGURES_DIR
    staged = StagedWrites()
    try:
        write_parquet(episodes, staged.path(out_dir / SWEEP_EPISODES))
        staged.write_text(out_dir / SWEEP_TRIALS_TABLE, summaries.to_csv(index=False))
        staged.write_text(out_dir / SWEEP_METRICS, json.dumps(metrics, indent=2) + "\n")
        staged.write_text(out_dir / SWEEP_BEST_PARAMS, best_params_text(best, how))
        names = draw_all(episodes.to_pandas(), summaries, grid_keys, order, cfg.window,
                         lambda name: staged.path(figures_dir / name))
        if search is not None:
            from rlpipe.sweep.study_figures import draw_study

            names += draw_study(search, lambda name: staged.path(figures_dir / name))
        staged.commit()
    except BaseException:
        staged.abort()
        raise
    for old in figures_dir.glob("*.png"):  # figures of grid keys no longer in the grid
        if old.name not in names:
            old.unlink()
    say(f"{episodes.num_rows} episodes of {len(finished)} trials -> {SWEEP_EPISODES.as_posix()}, "
        f"{SWEEP_TRIALS_TABLE.as_posix()}, {SWEEP_METRICS.as_posix()}, "
        f"{SWEEP_BEST_PARAMS.as_posix()}, {SWEEP_FIGURES_DIR.as_posix()}/ ({len(names)} figures)")


@contextlib.contextmanager
def _sigterm_interrupts() -> Iterator[None]:
    """SIGTERM stops the sweep like Ctrl-C: Ray is left cleanly (``finally``), exit 130."""

    def handler(signum, frame):
        raise KeyboardInterrupt

    try:
        old = signal.signal(signal.SIGTERM, handler)
    except ValueError:  # not the main thread: leave signals alone
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, old)


def run(sections: dict, out: str = "sweeps") -> int:
    """The stage: the sweep of the ``sweep`` section over the training sections, into ``out``."""
    params = replace(Params.from_dict({}), **sections)
    with _sigterm_interrupts():
        return run_sweep(params, Path(out))


def run_sweep(params: Params, out_dir: str | Path = "sweeps", *, say: Say = _stdout,
              warn: Say = _stderr) -> int:
    """Run the sweep of ``params.sweep`` into ``out_dir``; returns the exit status."""
    out_dir = Path(out_dir)
    check_packages(params.sweep.search)
    if params.sweep.search == "optuna":
        from rlpipe.sweep.search_stage import run_search

        return run_search(params, out_dir, say, warn)
    trials = expand(params, params.sweep)  # every trial's params checked before anything else
    trials_dir = out_dir / records.TRIALS_DIR
    for name in records.remove_stale(trials_dir, [t.trial_id for t in trials]):
        say(f"removed {records.TRIALS_DIR}/{name}: not a trial of this sweep")
    todo = [t for t in trials if not records.is_finished(trials_dir, t)]
    check_environments(todo)
    say(f"{plan_text(params, trials)}; {len(trials) - len(todo)} finished already, "
        f"{len(todo)} to run")
    outcomes = run_pending(params, todo, trials_dir, say) if todo else {}
    finished = [t for t in trials if records.is_finished(trials_dir, t)]
    if finished:
        write_results(out_dir, trials, finished, params.sweep, say)
    done = {t.trial_id for t in finished}
    failed = [t for t in trials if t.trial_id not in done]
    for t in failed:
        outcome = outcomes.get(t.trial_id)
        tries = len(outcome.attempts) if outcome else 0
        warn(f"error: trial {t.trial_id} ({t.label}, seed {t.seed}) failed after {tries} "
             f"attempt{'s' if tries != 1 else ''}: {outcome.error if outcome else 'not run'}")
    if failed:
        warn(f"error: {len(failed)} of {len(trials)} trials failed: "
             f"{', '.join(t.trial_id for t in failed)}; rerun to retry them")
        return EXIT_TRIALS_FAILED
    return 0
