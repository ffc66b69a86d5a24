"""A tqdm progress bar: episode, mean reward and accuracy."""
from __future__ import annotations

from rlpipe.events import EpisodeRecord, RunInfo
from rlpipe.hooks.base import DISPLAY, Hook


class ProgressHook(Hook):
    order = DISPLAY
    def on_train_start(self, run: RunInfo) -> None:
        from tqdm import tqdm

        self.bar = tqdm(total=run.target_episodes, initial=run.start_episode, unit="ep",
                        desc="train", dynamic_ncols=True, mininterval=0.5)
        self.acc: list[float] = []

    def on_episode_end(self, ep: EpisodeRecord) -> None:
        self.bar.update(1)
        post = {"mean_R": f"{ep.mean_episode_reward:.3f}"}
        if ep.accuracy is not None:
            self.acc = (self.acc + [ep.accuracy])[-50:]
            post["acc"] = f"{sum(self.acc) / len(self.acc):.3f}"
        self.bar.set_postfix(post, refresh=False)

    def close(self) -> None:
        if hasattr(self, "bar"):
            self.bar.close()
