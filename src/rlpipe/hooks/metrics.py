"""The metrics hook: episodes.csv, updates.csv, steps.csv, TensorBoard and the W&B mirror from one
record path; at the end, the run's params as TensorBoard hyperparameters with the final metrics."""
from __future__ import annotations

import logging
from pathlib import Path

from rlpipe.action_log import ACTIONS_COLUMNS, ActionLayout, action_cells, histogram_rows
from rlpipe.config import AUTO, WandbConfig, resolve_interval
from rlpipe.events import EpisodeRecord, EvalRecord, RolloutEnd, RunInfo, RunResult, UpdateRecord
from rlpipe.hooks.base import Hook
from rlpipe.hooks.scalar_sinks import ScalarStream, TensorBoardLog, WandbLog, flat_params
from rlpipe.hooks.writers import CSVLog, Recorder
from rlpipe.paths import (ACTIONS_CSV, EPISODES_CSV, EVAL_CSV, STEPS_CSV, TENSORBOARD_DIR,
                          UPDATES_CSV, WANDB_DIR)
from rlpipe.statistics import (
    BY_KEY, COLUMN, EPISODE_COLUMNS, EPISODE_KEYS, EVAL_DURING_TRAINING_COLUMNS, STEP_COLUMNS,
    UPDATE_COLUMNS, UPDATE_KEYS,
)

# The statistics' tags (rlpipe.statistics); a column without one is not sent as a scalar. In
# episodes.csv the update's statistics are copies of the latest update's: sent with updates only.
EPISODE_TAGS = {BY_KEY[k].column: BY_KEY[k].tag for k in EPISODE_KEYS
                if BY_KEY[k].tag and not BY_KEY[k].algorithm}
UPDATE_TAGS = {BY_KEY[k].column: BY_KEY[k].tag for k in UPDATE_KEYS if BY_KEY[k].tag}


class MetricsHook(Hook):
    """Writes the CSV logs, TensorBoard scalars (every ``write_interval`` episodes; <= 0 off) and
    the W&B mirror (``wandb.mode`` not ``disabled``; every ``wandb.interval`` episodes, whatever
    TensorBoard does). Contract: docs/FILES.md."""

    def __init__(self, directory: Path, write_interval: int | str, step_log_interval: int,
                 wandb: WandbConfig | None = None):
        self.directory = Path(directory)
        self.write_interval_setting = write_interval
        self.step_interval = step_log_interval
        self.wandb_settings = wandb if wandb is not None else WandbConfig()
        self.episodes: CSVLog | None = None
        self.updates: CSVLog | None = None
        self.steps: CSVLog | None = None
        self.actions: CSVLog | None = None     # actions.csv (Box and MultiDiscrete actions)
        self.evals: CSVLog | None = None       # eval.csv (evaluation during training)
        self.tb: TensorBoardLog | None = None
        self.wandb: WandbLog | None = None
        self.notes: list[str] = []

    def on_train_start(self, run: RunInfo) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        keep = run.start_episode
        self.episodes = CSVLog(self.directory / EPISODES_CSV,
                               EPISODE_COLUMNS + tuple(run.env.metric_names), "Episode", keep)
        self.updates = CSVLog(self.directory / UPDATES_CSV, UPDATE_COLUMNS, "Episode", keep)
        self.action_layout = run.action_layout or ActionLayout("discrete")
        if self.step_interval > 0:
            self.steps = CSVLog(self.directory / STEPS_CSV,
                                STEP_COLUMNS + self.action_layout.step_columns
                                + tuple(run.env.step_summary_names), "Episode", keep)
        # always written (header only when evaluation during training is off): visualize reads it
        self.evals = CSVLog(self.directory / EVAL_CSV, EVAL_DURING_TRAINING_COLUMNS
                            + (("Reference Accuracy",) if run.env.has_reference else ())
                            + tuple(run.env.metric_names), "Episode", keep)
        if self.action_layout.has_histograms:
            self.actions = CSVLog(self.directory / ACTIONS_CSV, ACTIONS_COLUMNS, "Episode", keep)
        for log in self._logs():
            if log is not None and keep and log.dropped_rows:
                self.notes.append(f"{log.path.name}: dropped {log.dropped_rows} rows past episode {keep}")
            if log is not None and keep and log.missing_rows:
                self.notes.append(f"{log.path.name}: holds fewer rows than the checkpoint's "
                                  f"episode {keep} (lost in a crash before they reached the disk)")
        for note in self.notes:
            logging.getLogger("rlpipe").info("resume: %s", note)
        self.last_mean_reward: float | None = None
        # `auto` = about 100 points per run; with a step budget the run's episodes are estimated
        # from the first episode's length (_estimate_intervals)
        steps = run.run_budget.unit == "steps"
        self._pending_auto = [] if not steps else None
        episodes = 100 if steps else run.target_episodes
        interval = resolve_interval(self.write_interval_setting, episodes, 100)
        sinks = []  # (sink, its interval)
        if keep == 0:  # a fresh run: the previous run's event files would show its episodes too
            for old in (self.directory / TENSORBOARD_DIR).glob("events.out.tfevents.*"):
                old.unlink()
        if interval > 0:
            self.tb = TensorBoardLog(self.directory / TENSORBOARD_DIR, purge_step=keep + 1 if keep else None)
            sinks.append((self.tb, interval))
        wb = self.wandb_settings
        if wb.mode != "disabled":
            self.wandb = WandbLog(self.directory / WANDB_DIR, wb, run.params.to_dict(),
                                  f"rlpipe-{run.fingerprint}-from-{keep}")
            sinks.append((self.wandb, resolve_interval(wb.interval, episodes, 100)))
        ep_skip = [c for c in EPISODE_COLUMNS if c not in EPISODE_TAGS]
        up_skip = [c for c in UPDATE_COLUMNS if c not in UPDATE_TAGS]
        self.episode_rec = Recorder(self.episodes, [
            ScalarStream(sink, EPISODE_TAGS, "Performance", n, keep, skip=ep_skip) for sink, n in sinks])
        self.update_rec = Recorder(self.updates, [
            ScalarStream(sink, UPDATE_TAGS, "Custom", n, keep, skip=up_skip) for sink, n in sinks])
        if steps:
            settings = [self.write_interval_setting] + ([wb.interval] if wb.mode != "disabled" else [])
            self._pending_auto = [(rec.streams[i], settings[i]) for rec in
                                  (self.episode_rec, self.update_rec) for i in range(len(sinks))
                                  if settings[i] == AUTO]
            self._budget_steps = run.run_budget.total

    def _estimate_intervals(self, length: int) -> None:
        """A step budget's `auto` intervals: about 100 points over total_steps / this length
        episodes (the first episode of this process)."""
        episodes = max(1, self._budget_steps // max(1, length))
        for stream, setting in self._pending_auto:
            stream.interval = resolve_interval(setting, episodes, 100)
        self._pending_auto = []

    def on_episode_end(self, ep: EpisodeRecord) -> None:
        if self._pending_auto:
            self._estimate_intervals(ep.length)
        r = self.episode_rec
        last = ep.last_update or {}
        for key in EPISODE_KEYS:  # the update's statistics: of the latest update
            r.record(BY_KEY[key].column, last.get(key) if BY_KEY[key].algorithm else getattr(ep, key))
        for name, value in ep.metrics.items():
            r.record(name, value)
        r.dump(ep.episode)
        self.last_mean_reward = ep.mean_episode_reward
        if self.steps is not None:
            self._write_steps(ep)
        if self.actions is not None:
            self.actions.write_rows(histogram_rows(self.action_layout, ep.episode, ep.actions))

    def _write_steps(self, ep: EpisodeRecord) -> None:
        n = self.step_interval
        idx = range(0, ep.length, n)
        reference, valid = ep.reference_actions, ep.valid
        first_summary = len(STEP_COLUMNS) + len(self.action_layout.step_columns)
        summaries = [ep.step_summaries.get(name) for name in self.steps.columns[first_summary:]]
        cells, extra = action_cells(self.action_layout, ep.actions)
        rows = []
        for t in idx:
            rows.append((
                ep.episode, t + 1, ep.global_step_start + t + 1, cells[t],
                float(ep.rewards[t]), float(ep.values[t]), float(ep.log_probs[t]),
                float(ep.entropies[t]),
                None if reference is None else int(reference[t]),
                None if valid is None else bool(valid[t]),
                *extra[t],
                *[None if s is None else float(s[t]) for s in summaries],
            ))
        self.steps.write_rows(rows)

    def on_update(self, up: UpdateRecord) -> None:
        r = self.update_rec
        for key in UPDATE_KEYS:
            stat = BY_KEY[key]
            value = up.stats.get(key) if stat.algorithm else getattr(up, key)
            r.record(stat.column, int(value) if stat.dtype is int and value is not None else value)
        for tag, value in up.custom.items():
            r.record(tag, value)
        r.dump(up.episode)

    def on_evaluation(self, ev: EvalRecord) -> None:
        """A row of eval.csv; TensorBoard and W&B ``Eval / ...`` scalars at the episode."""
        self.evals.write({COLUMN["episode"]: ev.episode, COLUMN["global_step"]: ev.global_step,
                          COLUMN["update"]: ev.update, "Episodes": ev.episodes,
                          "Mean Return": ev.mean_return, "Return SD": ev.sd_return,
                          "Best Mean Return": ev.best_return,
                          **({} if ev.accuracy is None else {"Reference Accuracy": ev.accuracy}),
                          **ev.metrics})
        scalars = {"Eval / Mean return": ev.mean_return, "Eval / Return sd": ev.sd_return,
                   "Eval / Best mean return": ev.best_return, "Eval / Reference accuracy":
                   ev.accuracy, **{f"Eval / {k}": v for k, v in ev.metrics.items()}}
        for sink in (self.tb, self.wandb):
            if sink is not None:
                sink.scalars(scalars, ev.episode)

    def on_rollout_end(self, rollout: RolloutEnd) -> None:
        # durable before a checkpoint that covers these rows can be written
        for log in [*self._logs(), self.evals]:
            log.flush(fsync=True)

    def _logs(self) -> list[CSVLog]:
        return [log for log in (self.episodes, self.updates, self.steps, self.actions)
                if log is not None]

    def on_train_end(self, run: RunInfo, result: RunResult) -> None:
        """A finished run: the final metrics, with the params as hyperparameters (TensorBoard)
        and as the W&B run's summary."""
        final = {"Final / Mean episode reward": self.last_mean_reward,
                 "Final / Best mean reward": result.best_mean_reward,
                 "Final / Episodes": result.episodes, "Final / Total timesteps": result.global_step}
        if self.tb is not None:
            self.tb.hparams(flat_params(run.params.to_dict()), final, result.episodes)
        if self.wandb is not None:
            self.wandb.summary(final)
        self.close()

    def on_interrupt(self, run, reason) -> None:
        self.close()

    def close(self) -> None:
        for log in self._logs():
            log.close()
        if self.evals is not None:
            self.evals.close()
        if self.tb is not None:
            self.tb.flush()
            self.tb.close()
            self.tb = None
        if self.wandb is not None:
            self.wandb, run = None, self.wandb
            run.close()
