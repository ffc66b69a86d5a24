"""Typed, frozen configuration objects built from ``params.yaml``.

Every section of ``params.yaml`` maps to one frozen dataclass. Building a section checks
unknown keys, types and ranges, and raises :class:`ConfigError` with a message that names the
bad key (``train.lr``) and what is allowed. Stage entry points turn that error into a one-line
message and a non-zero exit before anything is written.

This module imports nothing heavy (no torch): the summarize and visualize stages use it too.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Mapping, Union

import yaml

from rlpipe.config_build import (  # noqa: F401 - re-exported: sections and environments use them
    AUTO, ConfigError, _check, _field, bool_or_auto, build, device_name, in_range, int_or_auto,
    non_negative, one_of, positive, relative_path, resolve_interval,
)
from rlpipe.config_evaluate import EVAL_CHECKPOINTS, EvaluateConfig  # noqa: F401 - a section
from rlpipe.config_sweep import (  # noqa: F401 - the sweep section lives there (re-exported)
    SWEEP_ADDRESS_KEYWORDS, TRAIN_SECTIONS, ObjectiveConfig, SweepConfig, ray_address,
)
from rlpipe.envs import DEFAULT_ENV_ID

# --------------------------------------------------------------------------- sections
@dataclass(frozen=True)
class EnvConfig:
    """``env``: which environment, and the settings it takes.

    The core knows no environment's settings: ``kwargs`` go to ``gymnasium.make(id, **kwargs)``
    and are validated by the environment's own ``config_class`` when it declares one (see
    docs/ENVIRONMENTS.md), before anything is written. Whether the agent is a graph network or an
    MLP follows from the observation space.
    """

    #: gymnasium id: a built-in (``rlpipe/...``), an installed one (``CartPole-v1``) or
    #: ``module:EnvName-v0`` (the module is imported first and registers the id).
    id: str = _field(DEFAULT_ENV_ID)
    #: the environment's own settings (keyword arguments of its constructor).
    kwargs: dict = _field({})
    #: use ``info["action_mask"]`` when the environment provides one.
    action_masking: bool = _field(False)
    #: episode step limit through gymnasium's TimeLimit; 0 = the environment's own limit.
    max_episode_steps: int = _field(0, non_negative)

    def validate(self, s: str) -> None:
        _check(all(isinstance(k, str) for k in self.kwargs), f"{s}.kwargs",
               "must map setting names to values", self.kwargs)


@dataclass(frozen=True)
class AgentConfig:
    """``agent``: network sizes. GAT for graph observations, MLP for flat Box observations."""

    #: channels per attention head (GAT) and width of the score/value heads.
    hidden_dim: int = _field(32, in_range(1, 4096))
    #: attention heads per GAT layer (hidden layers concatenate them, the last averages them).
    heads: int = _field(4, in_range(1, 64))
    #: message-passing layers of the actor and of the critic; 0 = none (the ablation): a per-node
    #: MLP of the same widths over the same node features, same heads and critic pooling.
    gat_layers: int = _field(2, in_range(0, 16))
    #: message-passing layer kind: gat (GATConv, edge features in the attention logits), gatv2
    #: (GATv2Conv, dynamic attention, the same), transformer (TransformerConv, edge features in
    #: the attention logits and in the messages).
    conv: str = _field("gat", one_of("gat", "gatv2", "transformer"))
    #: dropout on the attention coefficients while training.
    dropout: float = _field(0.0, in_range(0.0, 0.9))
    #: hidden layer sizes of the MLP actor and critic (flat observations).
    mlp_hidden: tuple[int, ...] = _field((64, 64), in_range(1, 8192))
    #: initial log standard deviation of the Gaussian policy (Box actions); 0.0 = std 1.
    log_std_init: float = _field(0.0, in_range(-20.0, 5.0))

    def validate(self, s: str) -> None:
        _check(len(self.mlp_hidden) > 0, f"{s}.mlp_hidden",
               "must list at least one hidden layer size, e.g. [64, 64]", list(self.mlp_hidden))


@dataclass(frozen=True)
class TrainConfig:
    """``train``: the algorithm and its hyper-parameters."""

    #: keys of earlier versions, refused with the reason (``train.vf_coef: removed, ...``).
    REMOVED: ClassVar[dict[str, str]] = {
        "vf_coef": "the actor and critic are separate networks with their own Adam optimizers, so a "
                   "weight on the value loss only moved the critic's gradient-clip threshold, "
                   "which is now train.critic_max_grad_norm (to keep a run's behaviour, set it to "
                   "max_grad_norm / vf_coef)",
    }

    #: the algorithm: PPO (clipped objective, minibatch epochs) or A2C (one step per rollout).
    algo: str = _field("ppo", one_of("ppo", "a2c"))
    #: the budget: episodes to train in total (raising it later continues a finished run); or
    #: null with total_steps set (setting only total_steps implies episodes: null).
    episodes: Union[int, None] = _field(480, in_range(1, 10_000_000))
    #: the budget in environment steps (all environments), instead of episodes; null = episodes.
    total_steps: Union[int, None] = _field(None, in_range(1, 10**12))
    #: evaluation during training every N episodes (greedy, on environments and seeds of its
    #: own; best.pt then follows the evaluation return); auto = about 20 per run; 0 = off.
    eval_interval: Union[int, str] = _field(0, int_or_auto(0), "an integer >= 0 or 'auto'")
    #: episodes per evaluation during training.
    eval_episodes: int = _field(10, in_range(1, 100_000))
    #: end training early (with a final checkpoint) once an evaluation's mean return reaches
    #: this; null = never. Needs eval_interval.
    stop_at: Union[float, None] = _field(None)
    #: seeds python, numpy, torch and every environment.
    seed: int = _field(0, in_range(0, 2**32 - 1))  # numpy's legacy seeding takes 32 bits
    #: environments stepped together (their observations batched into one forward pass).
    num_envs: int = _field(8, in_range(1, 1024))
    #: a rollout: one whole episode per env (episodes) or rollout_steps steps per env (steps).
    rollout: str = _field("episodes", one_of("episodes", "steps"))
    #: steps per environment in one rollout (rollout: steps); the cut is bootstrapped.
    rollout_steps: int = _field(128, in_range(1, 1_000_000))
    #: processes that step the environments; 0 = in process (the same results either way).
    #: Each runs its numerical libraries on one thread unless OMP/OPENBLAS/MKL_NUM_THREADS are set.
    env_workers: int = _field(0, in_range(0, 256))
    #: Adam learning rate of the actor.
    actor_lr: float = _field(3e-3, in_range(1e-8, 1.0))
    #: Adam learning rate of the critic.
    critic_lr: float = _field(3e-3, in_range(1e-8, 1.0))
    #: discount factor.
    gamma: float = _field(0.2, in_range(0.0, 1.0))
    #: GAE lambda (bias/variance of the advantages).
    gae_lambda: float = _field(0.5, in_range(0.0, 1.0))
    #: PPO ratio clipping.
    clip_coef: float = _field(0.2, in_range(0.0, 10.0))
    #: PPO passes over each rollout.
    update_epochs: int = _field(8, in_range(1, 1000))
    #: PPO minibatches per pass.
    minibatches: int = _field(4, in_range(1, 10_000))
    #: weight of the entropy bonus in the actor loss.
    ent_coef: float = _field(0.0, in_range(0.0, 10.0))
    #: gradient-norm clipping of the actor's step (policy loss minus the entropy bonus).
    max_grad_norm: float = _field(0.5, in_range(0.0, 1e6))
    #: gradient-norm clipping of the critic's step (the value loss's gradient; the critic has its
    #: own network and optimizer, so this, not a weight on the value loss, sets how hard it
    #: steps). 1.0 does what ``vf_coef: 0.5`` with ``max_grad_norm: 0.5`` did (Adam ignores the 2x).
    critic_max_grad_norm: float = _field(1.0, in_range(0.0, 1e6))
    #: normalise advantages per minibatch.
    normalize_advantages: bool = _field(True)
    #: episodes in the "Mean Episode Reward" window (and best-model tracking).
    summary_window: int = _field(50, in_range(1, 1_000_000))
    #: checkpoints made with other params or code: archive them and restart, or stop.
    on_mismatch: str = _field("restart", one_of("restart", "error"))
    #: a NaN/inf loss: undo that update and stop (exit 3), or skip it and go on.
    on_nan: str = _field("stop", one_of("stop", "skip"))
    #: torch threads; 0 = torch's default. 1 by default: the batches are small, and extra threads
    #: cost more than they give on a shared CPU (measured 100x slower collection with 2 threads
    #: beside other busy processes).
    torch_threads: int = _field(1, in_range(0, 256))  # 0 = torch's default
    #: show a tqdm bar on the console.
    progress_bar: bool = _field(True)
    #: where the networks and update batches live (environments stay on the CPU): auto = CUDA
    #: when torch sees a GPU, else the CPU; cuda / cuda:N without that GPU is an error
    #: (docs/DEVICES.md). Not part of the fingerprint: a run resumes on any device.
    device: str = _field("cpu", device_name)
    #: running mean/variance normalization of observations, checkpointed with the run;
    #: auto = on for continuous control (flat observations, Box actions), off otherwise
    #: (graph observations, Discrete/MultiDiscrete actions). See docs/SPACES.md.
    normalize_observations: Union[bool, str] = _field(AUTO, bool_or_auto, "true, false or 'auto'")

    @staticmethod
    def prepare(data: Mapping[str, Any], s: str) -> Mapping[str, Any]:
        """Setting total_steps alone implies episodes: null (the default budget is episodes)."""
        if data.get("total_steps") is not None and "episodes" not in data:
            return {**data, "episodes": None}
        return data

    def validate(self, s: str) -> None:
        _check((self.episodes is None) != (self.total_steps is None), f"{s}.episodes, {s}.total_steps",
               "set exactly one budget (the other null)",
               {"episodes": self.episodes, "total_steps": self.total_steps})
        _check(self.stop_at is None or self.eval_interval != 0, f"{s}.stop_at",
               f"needs evaluation during training ({s}.eval_interval > 0 or 'auto')", self.stop_at)


@dataclass(frozen=True)
class WandbConfig:
    """``experiment.wandb``: a Weights & Biases mirror of the TensorBoard scalars.

    Every key but ``mode`` and ``interval`` is passed to ``wandb.init`` as is ('' = W&B's own
    default). The mirror has its own interval, so it never depends on TensorBoard's.
    """

    #: offline (written under <experiment.directory>/wandb, `wandb sync` uploads it later),
    #: online (needs a W&B login), or disabled.
    mode: str = _field("disabled", one_of("offline", "online", "disabled"))
    #: wandb.init(project=...).
    project: str = _field("rlpipe")
    #: wandb.init(entity=...): the user or team; '' = your default entity.
    entity: str = _field("")
    #: wandb.init(group=...): e.g. one group per sweep; '' = none.
    group: str = _field("")
    #: wandb.init(tags=...).
    tags: tuple[str, ...] = _field(())
    #: wandb.init(name=...); '' = rlpipe-<fingerprint>-from-<episode> (one W&B run per process).
    name: str = _field("")
    #: wandb.init(notes=...).
    notes: str = _field("")
    #: scalars every N episodes; auto = about 100 points per run (>= 1; mode: disabled turns it off).
    interval: Union[int, str] = _field(AUTO, int_or_auto(1), "an integer >= 1 or 'auto'")


@dataclass(frozen=True)
class ExperimentConfig:
    """``experiment``: where and how often the logging hooks write."""

    #: folder of the logs, TensorBoard and captures.
    directory: str = _field("training_output", relative_path)
    #: TensorBoard every N episodes; auto = about 100 points per run; <= 0 off.
    write_interval: Union[int, str] = _field(AUTO, int_or_auto(-1_000_000_000), "an integer or 'auto'")
    #: steps.csv gets every N-th step of each episode; 0 = no steps.csv.
    step_log_interval: int = _field(1, non_negative)  # 0 = no steps.csv
    #: the Weights & Biases mirror (its own section: mode, project, entity, group, tags, ...).
    wandb: WandbConfig = _field(WandbConfig())
    #: write every N-th update's rollout (observations, actions, advantages ...) to
    #: <directory>/rollouts/ (docs/FILES.md); 0 = off.
    export_rollouts: int = _field(0, non_negative)


@dataclass(frozen=True)
class CheckpointConfig:
    """``checkpoint``: how often to save, how many to keep."""

    #: folder of the checkpoints.
    directory: str = _field("checkpoints", relative_path)
    #: a checkpoint every N episodes (and at the end and at a stop); auto = 10 per run; <= 0 off.
    interval: Union[int, str] = _field(AUTO, int_or_auto(-1_000_000_000), "an integer or 'auto'")
    #: periodic checkpoints kept (newest first); best.pt is kept apart.
    keep_last: int = _field(3, in_range(1, 10_000))
    #: one folder per checkpoint with one file per module instead of one file.
    store_separately: bool = _field(False)


@dataclass(frozen=True)
class CaptureConfig:
    """``capture``: when to record embeddings, attention and episode traces."""

    #: episode numbers to capture.
    episodes: tuple[int, ...] = _field((), positive)
    #: also capture every N-th episode (0 = off).
    every: int = _field(0, non_negative)
    #: and the last N episodes of the run.
    last: int = _field(1, non_negative)
    #: probe states per capture (the environment's, or sampled from the captured episode).
    probe_graphs: int = _field(8, in_range(1, 64))
    #: seed of the environment's probe states.
    probe_seed: int = _field(12345, non_negative)


@dataclass(frozen=True)
class SummarizeConfig:
    """``summarize``: the metrics window and the size of the plot series."""

    #: episodes averaged for the "final" values of metrics.json.
    window: int = _field(50, in_range(1, 1_000_000))
    #: points per plot series in data/plots/ (downsampled).
    max_points: int = _field(500, in_range(10, 1_000_000))


@dataclass(frozen=True)
class VisualizeConfig:
    """``visualize``: figure settings. Changing them reruns the visualize stage alone."""

    #: moving-average window of the training curves.
    smoothing: int = _field(20, in_range(1, 100_000))
    #: resolution of the PNG/GIF figures.
    dpi: int = _field(100, in_range(30, 600))
    #: matplotlib style of the figures.
    style: str = _field("whitegrid", one_of("whitegrid", "darkgrid", "white", "ticks", "default"))
    #: t-SNE perplexity (capped for small samples).
    tsne_perplexity: float = _field(30.0, in_range(1.0, 500.0))
    #: points in the t-SNE (a seeded sample keeping the chosen nodes).
    tsne_sample: int = _field(2000, in_range(10, 1_000_000))
    #: frames per second of episode.gif.
    animation_fps: int = _field(4, in_range(1, 60))
    #: frames of episode.gif at most (steps evenly spaced).
    animation_max_frames: int = _field(60, in_range(1, 10_000))
    #: the figures to draw (docs/FIGURES.md); the others become placeholders; null = every figure.
    #: The names are checked against the figure registry when the visualize stage starts
    #: (rlpipe.plots.registry.check_settings), so the training side never imports the figures.
    figures: Union[tuple[str, ...], None] = _field(None)
    #: image formats of the figures: png (declared in dvc.yaml), svg, or both (written side by
    #: side); checked with ``figures``.
    formats: tuple[str, ...] = _field(("png",))
    #: the capture drawn by the attention and embedding figures: its episode number; 0 = newest.
    capture_episode: int = _field(0, non_negative)



@dataclass(frozen=True)
class Params:
    env: EnvConfig
    agent: AgentConfig
    train: TrainConfig
    experiment: ExperimentConfig
    checkpoint: CheckpointConfig
    capture: CaptureConfig
    summarize: SummarizeConfig
    visualize: VisualizeConfig
    sweep: SweepConfig
    evaluate: EvaluateConfig = EvaluateConfig()

    SECTIONS = {
        "env": EnvConfig, "agent": AgentConfig, "train": TrainConfig,
        "experiment": ExperimentConfig, "checkpoint": CheckpointConfig,
        "capture": CaptureConfig, "summarize": SummarizeConfig, "visualize": VisualizeConfig,
        "sweep": SweepConfig, "evaluate": EvaluateConfig,
    }

    @classmethod
    def from_dict(cls, data: Any) -> "Params":
        if data is None:
            data = {}
        if not isinstance(data, Mapping):
            raise ConfigError(f"params: expected a mapping of sections, got {type(data).__name__}")
        unknown = sorted(set(data) - set(cls.SECTIONS))
        if unknown:
            raise ConfigError(f"{unknown[0]}: unknown section (allowed: {', '.join(cls.SECTIONS)})")
        return cls(**{name: build(sc, data.get(name), name) for name, sc in cls.SECTIONS.items()})

    def to_dict(self) -> dict[str, Any]:
        return json.loads(json.dumps(dataclasses.asdict(self)))


def read_params_file(path: str | os.PathLike = "params.yaml") -> Any:
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"{path}: file not found (run from the repository root)")
    try:
        return yaml.safe_load(path.read_bytes())  # bytes: a non-UTF-8 file is a YAMLError too
    except OSError as e:
        raise ConfigError(f"{path}: cannot read ({e.strerror or e})") from None
    except yaml.YAMLError as e:
        mark, problem = getattr(e, "problem_mark", None), getattr(e, "problem", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""
        detail = problem or str(e).splitlines()[0]
        if isinstance(e, yaml.reader.ReaderError):
            detail, where = "not UTF-8 text", f" (byte {e.position})"
        raise ConfigError(f"{path}: invalid YAML: {detail}{where}") from None


def load_params(path: str | os.PathLike = "params.yaml") -> Params:
    """Read and validate ``params.yaml`` (all sections)."""
    data = read_params_file(path)
    if data is None:
        raise ConfigError(f"{path}: the file is empty (expected sections {', '.join(Params.SECTIONS)})")
    return Params.from_dict(data)


# Settings that do not change what a run computes: changing them never blocks a resume.
FINGERPRINT_EXCLUDED = {
    # device: a checkpoint resumes on any device (docs/DEVICES.md); env_workers: same results;
    # the budget and evaluation during training never change what a rollout computes
    "train": {"episodes", "total_steps", "eval_interval", "eval_episodes", "stop_at",
              "on_mismatch", "progress_bar", "on_nan", "device", "env_workers"},
    # whole sections (None)
    **dict.fromkeys(("experiment", "checkpoint", "capture", "summarize", "visualize", "sweep",
                     "evaluate")),
}


# Source that decides what a run computes: editing it makes old checkpoints another run's.
FINGERPRINT_CODE = ("agents", "envs", "train", "config.py")


def code_digest() -> str:
    """A digest of the library source that defines a run (see ``FINGERPRINT_CODE``)."""
    root = Path(__file__).parent
    h = hashlib.sha256()
    for name in FINGERPRINT_CODE:
        p = root / name
        for f in sorted(p.rglob("*.py")) if p.is_dir() else [p]:
            h.update(f.relative_to(root).as_posix().encode())
            h.update(f.read_bytes())
    return h.hexdigest()[:16]


def fingerprint(params: Params) -> str:
    """A digest of what defines a run: its settings (anything but budget, logging, captures)
    and the training code (:func:`code_digest`)."""
    d = params.to_dict()
    kept = {}
    for section, values in d.items():
        excl = FINGERPRINT_EXCLUDED.get(section, set())
        if excl is None:
            continue
        kept[section] = {k: v for k, v in values.items() if k not in excl}
    kept["code"] = code_digest()
    blob = json.dumps(kept, sort_keys=True).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def params_digest(params: Params) -> str:
    """A digest of every setting (for logs and Parquet metadata)."""
    return hashlib.sha256(json.dumps(params.to_dict(), sort_keys=True).encode()).hexdigest()[:16]


def load_sections(path: str | os.PathLike, names: tuple[str, ...]) -> dict[str, Any]:
    """Read ``params.yaml`` and validate only the named sections (a stage reads its own); a name
    ``section.key`` is one setting of a section the stage does not own (visualize reads
    ``train.gamma``), validated alone (the default when missing). Unknown top-level sections are
    still refused, so a misspelt section name is never ignored."""
    data = read_params_file(path)
    if data is None:
        raise ConfigError(f"{path}: the file is empty (expected sections {', '.join(Params.SECTIONS)})")
    if not isinstance(data, Mapping):
        raise ConfigError(f"{path}: expected a mapping of sections, got {type(data).__name__}")
    unknown = sorted(set(data) - set(Params.SECTIONS))
    if unknown:
        raise ConfigError(f"{unknown[0]}: unknown section (allowed: {', '.join(Params.SECTIONS)})")
    out = {}
    for name in names:
        section, _, key = name.partition(".")
        values = data.get(section)
        if key:
            values = {key: values[key]} if isinstance(values, Mapping) and key in values else {}
        built = build(Params.SECTIONS[section], values, section)
        out[name] = getattr(built, key) if key else built
    return out
