"""Scalar sinks: TensorBoard and the Weights & Biases mirror, and the sampling stream that feeds them.

A :class:`ScalarStream` maps the CSV column names a :class:`~rlpipe.hooks.writers.Recorder` dumps
to scalar tags and samples them every N episodes; each sink has its own stream, so W&B never
depends on TensorBoard's interval.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Mapping, Sequence

from rlpipe.config import ConfigError, WandbConfig
from rlpipe.errors import RlpipeError


def flat_params(d: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"train": {"actor_lr": 0.003}}`` -> ``{"train.actor_lr": 0.003}``; lists as JSON text
    (TensorBoard hyperparameters are numbers, strings or booleans)."""
    import json

    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, Mapping):
            out.update(flat_params(v, key + "."))
        elif isinstance(v, (list, tuple)):
            out[key] = json.dumps(v)
        elif v is not None:
            out[key] = v
    return out


class TensorBoardLog:
    """One ``SummaryWriter`` per process run; scalars on the episode axis.

    ``purge_step`` makes TensorBoard drop events at or after it that an earlier (interrupted)
    run wrote, so a resumed run never shows an episode twice.
    """

    def __init__(self, logdir: Path, purge_step: int | None):
        from torch.utils.tensorboard import SummaryWriter  # imported only when TensorBoard is on

        self.writer = SummaryWriter(log_dir=str(logdir), purge_step=purge_step, flush_secs=30)

    def scalars(self, values: Mapping[str, float], step: int) -> None:
        for tag, v in values.items():
            if v is None:
                continue
            v = float(v)
            if math.isfinite(v):
                self.writer.add_scalar(tag, v, step)

    def hparams(self, hparams: Mapping[str, Any], final: Mapping[str, float], step: int) -> None:
        """The run's params as TensorBoard hyperparameters (HParams tab), with the ``final``
        metrics as scalars at ``step`` (the last episode) that the HParams table shows."""
        from torch.utils.tensorboard.summary import hparams as hparams_summaries

        final = {k: float(v) for k, v in final.items() if v is not None and math.isfinite(float(v))}
        writer = self.writer._get_file_writer()
        for summary in hparams_summaries(dict(hparams), final):
            writer.add_summary(summary, step)
        self.scalars(final, step)

    def flush(self) -> None:
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()


class WandbLog:
    """A Weights & Biases run mirroring the TensorBoard scalars (``experiment.wandb``).

    ``mode: offline`` keeps everything on this machine (``wandb sync <dir>`` uploads it later);
    ``online`` streams to the W&B server (needs a login). The other settings are
    ``wandb.init``'s arguments; the run's params are its config, the final metrics its summary.
    """

    def __init__(self, directory: Path, settings: WandbConfig, config: dict, default_name: str):
        try:
            import wandb
        except ImportError:
            raise ConfigError(f"experiment.wandb.mode: {settings.mode} needs the wandb package "
                              "(pip install 'rlpipe[wandb]'), or set it to disabled") from None
        Path(directory).mkdir(parents=True, exist_ok=True)
        try:
            self.run = wandb.init(
                mode=settings.mode, project=settings.project, entity=settings.entity or None,
                group=settings.group or None, tags=list(settings.tags) or None,
                name=settings.name or default_name, notes=settings.notes or None,
                dir=str(directory), config=config, reinit="create_new")
        except Exception as e:  # noqa: BLE001 - e.g. no login for mode: online
            first = (str(e).splitlines() or [""])[0]
            raise RlpipeError(f"experiment.wandb: wandb.init failed in mode {settings.mode} "
                              f"({type(e).__name__}: {first})") from None

    def scalars(self, values: Mapping[str, float], step: int) -> None:
        clean = {k: float(v) for k, v in values.items()
                 if v is not None and math.isfinite(float(v))}
        if clean:
            self.run.log(clean, step=step)

    def summary(self, final: Mapping[str, float]) -> None:
        self.run.summary.update({k: float(v) for k, v in final.items()
                                 if v is not None and math.isfinite(float(v))})

    def flush(self) -> None:
        pass

    def close(self) -> None:
        self.run.finish()


class ScalarStream:
    """Maps CSV column names to scalar tags and samples every ``interval`` episodes.

    A value is written when its step crosses a multiple of ``interval`` since the stream's
    previous step, so episode scalars land on multiples of the interval and update scalars on
    the first update at or after each multiple.
    """

    def __init__(self, log: "TensorBoardLog | WandbLog", tags: Mapping[str, str], default_prefix: str,
                 interval: int, start_step: int, skip: Sequence[str] = ()):
        self.log = log
        self.tags = dict(tags)
        self.default_prefix = default_prefix
        self.interval = interval
        self.last_step = start_step
        self.skip = set(skip)

    def write(self, values: Mapping[str, Any], step: int) -> None:
        due = step // self.interval > self.last_step // self.interval
        self.last_step = step
        if not due:
            return
        out = {}
        for key, v in values.items():
            if key in self.skip or v is None:
                continue
            out[self.tags.get(key, f"{self.default_prefix} / {key}")] = v
        self.log.scalars(out, step)
