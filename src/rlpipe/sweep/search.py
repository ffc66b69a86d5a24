"""``sweep.search: optuna``: an Optuna study, asked and told by the driver, trials on Ray.

A study trial is one setting (values drawn from ``sweep.space``) run once per seed of
``sweep.seeds``; each seed-run is one Ray task like a grid trial (folder
``trials/<study id>-t<number>-seed<seed>/``). Its objective is the mean over its seeds of the
objective's metric (:mod:`rlpipe.sweep.objective`).

Pruning, with several seeds per trial: every seed-run reports its metric at each evaluation point
(:mod:`rlpipe.sweep.report`); the driver reports to Optuna, at a step, the mean over *all* the
trial's seeds once every seed has reached that step (so every value compared by the pruner is a
mean of the same number of seeds, as the final objective is), then asks the pruner. A pruned
trial's seed-runs stop at their next report (with their checkpoint home) and those not started
never run; the study records the trial as pruned.

Storage: Optuna's JournalStorage in one file, ``trials/study-<study id>.journal``, written by the
driver only (no database is reachable from other nodes, none has to be). Why a journal and not
SQLite: every operation is one line appended and fsync'd, so a SIGKILL of the driver loses at
most the line being written (a torn last line is cut off when the study is opened again); it
needs no SQLAlchemy/alembic start-up, it is plain text (small deltas for DVC), and it works on
network file systems where SQLite's locking does not. The study id is a digest of everything that
defines the study except ``sweep.trials``: change the space, the objective or the base run and a
new study starts (the old one's folders are removed like a grid's stale trials); raise
``sweep.trials`` and the study goes on.

A rerun after a kill continues the study: finished and pruned trials are kept; a trial left
running (killed, or whose seed-run failed after its retries) resumes its unfinished seed-runs
from their checkpoints, with the values its seeds had reported (``reports.json``).
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from rlpipe.config import ConfigError, Params, SweepConfig, fingerprint
from rlpipe.paths import SWEEP_STUDY
from rlpipe.sweep import records
from rlpipe.sweep.grid import Trial, base_dict, trial_params
from rlpipe.sweep.objective import metric, last_window_mean
from rlpipe.sweep.report import read_column, read_reports
from rlpipe.sweep.space import corners, format_value, to_optuna

Say = Callable[[str], None]


def study_id(base: Params, cfg: SweepConfig) -> str:
    """8 hex digits naming the study: everything that defines it but ``sweep.trials``."""
    start = base_dict(base, cfg)
    definition = {
        "run": fingerprint(Params.from_dict(start)), "episodes": start["train"]["episodes"],
        "space": cfg.space, "objective": [cfg.objective.metric, cfg.objective.direction],
        "sampler": [cfg.sampler, cfg.sampler_seed], "seeds": list(cfg.seeds),
        "pruner": [cfg.pruner, cfg.pruner_warmup, cfg.pruner_startup_trials, cfg.report_every],
        "window": cfg.window,
    }
    return hashlib.sha256(json.dumps(definition, sort_keys=True).encode()).hexdigest()[:8]


def journal_name(sid: str) -> str:
    return SWEEP_STUDY.format(id=sid)


def check_space_params(base: Params, cfg: SweepConfig) -> None:
    """Every bound and choice of the space makes valid training params (before any trial)."""
    start = base_dict(base, cfg)
    for corner in corners(cfg.space):
        for key, value in corner.items():
            try:
                trial_params(start, [(key, value)], cfg.seeds[0])
            except ConfigError as e:
                raise ConfigError(f"sweep.space.{key}: {e}") from None


def repair_journal(path: Path) -> bool:
    """Cut a torn last line (a kill during a write); True when something was cut."""
    if not path.exists():
        return False
    data = path.read_bytes()
    if not data or data.endswith(b"\n"):
        return False
    with open(path, "r+b") as f:
        f.truncate(data.rfind(b"\n") + 1)
    return True


def make_sampler(cfg: SweepConfig, number: int = 0):
    """The sampler that asks study trial ``number``.

    TPE and random draw from a generator seeded by ``sampler_seed`` and the trial's number, so
    what trial k is asked depends only on the seed and the trials told before it: a study that
    continues after its driver was killed asks what an uninterrupted one would have (one
    generator for the whole study would restart from its seed). QMC is one seeded sequence
    indexed by the trial's number already."""
    import optuna

    seed = (cfg.sampler_seed * 1_000_003 + number) % 2**32
    if cfg.sampler == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if cfg.sampler == "qmc":
        return optuna.samplers.QMCSampler(seed=cfg.sampler_seed)
    return optuna.samplers.TPESampler(seed=seed)


def ask(study, cfg: SweepConfig, distributions: dict):
    """Ask the study's next trial with :func:`make_sampler`'s sampler for its number."""
    number = len(study.get_trials(deepcopy=False))
    if cfg.sampler != "qmc":
        study.sampler = make_sampler(cfg, number)
    return study.ask(distributions)


def make_pruner(cfg: SweepConfig):
    import optuna

    if cfg.pruner == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=cfg.pruner_startup_trials,
                                           n_warmup_steps=cfg.pruner_warmup)
    if cfg.pruner == "successive_halving":
        return optuna.pruners.SuccessiveHalvingPruner(min_resource=max(1, cfg.pruner_warmup))
    return optuna.pruners.NopPruner()


def open_study(trials_dir: Path, sid: str, cfg: SweepConfig, say: Say):
    import optuna
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    logging.getLogger("optuna").propagate = False
    trials_dir.mkdir(parents=True, exist_ok=True)
    path = trials_dir / journal_name(sid)
    if repair_journal(path):
        say(f"{path.name}: cut a torn last line (the driver was killed while writing it)")
    storage = JournalStorage(JournalFileBackend(str(path)))
    return optuna.create_study(study_name=f"rlpipe-{sid}", storage=storage, load_if_exists=True,
                               direction=cfg.objective.direction, sampler=make_sampler(cfg),
                               pruner=make_pruner(cfg))


@dataclass
class Group:
    """One study trial: its seed-runs and what they reported."""

    number: int
    trial: Any                                   # optuna.trial.Trial
    seeds: list[Trial]
    values: dict[int, dict[int, float | None]] = field(default_factory=dict)  # step -> seed -> v
    told: set[int] = field(default_factory=set)
    ended: dict[str, str] = field(default_factory=dict)  # seed trial id -> finished|failed|pruned
    pruned: bool = False
    state: str = "running"                       # running | complete | pruned | failed


def setting_of(params: dict, space: dict) -> tuple[tuple[str, Any], ...]:
    return tuple((k, params[k]) for k in space)


class Search:
    """The driver's feed (:class:`rlpipe.sweep.driver.Feed`) for an Optuna study."""

    def __init__(self, study, base: Params, cfg: SweepConfig, sid: str, trials_dir: Path, say: Say):
        self.study, self.cfg, self.sid, self.trials_dir, self.say = study, cfg, sid, trials_dir, say
        self.start = base_dict(base, cfg)
        self.metric = metric(cfg.objective.metric)
        self.dists = to_optuna(cfg.space)
        self.search = {"metric": self.metric.name, "window": cfg.window, "every": cfg.report_every}
        self.width = len(cfg.seeds)
        self.groups: dict[int, Group] = {}
        self.of_seed: dict[str, Group] = {}
        self.resumed: list[Trial] = []
        self.optuna_s, self.optuna_calls = 0.0, 0  # time in Optuna (its journal writes included)
        with self._optuna():
            self._resume()

    @contextlib.contextmanager
    def _optuna(self):
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.optuna_s += time.perf_counter() - t0
            self.optuna_calls += 1

    # ------------------------------------------------------------------ building trials
    def _group(self, number: int, optuna_trial: Any, params: dict) -> Group:
        setting = setting_of(params, self.cfg.space)
        label = f"t{number:03d}: " + ",".join(f"{k}={format_value(v)}" for k, v in setting)
        sid = f"{self.sid}-t{number:03d}"
        seeds = [Trial(f"{sid}-seed{seed}", seed, setting, sid, label,
                       trial_params(self.start, setting, seed)) for seed in self.cfg.seeds]
        group = Group(number, optuna_trial, seeds)
        self.groups[number] = group
        for t in seeds:
            self.of_seed[t.trial_id] = group
        return group

    def trial_ids(self) -> list[str]:
        """Every seed-run folder of the study (a rerun keeps them)."""
        return [t.trial_id for g in self.groups.values() for t in g.seeds]

    def _resume(self) -> None:
        from optuna.trial import Trial as OptunaTrial
        from optuna.trial import TrialState

        for ft in self.study.get_trials(deepcopy=False):
            group = self._group(ft.number, OptunaTrial(self.study, ft._trial_id), ft.params)
            if ft.state != TrialState.RUNNING:
                group.state = {TrialState.COMPLETE: "complete", TrialState.PRUNED: "pruned"}.get(
                    ft.state, "failed")
                continue
            group.told = set(ft.intermediate_values)
            for t in group.seeds:
                folder = records.trial_dir(self.trials_dir, t)
                for step, v in read_reports(folder).items():
                    group.values.setdefault(step, {})[t.seed] = v
                if records.is_finished(self.trials_dir, t):
                    group.ended[t.trial_id] = "finished"
                elif records.read_meta(self.trials_dir, t).get("status") == "pruned":
                    group.ended[t.trial_id] = "pruned"
                    group.pruned = True
            if len(group.ended) == len(group.seeds) or group.pruned:
                self._tell(group)
            else:
                self.resumed += [t for t in group.seeds if t.trial_id not in group.ended]

    # ------------------------------------------------------------------ the Feed protocol
    def asked(self) -> int:
        return len(self.groups)

    def more(self) -> list[Trial]:
        if self.resumed:
            out, self.resumed = self.resumed, []
            return out
        if self.asked() >= self.cfg.trials:
            return []
        with self._optuna():
            ot = ask(self.study, self.cfg, self.dists)
        group = self._group(ot.number, ot, ot.params)
        self.say(f"asked trial t{ot.number:03d} ({group.seeds[0].label.split(': ', 1)[1]})")
        return list(group.seeds)

    def on_reports(self, reports: list) -> set[str]:
        stop: set[str] = set()
        for trial_id, step, value in reports:
            group = self.of_seed.get(trial_id)
            if group is None or group.pruned:
                continue
            seed = next(t.seed for t in group.seeds if t.trial_id == trial_id)
            group.values.setdefault(int(step), {})[seed] = value
            if self._report_steps(group):
                stop.update(t.trial_id for t in group.seeds if t.trial_id not in group.ended)
        return stop

    def _report_steps(self, group: Group) -> bool:
        """Tell Optuna the complete steps (every seed there), in order; True when pruned."""
        n = len(group.seeds)
        for step in sorted(s for s, v in group.values.items() if len(v) == n and s not in group.told):
            group.told.add(step)
            vals = [v for v in group.values[step].values() if v is not None]
            if not vals:
                continue
            with self._optuna():
                group.trial.report(sum(vals) / len(vals), step)
                prune = group.trial.should_prune()
            if prune:
                group.pruned = True
                self.say(f"trial t{group.number:03d} pruned at episode {step}: "
                         f"{self.metric.name} {sum(vals) / len(vals):.4g} (mean of {n} seeds)")
                return True
        return False

    def on_outcome(self, outcome) -> None:
        group = self.of_seed[outcome.trial.trial_id]
        group.ended[outcome.trial.trial_id] = outcome.status
        if len(group.ended) == len(group.seeds):
            with self._optuna():
                self._tell(group)

    def _tell(self, group: Group) -> None:
        from optuna.trial import TrialState

        statuses = set(group.ended.values())
        if group.pruned or "pruned" in statuses:
            group.state = "pruned"
            self.study.tell(group.trial, state=TrialState.PRUNED)
        elif "failed" in statuses:  # left running: a rerun resumes it from its checkpoints
            group.state = "failed"
        else:
            finals = [self.final_value(t) for t in group.seeds]
            if any(v is None for v in finals):
                group.state = "failed"
                self.study.tell(group.trial, state=TrialState.FAIL)
                self.say(f"trial t{group.number:03d}: no {self.metric.name} to report (failed)")
                return
            group.state = "complete"
            value = sum(finals) / len(finals)
            self.study.tell(group.trial, value)
            self.say(f"trial t{group.number:03d} complete: {self.metric.name} {value:.4g} "
                     f"(mean of {len(finals)} seeds)")

    def final_value(self, trial: Trial) -> float | None:
        """The metric at a seed-run's last episode, from its files (the objective's source)."""
        log = (records.trial_dir(self.trials_dir, trial) / trial.params.experiment.directory
               / self.metric.file)
        return last_window_mean(read_column(log, self.metric.column), self.cfg.window)

    # ------------------------------------------------------------------ results
    def seeds_with(self, states: tuple[str, ...]) -> list[Trial]:
        return [t for g in sorted(self.groups.values(), key=lambda g: g.number)
                if g.state in states for t in g.seeds
                if (records.trial_dir(self.trials_dir, t) / t.params.experiment.directory).is_dir()]

    def failed(self) -> list[Group]:
        return [g for g in self.groups.values() if g.state == "failed"]

    def counts(self) -> dict[str, int]:
        states = [g.state for g in self.groups.values()]
        return {"total": self.cfg.trials, "asked": len(states),
                **{s: states.count(s) for s in ("complete", "pruned", "failed", "running")}}

    def best(self) -> dict | None:
        """The best complete trial: its setting, value and number (None when none completed)."""
        done = [g for g in self.groups.values() if g.state == "complete"]
        if not done:
            return None
        bt = self.study.best_trial
        group = self.groups[bt.number]
        return {"metric": self.metric.name, "direction": self.cfg.objective.direction,
                "value": float(bt.value), "setting": group.seeds[0].label,
                "trial": f"t{bt.number:03d}", "seeds": len(group.seeds),
                "params": dict(setting_of(bt.params, self.cfg.space))}
