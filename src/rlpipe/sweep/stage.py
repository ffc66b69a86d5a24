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
from dataclasses import replace
from pathlib import Path
from typing import Iterator

from rlpipe.config import Params
from rlpipe.errors import RlpipeError
from rlpipe.sweep import records
from rlpipe.sweep.execute import EXIT_TRIALS_FAILED, Say, run_pending, write_results
from rlpipe.sweep.grid import Trial, expand, settings


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
