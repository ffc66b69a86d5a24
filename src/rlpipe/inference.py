"""Run an exported policy (``rlpipe export``) with onnxruntime alone: no torch, no PyG.

    from rlpipe.inference import load_policy
    policy = load_policy("policy/policy.onnx")      # or the folder; metadata.json beside it
    action = policy.act(obs)                        # greedy, as env.step takes it
    params = policy.distribution(obs)               # {"logits": ...} or {"mean", "log_std"}

Observations are taken exactly as the environment returns them: a ``GraphInstance`` (any number
of nodes and edges; one graph per call), a Box array, or any flattenable space (flattened here as
in training, :mod:`rlpipe.agents.spaces`). Normalization, when the run used it, is inside the
ONNX graph. The distribution's parameters:

- Discrete actions, and graph policies (one logit per node): ``logits`` [n]; softmax gives the
  probabilities, ``act`` takes the argmax.
- MultiDiscrete: ``logits``, a list with one array per component.
- Box: ``mean`` and ``log_std`` [D] of the diagonal Gaussian; ``act`` returns the mean clipped to
  the bounds (as ``rlpipe evaluate --policy greedy``).

Action masks (``env.action_masking``: ``info["action_mask"]``) are passed to ``act`` /
``distribution`` (Discrete actions and graph policies): masked actions get the float32 minimum
logit, as in training. Importing this module imports no torch (tests/deploy check it).
"""
from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from rlpipe.agents.spaces import BOX, DISCRETE, action_spec, observation_spec
from rlpipe.deploy.space_codec import SpaceCodecError, space_from_json
from rlpipe.errors import RlpipeError
from rlpipe.paths import EXPORT_METADATA

#: ``metadata.json``'s ``format`` and the version this module reads
METADATA_FORMAT = "rlpipe-policy"
METADATA_VERSION = 1
_NEG = np.finfo(np.float32).min


class PolicyLoadError(RlpipeError):
    """An exported policy that cannot be loaded; one line naming the file and the problem."""


def _read_metadata(model: Path) -> dict[str, Any]:
    meta_path = model.parent / EXPORT_METADATA
    try:
        meta = json.loads(meta_path.read_text())
    except FileNotFoundError:
        raise PolicyLoadError(f"{meta_path}: not found (an exported policy is its .onnx file "
                              f"and {EXPORT_METADATA} beside it)") from None
    except (OSError, ValueError) as e:
        raise PolicyLoadError(f"{meta_path}: unreadable ({type(e).__name__}: {e})") from None
    if not isinstance(meta, dict) or meta.get("format") != METADATA_FORMAT:
        raise PolicyLoadError(f"{meta_path}: not an rlpipe policy's metadata")
    if meta.get("format_version") != METADATA_VERSION:
        raise PolicyLoadError(f"{meta_path}: format version {meta.get('format_version')!r} is not "
                              f"supported (this rlpipe reads {METADATA_VERSION})")
    if meta.get("model") != model.name:
        raise PolicyLoadError(f"{meta_path}: describes {meta.get('model')!r}, not {model.name!r} "
                              "(export each policy to a folder of its own)")
    return meta


def load_policy(path: str | Path, threads: int = 1) -> Policy:
    """The exported policy at ``path`` (the ``.onnx`` file, or its folder), on onnxruntime's CPU
    provider with ``threads`` intra-op threads. Raises :class:`PolicyLoadError`."""
    path = Path(path)
    if path.is_dir():
        found = sorted(path.glob("*.onnx"))
        if len(found) != 1:
            raise PolicyLoadError(f"{path}: expected one .onnx file in the folder, found {len(found)}")
        path = found[0]
    if not path.is_file():
        raise PolicyLoadError(f"{path}: file not found")
    meta = _read_metadata(path)
    data = path.read_bytes()
    if hashlib.sha256(data).hexdigest() != meta.get("sha256"):
        raise PolicyLoadError(f"{path}: its content does not match {EXPORT_METADATA} (sha256); "
                              "the file was changed or belongs to another export")
    try:
        import onnxruntime as ort
    except ImportError:
        raise PolicyLoadError("rlpipe.inference needs onnxruntime: pip install 'rlpipe[export]'") from None
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    try:
        session = ort.InferenceSession(data, options, providers=["CPUExecutionProvider"])
    except Exception as e:  # noqa: BLE001 - onnxruntime's refusal, in one line
        first = str(e).strip().splitlines()[0] if str(e).strip() else ""
        raise PolicyLoadError(f"{path}: onnxruntime cannot load it ({type(e).__name__}: {first})") from None
    try:
        return Policy(session, meta)
    except (SpaceCodecError, KeyError, ValueError) as e:
        raise PolicyLoadError(f"{path.parent / EXPORT_METADATA}: {e}") from None


class Policy:
    """An exported policy on onnxruntime (made by :func:`load_policy`).

    Attributes:
        metadata: ``metadata.json`` as a dict (docs/FILES.md).
        observation_space, action_space: the spaces the policy was trained on.
        kind: ``"graph"`` (one logit per node of the observed graph) or ``"flat"``.
    """

    def __init__(self, session, metadata: dict[str, Any]):
        self.session = session
        self.metadata = metadata
        self.observation_space = space_from_json(metadata["observation_space"])
        self.action_space = space_from_json(metadata["action_space"])
        self.kind = metadata["policy"]["kind"]
        self._obs = observation_spec(self.observation_space)
        self._act = action_spec(self.action_space)
        self._inputs = [i.name for i in session.get_inputs()]
        self._outputs = [o.name for o in session.get_outputs()]

    # ------------------------------------------------------------------ inputs
    def _graph_feed(self, obs) -> dict[str, np.ndarray]:
        nodes = np.asarray(obs.nodes, dtype=np.float32)
        n = nodes.shape[0]
        nodes = nodes.reshape(n, -1)
        if nodes.shape[1] != self._obs.dim or n == 0:
            raise ValueError(f"graph observation with nodes of shape {np.shape(obs.nodes)}: the "
                             f"policy takes [N >= 1, {self._obs.dim}]")
        links = np.asarray(obs.edge_links, dtype=np.int64).reshape(-1, 2)
        e = links.shape[0]
        if obs.edges is None or e == 0:
            edges = np.zeros((e, 1 if obs.edges is None else self._obs.edge_dim), np.float32)
        else:
            edges = np.asarray(obs.edges, dtype=np.float32).reshape(e, -1)
        if edges.shape[1] != self._obs.edge_dim:
            raise ValueError(f"graph observation with {edges.shape[1]} edge features: the policy "
                             f"takes {self._obs.edge_dim}")
        if e and (links.min() < 0 or links.max() >= n):
            raise ValueError(f"graph observation: edge_links point outside its {n} nodes")
        real = links[links[:, 0] != links[:, 1]]
        if len(np.unique(real[:, 0] * n + real[:, 1])) != len(real):
            raise ValueError("graph observation with a repeated edge: the exported policy's "
                             "dense adjacency holds one edge per node pair")
        feed = {"nodes": nodes, "edges": edges, "edge_links": links}
        return {k: v for k, v in feed.items() if k in self._inputs}

    def _flat_feed(self, observations: Sequence[Any]) -> dict[str, np.ndarray]:
        x = np.stack([self._obs.encode(o) for o in observations]).astype(np.float32, copy=False)
        return {"obs": x}

    # ------------------------------------------------------------------ outputs
    def _params(self, out: list[np.ndarray]) -> list[dict[str, Any]]:
        """Per-row distribution parameters of a flat batch's outputs."""
        if self._act.kind == BOX:
            return [{"mean": m, "log_std": s} for m, s in zip(out[0], out[1])]
        if self._act.kind == DISCRETE:
            return [{"logits": row} for row in out[0]]
        cuts = np.cumsum(self._act.nvec)[:-1]
        return [{"logits": np.split(row, cuts)} for row in out[0]]

    def _masked(self, params: dict[str, Any], mask) -> dict[str, Any]:
        if mask is None:
            return params
        if self.kind == "flat" and self._act.kind != DISCRETE:
            raise ValueError("action masks apply to Discrete actions and graph policies only")
        mask = np.asarray(mask, dtype=bool).reshape(-1)
        logits = params["logits"]
        if mask.shape != logits.shape:
            raise ValueError(f"action mask of {mask.size} entries for {logits.size} actions")
        return {"logits": np.where(mask, logits, _NEG).astype(np.float32)}

    def mode(self, params: dict[str, Any]) -> np.ndarray:
        """The distribution's mode in the agent's terms: the argmax of the logits (int64 [],
        or [K] per component), or the Gaussian mean (unclipped)."""
        if self._act.kind == BOX:
            return np.asarray(params["mean"])
        if self._act.kind == DISCRETE:
            return np.int64(np.argmax(params["logits"]))
        return np.array([np.argmax(p) for p in params["logits"]], np.int64)

    # ------------------------------------------------------------------ public
    def distributions(self, observations: Sequence[Any],
                      action_masks: Sequence[Any] | None = None) -> list[dict[str, Any]]:
        """The distribution's parameters for each observation: flat policies run the whole
        batch in one call, graph policies one graph per call."""
        if self.kind == "graph":
            params = [{"logits": self.session.run(self._outputs, self._graph_feed(o))[0]}
                      for o in observations]
        else:
            params = self._params(self.session.run(self._outputs, self._flat_feed(observations)))
        masks = action_masks if action_masks is not None else [None] * len(params)
        return [self._masked(p, m) for p, m in zip(params, masks, strict=True)]

    def distribution(self, obs: Any, action_mask: Any = None) -> dict[str, Any]:
        """The action distribution's parameters for one observation (module docstring)."""
        return self.distributions([obs], None if action_mask is None else [action_mask])[0]

    def act_batch(self, observations: Sequence[Any], action_masks: Sequence[Any] | None = None) -> list[Any]:
        """Greedy actions, as the environment takes them, for several observations."""
        return [self._act.to_env(self.mode(p)) for p in self.distributions(observations, action_masks)]

    def act(self, obs: Any, action_mask: Any = None) -> Any:
        """The greedy action for one observation, as ``env.step`` takes it."""
        return self._act.to_env(self.mode(self.distribution(obs, action_mask)))
