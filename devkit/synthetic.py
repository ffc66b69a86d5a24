"""Synthetic visualize inputs (summary Parquet files and captures) for tests and benchmarks.

The files follow docs/FILES.md: Parquet columns = CSV columns with the Arrow types listed there,
captures as ``index.json`` + npz/json files. Fixtures of the tests and the summarize and
visualize benchmarks; the library never imports this module.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from rlpipe.plots.inputs import EPISODE_COLUMNS, STEP_COLUMNS, UPDATE_COLUMNS

INT_COLUMNS = {"Episode", "Step", "Global Step", "Update", "Action", "Oracle Action",
               "Episode Length", "Skipped"}
BOOL_COLUMNS = {"Feasible"}
GRAPH_METRICS = ("Acceptance Rate", "Mean Latency", "Mean Utilization", "Load Imbalance")


def write_parquet(path: Path, columns: dict[str, np.ndarray | list]) -> None:
    """Write ``columns`` (NaN / None = null) with the Arrow types of docs/FILES.md."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    arrays = {}
    for name, values in columns.items():
        typ = pa.bool_() if name in BOOL_COLUMNS else pa.int64() if name in INT_COLUMNS \
            else pa.float64()
        arrays[name] = pa.array(values, type=typ, from_pandas=True)  # NaN / None -> null
    table = pa.table(arrays).replace_schema_metadata({"rlpipe.params_digest": "synthetic"})
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path, compression="zstd")


def write_summary(root: Path, episodes: int = 200, steps_per_episode: int = 10,
                  oracle: bool = True, metrics: tuple[str, ...] = GRAPH_METRICS,
                  updates_every: int = 4, num_actions: int = 6, seed: int = 0,
                  step_rows: bool = True) -> Path:
    """``root/data/summary/{episodes,updates,steps}.parquet`` of a learning-looking run."""
    rng = np.random.default_rng(seed)
    out = Path(root) / "data" / "summary"
    ep = np.arange(1, episodes + 1)
    progress = ep / episodes
    steps_n = np.full(episodes, steps_per_episode)
    cum = 10 * progress + rng.normal(0, 2, episodes)
    mean = np.convolve(cum, np.ones(50) / 50)[:episodes]
    first_rollout = ep <= min(8, episodes)
    loss_a = np.where(first_rollout, np.nan, 0.5 * np.exp(-3 * progress) + rng.normal(0, .05, episodes))
    loss_c = np.where(first_rollout, np.nan, 2.0 * np.exp(-3 * progress) + 0.01)
    ent = np.where(first_rollout, np.nan, np.log(num_actions) * (1 - 0.6 * progress))
    acc = np.clip(0.2 + 0.7 * progress + rng.normal(0, 0.05, episodes), 0, 1) if oracle \
        else np.full(episodes, np.nan)
    cols = {
        "Episode": ep, "Immediate Reward": cum / steps_n, "Cumulative Reward": cum,
        "Actor Loss": loss_a, "Critic Loss": loss_c, "Policy Entropy": ent,
        "Episode Length": steps_n, "Mean Episode Reward": mean, "Deployment Accuracy": acc,
    }
    for i, m in enumerate(metrics):
        cols[m] = np.clip(0.3 + 0.5 * progress + rng.normal(0, 0.05, episodes), 0, 1) * (1 + 10 * i)
    assert list(cols)[:len(EPISODE_COLUMNS)] == list(EPISODE_COLUMNS)
    write_parquet(out / "episodes.parquet", cols)

    nu = max(1, episodes // updates_every)
    u = np.arange(1, nu + 1)
    pu = u / nu
    skipped = np.zeros(nu, dtype=np.int64)
    if nu > 10:
        skipped[nu // 3] = 1
    ucols = {
        "Update": u, "Global Step": u * updates_every * steps_per_episode,
        "Episode": np.minimum(u * updates_every, episodes),
        "Actor Loss": np.where(skipped == 1, np.nan, 0.5 * np.exp(-3 * pu) + rng.normal(0, .05, nu)),
        "Critic Loss": np.where(skipped == 1, np.nan, 2.0 * np.exp(-3 * pu) + 0.01 + rng.random(nu) * .05),
        "Policy Entropy": np.log(num_actions) * (1 - 0.6 * pu) + rng.normal(0, .02, nu),
        "Approx KL": np.abs(rng.normal(0.01, 0.005, nu)), "Clip Fraction": rng.random(nu) * 0.2,
        "Explained Variance": 1 - np.exp(-4 * pu) + rng.normal(0, 0.05, nu) - 0.3,
        "Learning Rate": np.full(nu, 1e-3), "Actor Grad Norm": rng.random(nu),
        "Critic Grad Norm": rng.random(nu), "Skipped": skipped,
    }
    assert list(ucols) == list(UPDATE_COLUMNS)
    write_parquet(out / "updates.parquet", ucols)

    n = episodes * steps_per_episode if step_rows else 0
    s_ep = np.repeat(ep, steps_per_episode)[:n]
    s_st = np.tile(np.arange(1, steps_per_episode + 1), episodes)[:n]
    s_prog = s_ep / episodes
    best = rng.integers(0, num_actions, n)
    greedy = rng.random(n) < s_prog
    action = np.where(greedy, best, rng.integers(0, num_actions, n))
    reward = np.where(action == best, 1.0, -0.2) + rng.normal(0, 0.1, n)
    value = (steps_per_episode - s_st + 1) * 0.5 * s_prog + rng.normal(0, 0.3, n)
    scols = {
        "Episode": s_ep, "Step": s_st, "Global Step": np.arange(1, n + 1), "Action": action,
        "Reward": reward, "Value": value, "Log Prob": -rng.random(n), "Entropy": rng.random(n),
        "Oracle Action": best.astype(float) if oracle else np.full(n, np.nan),
        "Feasible": (rng.random(n) < 0.9) if oracle else [None] * n,
    }
    assert list(scols) == list(STEP_COLUMNS)
    if oracle:
        scols["Mean Utilization"] = rng.random(n)
        scols["Max Utilization"] = rng.random(n)
    write_parquet(out / "steps.parquet", scols)
    return out


def graph_embeddings(num_graphs: int, num_nodes: int, dim: int = 16, num_cloud: int = 2,
                     seed: int = 0) -> dict[str, np.ndarray]:
    """Arrays of a graph agent's ``epXXXXXX_embeddings.npz``."""
    rng = np.random.default_rng(seed)
    n = num_graphs * num_nodes
    node = np.tile(np.arange(num_nodes), num_graphs)
    second_kind = node < num_cloud
    emb = rng.normal(size=(n, dim)).astype(np.float32)
    emb[second_kind] += 3.0
    probs = rng.random(n).astype(np.float32)
    graph = np.repeat(np.arange(num_graphs), num_nodes)
    for g in range(num_graphs):
        sl = graph == g
        probs[sl] /= probs[sl].sum()
    chosen = np.zeros(n, dtype=bool)
    for g in range(num_graphs):
        idx = np.flatnonzero(graph == g)
        chosen[idx[np.argmax(probs[idx])]] = True
    reference = np.zeros(n, dtype=bool)
    reference[::7] = True
    return {
        "embeddings": emb, "graph": graph.astype(np.int64), "node": node.astype(np.int64),
        "node_kind": second_kind.astype(np.int64), "node_kind_names": np.array(["edge", "cloud"]),
        "value_utilization": rng.random(n).astype(np.float32), "chosen": chosen,
        "reference": reference, "probs": probs,
    }


def mlp_embeddings(num_obs: int, dim: int = 16, num_actions: int = 2, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    action = rng.integers(0, num_actions, num_obs)
    emb = rng.normal(size=(num_obs, dim)).astype(np.float32) + action[:, None] * 2.0
    return {"embeddings": emb.astype(np.float32), "action": action.astype(np.int64),
            "value": rng.normal(size=num_obs).astype(np.float32)}


def graph_edges(num_nodes: int, seed: int = 0) -> np.ndarray:
    """Undirected ring plus a few chords, as directed pairs [E, 2] (both directions)."""
    rng = np.random.default_rng(seed)
    pairs = {(i, (i + 1) % num_nodes) for i in range(num_nodes)}
    for _ in range(num_nodes // 2):
        a, b = rng.integers(0, num_nodes, 2)
        if a != b:
            pairs.add((int(a), int(b)))
    und = sorted({tuple(sorted(p)) for p in pairs})
    return np.array(und, dtype=np.int64)


def attention_arrays(num_nodes: int, heads: tuple[int, ...] = (4, 1), num_cloud: int = 2,
                     seed: int = 0) -> dict[str, np.ndarray]:
    """Arrays of ``epXXXXXX_attention.npz``: per layer edge_index [2, E + N] with self-loops last,
    alpha [E + N, H] normalised over each target's incoming edges."""
    rng = np.random.default_rng(seed)
    und = graph_edges(num_nodes, seed)
    directed = np.concatenate([und, und[:, ::-1]], axis=0).T  # [2, E] source, target
    loops = np.stack([np.arange(num_nodes)] * 2)
    ei = np.concatenate([directed, loops], axis=1).astype(np.int64)
    out: dict[str, np.ndarray] = {
        "num_nodes": np.array(num_nodes, dtype=np.int64),
        "layers": np.array(len(heads), dtype=np.int64),
        "node_labels": np.array([f"C{i}" if i < num_cloud else f"E{i - num_cloud}"
                                 for i in range(num_nodes)]),
        "node_kinds": (np.arange(num_nodes) < num_cloud).astype(np.int64),
        "node_kind_names": np.array(["edge", "cloud"]),
    }
    for layer, h in enumerate(heads):
        raw = rng.random((ei.shape[1], h)) + 0.05
        denom = np.zeros((num_nodes, h))
        np.add.at(denom, ei[1], raw)
        out[f"edge_index_{layer}"] = ei
        out[f"alpha_{layer}"] = (raw / denom[ei[1]]).astype(np.float32)
    return out


def graph_trace(episode: int, num_nodes: int, steps: int, num_cloud: int = 2, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    pos = rng.random((num_nodes, 2))
    out_steps = []
    util = rng.random(num_nodes) * 0.3
    for _k in range(steps):
        util = np.clip(util + rng.normal(0.02, 0.05, num_nodes), 0, 1)
        action = int(rng.integers(0, num_nodes))
        reference = sorted({int(x) for x in rng.integers(0, num_nodes, 2)})
        out_steps.append({
            "focus": int(rng.integers(num_cloud, num_nodes)),
            "caption": f"demand {float(rng.random() * .4):.2f}",
            "action": action, "reference": reference,
            "reward": float(1.0 if action in reference else -0.5),
            "valid": bool(rng.random() < 0.9), "node_values": [float(u) for u in util],
        })
    return {"episode": episode, "num_nodes": num_nodes, "positions": pos.tolist(),
            "edges": graph_edges(num_nodes, seed).tolist(),
            "node_kinds": [int(i < num_cloud) for i in range(num_nodes)],
            "node_kind_names": ["edge", "cloud"], "node_value_name": "utilisation",
            "focus_name": "request source", "steps": out_steps}


def simple_trace(episode: int, steps: int, num_actions: int = 2, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    return {"episode": episode, "steps": [
        {"action": int(rng.integers(0, num_actions)), "reward": float(rng.random())}
        for _ in range(steps)]}


def write_captures(root: Path, kind: str = "graph", episodes: tuple[int, ...] = (50, 100),
                   probe_graphs: int = 2, num_nodes: int = 6, heads: tuple[int, ...] = (4, 1),
                   trace_steps: int = 12, mlp_points: int = 64, directory: str = "training_output",
                   seed: int = 0) -> Path:
    """``root/<directory>/captures/`` with index.json and one set of files per episode."""
    cap = Path(root) / directory / "captures"
    cap.mkdir(parents=True, exist_ok=True)
    entries = []
    for i, e in enumerate(episodes):
        stem = f"ep{e:06d}"
        entry = {"episode": e, "embeddings": f"{stem}_embeddings.npz", "trace": f"{stem}_trace.json"}
        if kind == "graph":
            np.savez(cap / entry["embeddings"],
                     **graph_embeddings(probe_graphs, num_nodes, seed=seed + i))
            entry["attention"] = f"{stem}_attention.npz"
            np.savez(cap / entry["attention"], **attention_arrays(num_nodes, heads, seed=seed + i))
            trace = graph_trace(e, num_nodes, trace_steps, seed=seed + i)
        else:
            np.savez(cap / entry["embeddings"], **mlp_embeddings(mlp_points, seed=seed + i))
            trace = simple_trace(e, trace_steps, seed=seed + i)
        (cap / entry["trace"]).write_text(json.dumps(trace))
        entries.append(entry)
    (cap / "index.json").write_text(json.dumps({"captures": entries}, indent=1))
    return cap


def write_params(root: Path, visualize: dict | None = None, experiment: dict | None = None) -> Path:
    import yaml

    doc = {"visualize": visualize or {}, "experiment": experiment or {}}
    p = Path(root) / "params.yaml"
    p.write_text(yaml.safe_dump(doc))
    return p


def write_eval_episodes(root: Path, episodes: int = 5, reference: bool = True, seed: int = 0) -> Path:
    """eval/episodes.csv as the evaluate stage writes it: two variants, two checkpoints and the
    baselines (reference only with ``reference``), ``episodes`` rows each, random numbers."""
    rng = np.random.default_rng(seed)
    path = Path(root) / "eval" / "episodes.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    policies = ["final", "best", "random"] + (["reference"] if reference else [])
    lines = ["Variant,Policy,Episode,Seed,Return,Length" + (",Reference Accuracy" if reference else "")]
    for variant in ("trained", "zero_shot_2x"):
        for policy in policies:
            for j in range(episodes):
                acc = f",{rng.uniform():.4f}" if reference else ""
                lines.append(f"{variant},{policy},{j + 1},{1024 + j},{rng.normal(10, 3):.4f},12{acc}")
    path.write_text("\n".join(lines) + "\n")
    return path
