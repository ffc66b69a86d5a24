"""A tqdm progress bar: episode, mean reward and accuracy.

Log lines reach the console through ``tqdm.write`` (:mod:`rlpipe.hooks.text_log`), above the bar.
The bar closes when the run ends or stops, before the final log line: the trainer calls this hook
first (it heads the hook list).
"""
from __future__ import annotations

from rlpipe.hooks.base import EpisodeRecord, Hook, RunInfo


class ProgressHook(Hook):
    def on_train_start(self, run: RunInfo) -> None:
        from tqdm import tqdm

        self.bar = tqdm(total=run.target_episodes, initial=run.start_episode, unit="ep",
                        desc="train", dynamic_ncols=True, mininterval=0.5)
        self.acc: list[float] = []

    def on_episode_end(self, ep: EpisodeRecord) -> None:
        self.bar.update(1)
        post = {"mean_R": f"{ep.mean_episode_reward:.3f}"}
        if ep.deployment_accuracy is not None:
            self.acc = (self.acc + [ep.deployment_accuracy])[-50:]
            post["acc"] = f"{sum(self.acc) / len(self.acc):.3f}"
        self.bar.set_postfix(post, refresh=False)

    def on_interrupt(self, run: RunInfo, reason: str) -> None:
        self.close()

    def on_train_end(self, run: RunInfo, result: dict) -> None:
        self.close()

    def close(self) -> None:
        if getattr(self, "bar", None) is not None:
            self.bar.close()
            self.bar = None
