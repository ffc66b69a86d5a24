"""Export a checkpoint's policy to ONNX: ``policy.onnx`` and ``metadata.json`` beside it.

:func:`export_checkpoint` loads a checkpoint, rebuilds its agent on the CPU (networks and the
frozen observation normalizer), traces the actor (:mod:`rlpipe.deploy.policy_modules`) with
torch's TorchScript-based exporter (``dynamo=False``: a few hundred ms, no onnxscript), and
checks parity before anything is written: observations of the checkpoint's own environment
are run through the torch agent and through onnxruntime, and the export is refused unless the
greedy actions are identical and the parameters agree within :data:`PARITY_TOLERANCE`.
Everything happens in memory first; the two files are then written atomically (model, then
metadata, which carries the model's sha256, so a torn pair is detected on load).

Needs the ``export`` extra (``onnx``, ``onnxruntime``): torch's exporter refuses to write a
model without the ``onnx`` package (``OnnxExporterError: Module onnx is not installed!``), which
is why the export is not a stage of the default pipeline (docs/DESIGN.md).
"""
from __future__ import annotations

import hashlib
import importlib.util
import io
import json
import math
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

import rlpipe
from rlpipe.agents.spaces import BOX, DISCRETE
from rlpipe.checkpoints import load_checkpoint
from rlpipe.config import ConfigError, Params, params_digest
from rlpipe.deploy.parity import collect_observations, compare, torch_policy
from rlpipe.deploy.policy_modules import (
    FlatPolicy,
    GraphPolicy,
    dense_ready,
    traceable_kernels,
)
from rlpipe.deploy.space_codec import space_to_json
from rlpipe.errors import RlpipeError
from rlpipe.io_utils import atomic_write_bytes, atomic_write_text
from rlpipe.paths import EXPORT_METADATA

OPSET = 17
FORMATS = ("onnx",)
#: largest difference of logits / means between torch and onnxruntime that passes, relative to
#: ``max(1, |value|)`` (float32 rounding grows with a trained policy's logits)
PARITY_TOLERANCE = 1e-5
#: observations of the checkpoint's environment the export checks (seeded: reproducible)
PARITY_STATES = 64
PARITY_SEED = 20_000


class ExportError(RlpipeError):
    """A policy that cannot be exported (one line naming the reason); nothing is written."""


@dataclass(frozen=True)
class ExportResult:
    model: Path
    metadata: Path
    size_bytes: int
    seconds: float          # trace + serialize (the parity check not included)
    parity: dict[str, Any]


def _needs(module: str) -> None:
    if importlib.util.find_spec(module) is None:
        raise ExportError(f"ONNX export needs the {module!r} package: pip install -e '.[export]'")


def policy_module(agent) -> torch.nn.Module:
    """The module to trace for ``agent``; :class:`ExportError` when its network cannot be."""
    if agent.kind == "graph":
        reason = dense_ready(agent.actor)
        if reason:
            raise ExportError(f"this checkpoint's network cannot be exported: {reason}")
        module = GraphPolicy(agent.actor, agent.normalizer)
    else:
        module = FlatPolicy(agent.actor, agent.normalizer, agent.actions.kind)
    return module.eval()


def _signature(agent) -> tuple[tuple[torch.Tensor, ...], list[str], list[str], dict]:
    """Example inputs, input and output names, dynamic axes."""
    gen = torch.Generator().manual_seed(0)
    if agent.kind == "graph":
        n, f, d = 5, agent.observations.dim, agent.observations.edge_dim
        links = torch.tensor([[i, (i + 1) % n] for i in range(n)] + [[0, 2], [3, 1]], dtype=torch.int64)
        args = (torch.randn(n, f, generator=gen), torch.rand(len(links), d, generator=gen), links)
        axes = {"nodes": {0: "num_nodes"}, "edges": {0: "num_edges"},
                "edge_links": {0: "num_edges"}, "logits": {0: "num_nodes"}}
        return args, ["nodes", "edges", "edge_links"], ["logits"], axes
    outputs = ["mean", "log_std"] if agent.actions.kind == BOX else ["logits"]
    axes = {name: {0: "batch"} for name in ["obs", *outputs]}
    return (torch.randn(2, agent.observations.dim, generator=gen),), ["obs"], outputs, axes


def to_onnx(agent, opset: int = OPSET) -> bytes:
    """The agent's policy as ONNX bytes (:class:`ExportError` when it cannot be exported)."""
    _needs("onnx")
    module = policy_module(agent)
    args, inputs, outputs, axes = _signature(agent)
    buf = io.BytesIO()
    try:
        with warnings.catch_warnings(), torch.no_grad(), traceable_kernels():
            warnings.simplefilter("ignore")   # tracer warnings about shapes: axes are declared
            torch.onnx.export(module, args, buf, input_names=inputs, output_names=outputs,
                              dynamic_axes=axes, opset_version=opset, dynamo=False)
    except Exception as e:  # noqa: BLE001 - the exporter's refusal, in one line
        first = str(e).strip().splitlines()[0] if str(e).strip() else ""
        raise ExportError(f"torch.onnx.export failed: {type(e).__name__}: {first}") from None
    return buf.getvalue()


def agent_from_checkpoint(state: dict[str, Any], env) -> Any:
    """The checkpoint's agent on the CPU: networks in eval mode, the normalizer frozen."""
    from rlpipe.agents.policy import build_agent
    from rlpipe.evaluation.runner import params_from_checkpoint

    params = params_from_checkpoint(state)
    normalize = state.get("obs_normalizer") is not None
    agent = build_agent(env.observation_space, env.action_space, params.agent, normalize)
    try:
        agent.actor.load_state_dict(state["actor"])
        agent.critic.load_state_dict(state["critic"])
        if normalize:
            agent.normalizer.load_state_dict(state["obs_normalizer"])
    except (RuntimeError, ValueError) as e:
        first = str(e).strip().splitlines()[0]
        raise ExportError(f"the checkpoint's weights do not fit its params' network: {first}") from None
    agent.actor.eval()
    return agent


def check_parity(agent, model: bytes, spaces: tuple, observations: list[Any]) -> dict[str, Any]:
    """Run ``observations`` through the torch agent and the ONNX model (onnxruntime);
    ``spaces``: the (observation, action) spaces of the agent's environment."""
    from rlpipe.inference import Policy

    _needs("onnxruntime")
    import onnxruntime as ort

    session = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
    meta = {"observation_space": space_to_json(spaces[0]), "action_space": space_to_json(spaces[1]),
            "policy": {"kind": agent.kind}}
    exported = Policy(session, meta)
    want, want_modes = torch_policy(agent, observations)
    got = exported.distributions(observations)
    return compare(want, want_modes, got, [exported.mode(p) for p in got], PARITY_TOLERANCE)


def _finite(value: Any) -> float | None:
    """A float for metadata.json (strict JSON: no inf/nan), or None."""
    return float(value) if isinstance(value, (int, float)) and math.isfinite(value) else None


def _digest(stored: dict[str, Any]) -> str:
    try:
        return params_digest(Params.from_dict(stored))
    except ConfigError:  # params of an older rlpipe: the digest of what the checkpoint holds
        return hashlib.sha256(json.dumps(stored, sort_keys=True).encode()).hexdigest()[:16]


def metadata(agent, spaces: tuple, state: dict[str, Any], model: bytes, output: Path,
             source: str, parity: dict[str, Any], opset: int = OPSET) -> dict[str, Any]:
    """``metadata.json`` of an export (contract: docs/FILES.md)."""
    stored = json.loads(state["params"])
    env = stored.get("env", {})
    outputs = ["mean", "log_std"] if agent.actions.kind == BOX else ["logits"]
    inputs = ["nodes", "edges", "edge_links"] if agent.kind == "graph" else ["obs"]
    return {
        "format": "rlpipe-policy", "format_version": 1, "model": output.name,
        "sha256": hashlib.sha256(model).hexdigest(), "opset": opset,
        "rlpipe_version": rlpipe.__version__, "torch_version": torch.__version__.split("+")[0],
        "params_digest": _digest(stored), "fingerprint": state.get("fingerprint"),
        "checkpoint": {"path": source, "episode": state.get("episode"),
                       "global_step": state.get("global_step"),
                       "best_mean_reward": _finite(state.get("stats", {}).get("best_mean_reward"))},
        "env": {"id": env.get("id"), "kwargs": env.get("kwargs", {}),
                "action_masking": bool(env.get("action_masking", False))},
        "observation_space": space_to_json(spaces[0]), "action_space": space_to_json(spaces[1]),
        "policy": {"kind": agent.kind, "inputs": inputs, "outputs": outputs,
                   "distribution": ("categorical" if agent.actions.kind == DISCRETE else
                                    "diag_gaussian" if agent.actions.kind == BOX else
                                    "multi_categorical"),
                   "normalization_in_graph": agent.normalizer is not None,
                   "graphs_per_call": 1 if agent.kind == "graph" else None},
        "parity": parity,
    }


def _check_output(output: Path, fmt: str) -> None:
    if fmt not in FORMATS:
        raise ExportError(f"--format {fmt!r}: not supported (formats: {', '.join(FORMATS)})")
    if output.suffix != ".onnx":
        raise ExportError(f"--output {output}: the file name must end in .onnx")
    if output.is_dir():
        raise ExportError(f"--output {output}: is a folder; give the .onnx file's path")
    if output.parent.exists() and not output.parent.is_dir():
        raise ExportError(f"--output {output}: {output.parent} is not a folder")


def export_checkpoint(checkpoint: str | Path, output: str | Path, fmt: str = "onnx",
                      parity_states: int = PARITY_STATES) -> ExportResult:
    """Export the policy of ``checkpoint`` (file or ``store_separately`` folder) to ``output``
    and ``metadata.json`` beside it. Raises :class:`ExportError` / ``CheckpointError`` /
    ``ConfigError`` (one line each) before writing anything."""
    output = Path(output)
    _check_output(output, fmt)
    _needs("onnx")
    _needs("onnxruntime")
    from rlpipe.train.environment import make_env
    from rlpipe.evaluation.runner import params_from_checkpoint

    state = load_checkpoint(checkpoint)
    try:
        params = params_from_checkpoint(state)
    except ConfigError as e:
        raise ExportError(f"{checkpoint}: its params are not valid for this rlpipe ({e})") from None
    env = make_env(params.env)
    try:
        agent = agent_from_checkpoint(state, env)
        spaces = (env.observation_space, env.action_space)
        start = time.perf_counter()
        model = to_onnx(agent)
        seconds = time.perf_counter() - start
        parity = check_parity(agent, model, spaces, collect_observations(env, parity_states, PARITY_SEED))
    finally:
        env.close()
    if parity["greedy_actions_differing"] or not parity["max_scaled_difference"] <= PARITY_TOLERANCE:
        raise ExportError(f"parity check failed on {parity['states']} states: max difference "
                          f"{parity['max_scaled_difference']:.3g} (tolerance {PARITY_TOLERANCE}), "
                          f"{parity['greedy_actions_differing']} greedy actions differ; nothing written")
    meta = metadata(agent, spaces, state, model, output, str(checkpoint), parity)
    output.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(output, model)
    meta_path = output.parent / EXPORT_METADATA
    atomic_write_text(meta_path, json.dumps(meta, indent=2, allow_nan=False) + "\n")
    return ExportResult(output, meta_path, len(model), seconds, parity)
