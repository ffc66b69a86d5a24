"""Run a sweep's pending trials on Ray, and write its results (both search modes share them)."""
from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Callable

from rlpipe.config import Params, SweepConfig
from rlpipe.io_utils import StagedWrites
from rlpipe.paths import (SWEEP_BEST_PARAMS, SWEEP_EPISODES, SWEEP_FIGURES_DIR, SWEEP_METRICS,
                          SWEEP_TRIALS_TABLE)
from rlpipe.sweep import records
from rlpipe.sweep.grid import Trial

EXIT_TRIALS_FAILED = 1

Say = Callable[[str], None]


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
