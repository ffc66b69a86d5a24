"""Rollout exports (``experiment.export_rollouts``): the file format, writing, and the loader.

Every N-th policy update, the transitions that update used are written to one file in
``<experiment.directory>/rollouts/``, named by the episodes finished at the end of that rollout:
``rollout_ep000080.parquet`` (flat observations) or ``rollout_ep000080.npz`` (graph
observations). A resume removes the files past its checkpoint, like the logs. The contract (and
the sizes) is in docs/FILES.md; :func:`load_rollout` reads either kind into the same names.

Per-step arrays (T = steps of the rollout, grouped by episode, each episode's steps in order):
:data:`STEP_ARRAYS`. Observations:

- flat (Parquet, zstd): one row per step; the column ``observation`` holds the observation
  flattened (a fixed-size list of float32); its shape is in the file metadata.
- graph (``.npz``, compressed): ``nodes`` [N_total, F] float32, ``edges`` [E_total, D] float32
  (D = 0 without edge features), ``edge_links`` [E_total, 2] int64 (node indices within its own
  graph), ``node_offsets`` and ``edge_offsets`` [T + 1] int64: step t's graph is
  ``nodes[node_offsets[t]:node_offsets[t + 1]]`` and the same slice of edges for its edges.

Imports no torch; pyarrow only for Parquet.
"""
from __future__ import annotations

import io
import json
import re
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from rlpipe.errors import InputFileError
from rlpipe.events import RolloutData
from rlpipe.io_utils import atomic_write_bytes

#: per-step arrays of every export, in column order: name -> RolloutData field
STEP_ARRAYS = {
    "update": None, "episode": "episode", "step": "step", "action": "actions",
    "log_prob": "log_probs", "value": "values", "reward": "rewards", "done": "dones",
    "advantage": "advantages", "return": "returns",
}
GRAPH_ARRAYS = ("nodes", "edges", "edge_links", "node_offsets", "edge_offsets")
FILE_RE = re.compile(r"^rollout_ep(\d{6,})\.(parquet|npz)$")
META_KEY = b"rlpipe.shapes"  # Parquet metadata: {column: per-row shape} of list columns


def rollout_name(episode: int, graph: bool) -> str:
    return f"rollout_ep{episode:06d}." + ("npz" if graph else "parquet")


def is_graph(observations: Sequence[Any]) -> bool:
    return bool(observations) and hasattr(observations[0], "edge_links")


def step_arrays(data: RolloutData) -> dict[str, np.ndarray]:
    """The per-step arrays of :data:`STEP_ARRAYS` (``update`` repeated on every row)."""
    n = len(data.episode)
    out = {"update": np.full(n, data.update, dtype=np.int64)}
    for name, attr in STEP_ARRAYS.items():
        if attr is not None:
            out[name] = np.asarray(getattr(data, attr))
    return out


def graph_arrays(observations: Sequence[Any]) -> dict[str, np.ndarray]:
    """Graph observations (``nodes``, ``edges``, ``edge_links``) concatenated with offsets."""
    nodes = [np.asarray(g.nodes, dtype=np.float32) for g in observations]
    links = [np.asarray(g.edge_links, dtype=np.int64).reshape(-1, 2) for g in observations]
    has_edges = all(g.edges is not None for g in observations)
    edges = [np.asarray(g.edges, dtype=np.float32).reshape(len(l), -1) if has_edges
             else np.zeros((len(l), 0), np.float32) for g, l in zip(observations, links)]
    offsets = lambda parts: np.concatenate([[0], np.cumsum([len(p) for p in parts])]).astype(np.int64)  # noqa: E731
    return {"nodes": np.concatenate(nodes), "edges": np.concatenate(edges),
            "edge_links": np.concatenate(links), "node_offsets": offsets(nodes),
            "edge_offsets": offsets(links)}


def rollout_bytes(data: RolloutData) -> tuple[bytes, bool]:
    """The export file's bytes, and whether it is the graph (``.npz``) kind."""
    arrays = step_arrays(data)
    if is_graph(data.observations):
        buf = io.BytesIO()
        np.savez_compressed(buf, **arrays, **graph_arrays(data.observations))
        return buf.getvalue(), True
    obs = np.asarray(data.observations, dtype=np.float32).reshape(len(data.observations), -1)
    shape = list(np.asarray(data.observations[0]).shape) if len(data.observations) else []
    return _parquet_bytes({**arrays, "observation": obs}, {"observation": shape}), False


def _parquet_bytes(columns: dict[str, np.ndarray], shapes: dict[str, list[int]]) -> bytes:
    import pyarrow as pa
    import pyarrow.parquet as pq

    fields = {}
    for name, arr in columns.items():
        if arr.ndim > 1:  # vector per row: a fixed-size list column, its shape in the metadata
            shapes.setdefault(name, list(arr.shape[1:]))
            flat = arr.reshape(len(arr), -1)
            fields[name] = pa.FixedSizeListArray.from_arrays(pa.array(flat.ravel()), flat.shape[1])
        else:
            fields[name] = pa.array(arr)
    table = pa.table(fields).replace_schema_metadata({META_KEY: json.dumps(shapes).encode()})
    buf = io.BytesIO()
    pq.write_table(table, buf, compression="zstd")
    return buf.getvalue()


def write_rollout(directory: Path, data: RolloutData, episode: int) -> Path:
    """Write one rollout atomically to ``directory`` (named by ``episode``); returns its path."""
    payload, graph = rollout_bytes(data)
    path = Path(directory) / rollout_name(episode, graph)
    atomic_write_bytes(path, payload)
    return path


def list_rollouts(directory: Path) -> list[tuple[int, Path]]:
    """Exported rollouts in ``directory``, oldest first: (episode, path)."""
    directory = Path(directory)
    if not directory.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in directory.iterdir() if (m := FILE_RE.match(p.name))]
    return sorted(found)


def trim_rollouts(directory: Path, keep_through: int) -> int:
    """Delete the exports past episode ``keep_through`` (a resume); returns how many."""
    gone = [p for e, p in list_rollouts(directory) if e > keep_through]
    for p in gone:
        p.unlink()
    return len(gone)


def load_rollout(path: str | Path) -> dict[str, np.ndarray]:
    """Read an exported rollout (either kind) into arrays.

    Returns the :data:`STEP_ARRAYS` ([T] each; ``action`` [T, ...] for vector actions) and
    either ``observation`` [T, *obs_shape] float32 (flat) or the :data:`GRAPH_ARRAYS` (graph; see
    :func:`graph_observation`). Raises :class:`~rlpipe.errors.InputFileError` naming the file.
    """
    path = Path(path)
    if not path.is_file():
        raise InputFileError(f"{path}: file not found")
    try:
        if path.suffix == ".npz":
            with np.load(path, allow_pickle=False) as z:
                out = {k: z[k] for k in z.files}
        else:
            out = _read_parquet(path)
    except Exception as e:  # noqa: BLE001 - a bad file is one clear message
        raise InputFileError(f"{path}: not a readable rollout export ({type(e).__name__}: {e})") from None
    missing = [k for k in STEP_ARRAYS if k not in out]
    if missing:
        raise InputFileError(f"{path}: not a rollout export (missing {', '.join(missing)})")
    return out


def _read_parquet(path: Path) -> dict[str, np.ndarray]:
    import pyarrow.parquet as pq

    table = pq.read_table(path)
    shapes = json.loads((table.schema.metadata or {}).get(META_KEY, b"{}"))
    out = {}
    for name in table.column_names:
        col = table.column(name).combine_chunks()
        if name in shapes:
            out[name] = col.flatten().to_numpy(zero_copy_only=False).reshape(len(col), *shapes[name])
        else:
            out[name] = col.to_numpy(zero_copy_only=False)
    return out


def graph_observation(arrays: dict[str, np.ndarray], t: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Step ``t``'s graph of a graph export: (nodes [N, F], edges [E, D], edge_links [E, 2])."""
    n0, n1 = arrays["node_offsets"][t], arrays["node_offsets"][t + 1]
    e0, e1 = arrays["edge_offsets"][t], arrays["edge_offsets"][t + 1]
    return arrays["nodes"][n0:n1], arrays["edges"][e0:e1], arrays["edge_links"][e0:e1]
