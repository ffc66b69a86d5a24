"""A tqdm progress bar: episode, mean reward and accuracy.

Log lines reach the console through ``tqdm.write`` (:mod:`rlpipe.hooks.text_log`), above the bar.
The bar closes (at 100 %) with the run's last episode, so that the last checkpoint and the
"finished" line come below it; a stopped run closes it at the stop.
"""
from __future__ import annotations

from rlpipe.events import EpisodeRecord, RunInfo, RunResult
from rlpipe.hooks.base import DISPLAY, Hook


class ProgressHook(Hook):
    order = DISPLAY

    def on_train_start(self, run: RunInfo) -> None:
        from tqdm import tqdm

        budget = run.run_budget
        self.steps = budget.unit == "steps"  # the bar counts the budget's unit
        self.bar = tqdm(total=budget.total, unit="step" if self.steps else "ep",
                        initial=min(budget.total, budget.position(run.start_episode,
                                                                  run.start_global_step)),
                        desc="train", dynamic_ncols=True, mininterval=0.5)
        self.acc: list[float] = []

    def on_episode_end(self, ep: EpisodeRecord) -> None:
        self.bar.update(min(ep.length if self.steps else 1, self.bar.total - self.bar.n))
        post = {"mean_R": f"{ep.mean_episode_reward:.3f}"}
        if ep.accuracy is not None:
            self.acc = (self.acc + [ep.accuracy])[-50:]
            post["acc"] = f"{sum(self.acc) / len(self.acc):.3f}"
        self.bar.set_postfix(post, refresh=False)
        if self.bar.n >= self.bar.total and not self.steps:  # a step budget ends with its rollout
            self.close()

    def on_interrupt(self, run: RunInfo, reason: str) -> None:
        self.close()

    def on_train_end(self, run: RunInfo, result: RunResult) -> None:
        self.close()

    def close(self) -> None:
        if getattr(self, "bar", None) is not None:
            self.bar.close()
            self.bar = None
