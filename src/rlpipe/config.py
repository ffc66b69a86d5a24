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
import math
import os
import re
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Callable, Mapping, Union, get_args, get_origin, get_type_hints

import yaml

AUTO = "auto"


class ConfigError(ValueError):
    """A bad value in params.yaml; the message names the key and what is allowed."""


# --------------------------------------------------------------------------- validation helpers
def _check(cond: bool, key: str, allowed: str, value: Any) -> None:
    if not cond:
        raise ConfigError(f"{key}: {allowed}, got {value!r}")


def positive(key: str, v: Any) -> None:
    _check(v > 0, key, "must be > 0", v)


def non_negative(key: str, v: Any) -> None:
    _check(v >= 0, key, "must be >= 0", v)


def in_range(lo: float, hi: float) -> Callable[[str, Any], None]:
    def check(key: str, v: Any) -> None:
        _check(lo <= v <= hi, key, f"must be between {lo} and {hi}", v)

    return check


def one_of(*choices: str) -> Callable[[str, Any], None]:
    def check(key: str, v: Any) -> None:
        _check(v in choices, key, f"must be one of {', '.join(map(repr, choices))}", v)

    return check


def int_or_auto(lo: int) -> Callable[[str, Any], None]:
    """An int >= lo, or the string 'auto' (exact spelling)."""

    def check(key: str, v: Any) -> None:
        if isinstance(v, str):
            _check(v == AUTO, key, f"must be an integer or '{AUTO}'", v)
        else:
            _check(v >= lo, key, f"must be an integer >= {lo} or '{AUTO}'", v)

    return check


def bool_or_auto(key: str, v: Any) -> None:
    """true, false, or the string 'auto' (exact spelling)."""
    if isinstance(v, str):
        _check(v == AUTO, key, f"must be true, false or '{AUTO}'", v)


_DEVICE = re.compile(r"^(auto|cpu|cuda(:\d+)?)$")


def device_name(key: str, v: Any) -> None:
    """'auto', 'cpu', 'cuda' or 'cuda:N' (whether that GPU exists is checked when training starts)."""
    _check(bool(_DEVICE.match(v)), key, "must be 'auto', 'cpu', 'cuda' or 'cuda:N'", v)


def _field(default: Any, check: Callable[[str, Any], None] | None = None,
           allowed: str | None = None, **kw: Any) -> Any:
    meta: dict[str, Any] = {"check": check} if check else {}
    if allowed:
        meta["allowed"] = allowed  # how to describe the type in errors
    if isinstance(default, (list, dict, tuple)):
        return field(default_factory=lambda d=default: type(d)(d), metadata=meta, **kw)
    return field(default=default, metadata=meta, **kw)


def _type_name(tp: Any) -> str:
    origin = get_origin(tp)
    if origin is Union:
        return " or ".join(_type_name(a) for a in get_args(tp) if a is not type(None))
    if origin in (tuple, list):
        return f"a list of {_type_name(get_args(tp)[0])}"
    return {int: "an integer", float: "a number", bool: "true/false", str: "a string"}.get(
        tp, getattr(tp, "__name__", str(tp))
    )


def _coerce(key: str, tp: Any, value: Any) -> Any:
    """Check ``value`` against the annotation ``tp``; return it converted (int -> float, list -> tuple)."""
    origin = get_origin(tp)
    if origin is Union:
        args = [a for a in get_args(tp) if a is not type(None)]
        if value is None and type(None) in get_args(tp):
            return None
        for a in args:
            try:
                return _coerce(key, a, value)
            except ConfigError:
                continue
        raise ConfigError(f"{key}: expected {_type_name(tp)}, got {value!r}")
    if origin in (tuple, list):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{key}: expected {_type_name(tp)}, got {value!r}")
        inner = get_args(tp)[0]
        return tuple(_coerce(f"{key}[{i}]", inner, v) for i, v in enumerate(value))
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{key}: expected true/false, got {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{key}: expected an integer, got {value!r}")
        return value
    if tp is float:
        if isinstance(value, str):  # YAML reads 3e-4 (no dot) as a string
            try:
                value = float(value)
            except ValueError:
                raise ConfigError(f"{key}: expected a number, got {value!r}") from None
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{key}: expected a number, got {value!r}")
        if not math.isfinite(value):
            raise ConfigError(f"{key}: expected a finite number, got {value!r}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{key}: expected a string, got {value!r}")
        return value
    raise TypeError(f"unsupported config type {tp!r} for {key}")


def build(cls: type, data: Mapping[str, Any] | None, section: str) -> Any:
    """Build the frozen dataclass ``cls`` from a mapping, naming ``section.key`` in every error."""
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        raise ConfigError(f"{section}: expected a mapping of settings, got {data!r}")
    hints = get_type_hints(cls)
    known = {f.name: f for f in fields(cls)}
    unknown = sorted(set(data) - set(known))
    if unknown:
        raise ConfigError(
            f"{section}.{unknown[0]}: unknown key (allowed keys: {', '.join(sorted(known))})"
        )
    kwargs = {}
    for name, value in data.items():
        key = f"{section}.{name}"
        try:
            value = _coerce(key, hints[name], value)
        except ConfigError:
            allowed = known[name].metadata.get("allowed")
            if allowed is None:
                raise
            raise ConfigError(f"{key}: expected {allowed}, got {value!r}") from None
        check = known[name].metadata.get("check")
        if check is not None and value is not None:
            if isinstance(value, tuple):
                for i, v in enumerate(value):
                    check(f"{key}[{i}]", v)
            else:
                check(key, value)
        kwargs[name] = value
    obj = cls(**kwargs)
    post = getattr(obj, "validate", None)
    if post is not None:
        post(section)
    return obj


def relative_path(key: str, value: str) -> None:
    """A path setting must stay inside the repository: relative, no '..'."""
    p = Path(value)
    _check(
        not p.is_absolute() and ".." not in p.parts and value.strip() != "",
        key,
        "must be a relative path inside the repository (no absolute path, no '..')",
        value,
    )


# --------------------------------------------------------------------------- sections
@dataclass(frozen=True)
class EnvConfig:
    """``env``: which environment, and the graph service-deployment settings."""

    id: str = _field("rlpipe/GraphDeploy-v0")
    num_nodes: int = _field(20, in_range(3, 2000))
    num_cloud: int = _field(2, in_range(0, 100))
    requests_per_episode: int = _field(50, in_range(1, 100_000))
    max_rejections: int = _field(10, in_range(1, 100_000))
    action_masking: bool = _field(False)
    edge_radius: float = _field(0.3, in_range(0.0, 2.0))
    demand_min: float = _field(0.1, in_range(0.0, 1.0))
    demand_max: float = _field(0.4, in_range(0.0, 1.0))
    lifetime_min: int = _field(10, in_range(1, 100_000))
    lifetime_max: int = _field(40, in_range(1, 100_000))
    latency_budget_min: float = _field(20.0, positive)
    latency_budget_max: float = _field(120.0, positive)
    max_episode_steps: int = _field(0, non_negative)  # for gymnasium envs: 0 = the env's own limit

    def validate(self, s: str) -> None:
        if self.is_graph:
            _check(self.num_cloud < self.num_nodes, f"{s}.num_cloud",
                   f"must be < env.num_nodes ({self.num_nodes})", self.num_cloud)
            _check(self.demand_min <= self.demand_max, f"{s}.demand_min",
                   f"must be <= env.demand_max ({self.demand_max})", self.demand_min)
            _check(self.lifetime_min <= self.lifetime_max, f"{s}.lifetime_min",
                   f"must be <= env.lifetime_max ({self.lifetime_max})", self.lifetime_min)
            _check(self.latency_budget_min <= self.latency_budget_max, f"{s}.latency_budget_min",
                   f"must be <= env.latency_budget_max ({self.latency_budget_max})",
                   self.latency_budget_min)

    @property
    def is_graph(self) -> bool:
        return self.id.startswith("rlpipe/GraphDeploy")

    def env_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for ``gymnasium.make(self.id, ...)`` of the graph environment."""
        skip = {"id", "max_episode_steps"}
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name not in skip}


@dataclass(frozen=True)
class AgentConfig:
    """``agent``: network sizes. GAT for graph observations, MLP for flat Box observations."""

    hidden_dim: int = _field(32, in_range(1, 4096))
    heads: int = _field(4, in_range(1, 64))
    gat_layers: int = _field(2, in_range(1, 16))
    dropout: float = _field(0.0, in_range(0.0, 0.9))
    mlp_hidden: tuple[int, ...] = _field((64, 64), in_range(1, 8192))
    # initial log standard deviation of the Gaussian policy (Box actions); 0.0 = std 1
    log_std_init: float = _field(0.0, in_range(-20.0, 5.0))

    def validate(self, s: str) -> None:
        _check(len(self.mlp_hidden) > 0, f"{s}.mlp_hidden",
               "must list at least one hidden layer size, e.g. [64, 64]", list(self.mlp_hidden))


@dataclass(frozen=True)
class TrainConfig:
    """``train``: the algorithm and its hyper-parameters."""

    algo: str = _field("ppo", one_of("ppo", "a2c"))
    episodes: int = _field(480, in_range(1, 10_000_000))
    seed: int = _field(0, in_range(0, 2**32 - 1))  # numpy's legacy seeding takes 32 bits
    num_envs: int = _field(8, in_range(1, 1024))
    actor_lr: float = _field(3e-3, in_range(1e-8, 1.0))
    critic_lr: float = _field(3e-3, in_range(1e-8, 1.0))
    gamma: float = _field(0.2, in_range(0.0, 1.0))
    gae_lambda: float = _field(0.5, in_range(0.0, 1.0))
    clip_coef: float = _field(0.2, in_range(0.0, 10.0))
    update_epochs: int = _field(8, in_range(1, 1000))
    minibatches: int = _field(4, in_range(1, 10_000))
    ent_coef: float = _field(0.0, in_range(0.0, 10.0))
    vf_coef: float = _field(0.5, in_range(0.0, 100.0))
    max_grad_norm: float = _field(0.5, in_range(0.0, 1e6))
    normalize_advantages: bool = _field(True)
    summary_window: int = _field(50, in_range(1, 1_000_000))
    on_mismatch: str = _field("restart", one_of("restart", "error"))
    on_nan: str = _field("stop", one_of("stop", "skip"))
    # 1 by default: the batches are small, and extra threads cost more than they give on a
    # shared CPU (measured 100x slower collection with 2 threads beside other busy processes)
    torch_threads: int = _field(1, in_range(0, 256))  # 0 = torch's default
    # where the networks and update batches live (environments stay on the CPU): auto = CUDA
    # when torch sees a GPU, else CPU; cuda / cuda:N without that GPU is an error
    device: str = _field("cpu", device_name)
    # running mean/variance normalization of observations, checkpointed with the run.
    # auto = on for continuous control (flat observations and Box actions), off otherwise
    # (graph observations, Discrete/MultiDiscrete actions); see docs/SPACES.md for why
    normalize_observations: Union[bool, str] = _field(AUTO, bool_or_auto, "true, false or 'auto'")
    progress_bar: bool = _field(True)


def normalizes_observations(setting: bool | str, observation_kind: str, action_kind: str) -> bool:
    """Resolve ``train.normalize_observations``: ``auto`` is on for flat observations with Box
    actions (continuous control), off for graph observations and discrete actions."""
    if setting == AUTO:
        return observation_kind == "flat" and action_kind == "box"
    return bool(setting)


@dataclass(frozen=True)
class ExperimentConfig:
    """``experiment``: where and how often the logging hooks write."""

    directory: str = _field("training_output", relative_path)
    write_interval: Union[int, str] = _field(AUTO, int_or_auto(-1_000_000_000), "an integer or 'auto'")
    step_log_interval: int = _field(1, non_negative)  # 0 = no steps.csv
    wandb: bool = _field(False)
    wandb_project: str = _field("rlpipe")


@dataclass(frozen=True)
class CheckpointConfig:
    """``checkpoint``: how often to save, how many to keep."""

    directory: str = _field("checkpoints", relative_path)
    interval: Union[int, str] = _field(AUTO, int_or_auto(-1_000_000_000), "an integer or 'auto'")
    keep_last: int = _field(3, in_range(1, 10_000))
    store_separately: bool = _field(False)


@dataclass(frozen=True)
class CaptureConfig:
    """``capture``: when to record embeddings, attention and episode traces."""

    episodes: tuple[int, ...] = _field((), positive)
    every: int = _field(0, non_negative)
    last: int = _field(1, non_negative)
    probe_graphs: int = _field(8, in_range(1, 64))
    probe_seed: int = _field(12345, non_negative)


@dataclass(frozen=True)
class SummarizeConfig:
    """``summarize``: the metrics window and the size of the plot series."""

    window: int = _field(50, in_range(1, 1_000_000))
    max_points: int = _field(500, in_range(10, 1_000_000))


ALL_FIGURES = (
    "reward", "loss", "actions", "entropy", "value", "performance",
    "embeddings", "attention", "animation",
)


@dataclass(frozen=True)
class VisualizeConfig:
    """``visualize``: figure settings. Changing them reruns the visualize stage alone."""

    smoothing: int = _field(20, in_range(1, 100_000))
    dpi: int = _field(100, in_range(30, 600))
    style: str = _field("whitegrid", one_of("whitegrid", "darkgrid", "white", "ticks", "default"))
    tsne_perplexity: float = _field(30.0, in_range(1.0, 500.0))
    tsne_sample: int = _field(2000, in_range(10, 1_000_000))
    animation_fps: int = _field(4, in_range(1, 60))
    animation_max_frames: int = _field(60, in_range(1, 10_000))
    figures: tuple[str, ...] = _field(ALL_FIGURES, one_of(*ALL_FIGURES))


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

    SECTIONS = {
        "env": EnvConfig, "agent": AgentConfig, "train": TrainConfig,
        "experiment": ExperimentConfig, "checkpoint": CheckpointConfig,
        "capture": CaptureConfig, "summarize": SummarizeConfig, "visualize": VisualizeConfig,
    }

    @classmethod
    def from_dict(cls, data: Any) -> "Params":
        if data is None:
            data = {}
        if not isinstance(data, Mapping):
            raise ConfigError(f"params: expected a mapping of sections, got {type(data).__name__}")
        unknown = sorted(set(data) - set(cls.SECTIONS))
        if unknown:
            raise ConfigError(
                f"{unknown[0]}: unknown section (allowed: {', '.join(cls.SECTIONS)})"
            )
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
    # device: a checkpoint resumes on any device (docs/DEVICES.md)
    "train": {"episodes", "on_mismatch", "progress_bar", "on_nan", "device"},
    "experiment": None,  # whole section
    "checkpoint": None,
    "capture": None,
    "summarize": None,
    "visualize": None,
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
    """Read ``params.yaml`` and validate only the named sections (a stage reads its own).

    Unknown top-level sections are still refused, so a misspelt section name is never ignored.
    """
    data = read_params_file(path)
    if data is None:
        raise ConfigError(f"{path}: the file is empty (expected sections {', '.join(Params.SECTIONS)})")
    if not isinstance(data, Mapping):
        raise ConfigError(f"{path}: expected a mapping of sections, got {type(data).__name__}")
    unknown = sorted(set(data) - set(Params.SECTIONS))
    if unknown:
        raise ConfigError(f"{unknown[0]}: unknown section (allowed: {', '.join(Params.SECTIONS)})")
    return {n: build(Params.SECTIONS[n], data.get(n), n) for n in names}
