"""The sweep stage with ``sweep.search: optuna``: check, open the study, run it on Ray, aggregate.

Everything that can be wrong with the search params fails here before any trial starts, naming
the key: a space value that is no valid training setting, an objective metric the environment
does not report. Exit status as for a grid (:mod:`rlpipe.sweep.stage`): 1 when a trial failed
after its retries (a rerun resumes it).
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Callable

from rlpipe.config import ConfigError, Params
from rlpipe.sweep import records
from rlpipe.sweep.grid import base_dict, trial_params
from rlpipe.sweep.objective import metric
from rlpipe.sweep.search import Search, check_space_params, journal_name, open_study, study_id
from rlpipe.sweep.space import corners

Say = Callable[[str], None]


def check_objective(params: Params) -> None:
    """The objective's metric is one every trial reports (e.g. accuracy needs a reference)."""
    from rlpipe.envs.contract import describe
    from rlpipe.train.environment import make_env

    cfg = params.sweep
    m = metric(cfg.objective.metric)
    start = base_dict(params, cfg)
    seen: set[str] = set()
    for corner in corners(cfg.space) or [{}]:
        p = trial_params(start, list(corner.items()), cfg.seeds[0])
        key = repr(p.to_dict()["env"])
        if key in seen:
            continue
        seen.add(key)
        env = make_env(p.env)
        try:
            if m.needs_reference and not describe(env).has_reference:
                raise ConfigError(f"sweep.objective.metric: {m.name} is not reported by "
                                  f"{p.env.id} (it has no reference actions); use final_reward")
        finally:
            env.close()


def run_search(params: Params, out_dir: Path, say: Say, warn: Say) -> int:
    from rlpipe.sweep.execute import EXIT_TRIALS_FAILED, run_pending, write_results

    cfg = params.sweep
    check_space_params(params, cfg)
    check_objective(params)
    trials_dir = out_dir / records.TRIALS_DIR
    sid = study_id(params, cfg)
    t0 = time.perf_counter()
    study = open_study(trials_dir, sid, cfg, say)
    open_s = time.perf_counter() - t0
    search = Search(study, params, cfg, sid, trials_dir, say)
    keep = [*search.trial_ids(), journal_name(sid), journal_name(sid) + ".lock"]
    for name in records.remove_stale(trials_dir, keep):
        say(f"removed {records.TRIALS_DIR}/{name}: not part of study {sid}")
    counts = search.counts()
    say(f"study {sid}: {cfg.trials} trials x {len(cfg.seeds)} seeds ({cfg.sampler} sampler, "
        f"{cfg.pruner} pruner, {cfg.objective.direction} {cfg.objective.metric}); "
        f"{counts['complete']} complete, {counts['pruned']} pruned, "
        f"{counts['running'] + counts['failed']} to resume, "
        f"{max(0, cfg.trials - counts['asked'])} to ask")
    todo = search.more() if search.resumed else []
    if todo or search.asked() < cfg.trials:
        run_pending(params, todo, trials_dir, say, feed=search)
    asked = max(1, search.asked())
    say(f"optuna: opening the study {open_s:.2f} s; {search.optuna_calls} ask/report/tell calls "
        f"{search.optuna_s:.2f} s ({1000 * search.optuna_s / asked:.0f} ms per trial)")
    shown = search.seeds_with(("complete", "pruned"))
    if shown:
        write_results(out_dir, [t for g in sorted(search.groups.values(), key=lambda g: g.number)
                                for t in g.seeds], shown, cfg, say, search=search)
    failed = search.failed() + [g for g in search.groups.values() if g.state == "running"]
    for g in failed:
        warn(f"error: trial t{g.number:03d} ({g.seeds[0].label}) did not finish; "
             "rerun to resume it from its checkpoints")
    return EXIT_TRIALS_FAILED if failed else 0
