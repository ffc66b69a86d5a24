"""The capture hook: node embeddings, GAT attention and episode traces at scheduled episodes.

Captures are computed on a fixed probe set (same graphs every time, so captures are comparable
across training), in eval mode, without touching any random generator the training uses: turning
captures on or off never changes what the run computes. Files: docs/FILES.md (captures/).
"""
from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch

from rlpipe.action_log import ActionLayout, scalar_actions
from rlpipe.hooks.base import EpisodeRecord, Hook, RunInfo
from rlpipe.io_utils import atomic_write_bytes, atomic_write_text

INDEX = "index.json"


def capture_schedule(explicit: tuple[int, ...], every: int, last: int, target: int) -> set[int]:
    """Episodes to capture: the explicit list, every multiple of ``every``, the last ``last``."""
    sched = {e for e in explicit if 1 <= e <= target}
    if every > 0:
        sched.update(range(every, target + 1, every))
    sched.update(range(max(1, target - last + 1), target + 1))
    return sched


def _npz_bytes(arrays: dict[str, np.ndarray]) -> bytes:
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    return buf.getvalue()


class CaptureHook(Hook):
    def __init__(self, directory: Path, explicit: tuple[int, ...], every: int, last: int,
                 probe_graphs: int, probe_seed: int, agent):
        self.directory = Path(directory)
        self.explicit, self.every, self.last = explicit, every, last
        self.probe_graphs, self.probe_seed = probe_graphs, probe_seed
        self.agent = agent
        self.pending: list[EpisodeRecord] = []
        self._probe: list[dict[str, Any]] | None = None

    # ------------------------------------------------------------------ lifecycle
    def on_train_start(self, run: RunInfo) -> None:
        self.run = run
        self.schedule = capture_schedule(self.explicit, self.every, self.last, run.target_episodes)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.index = self._trimmed_index(run.start_episode)
        self._write_index()

    def _trimmed_index(self, keep_through: int) -> list[dict]:
        """Keep entries up to the resume point; remove files of captures past it."""
        path = self.directory / INDEX
        entries: list[dict] = []
        if keep_through > 0 and path.exists():
            try:
                entries = json.loads(path.read_text()).get("captures", [])
            except (ValueError, AttributeError):
                entries = []
        kept = [e for e in entries if isinstance(e, dict) and e.get("episode", 10**12) <= keep_through]
        keep_files = {f for e in kept for k, f in e.items() if k != "episode"}
        for p in self.directory.glob("ep*_*"):
            if p.name not in keep_files:
                p.unlink()
        return kept

    def _write_index(self) -> None:
        atomic_write_text(self.directory / INDEX, json.dumps({"captures": self.index}, indent=1))

    def on_episode_end(self, ep: EpisodeRecord) -> None:
        if ep.episode in self.schedule:
            self.pending.append(ep)

    def on_rollout_end(self, trainer) -> None:
        for ep in self.pending:
            self._capture(ep)
        if self.pending:
            self._write_index()
        self.pending = []

    # ------------------------------------------------------------------ capture
    def _capture(self, ep: EpisodeRecord) -> None:
        stem = f"ep{ep.episode:06d}"
        entry: dict[str, Any] = {"episode": ep.episode}
        if self.run.agent_kind == "graph":
            emb, att = self._graph_arrays()
            atomic_write_bytes(self.directory / f"{stem}_embeddings.npz", _npz_bytes(emb))
            atomic_write_bytes(self.directory / f"{stem}_attention.npz", _npz_bytes(att))
            entry.update(embeddings=f"{stem}_embeddings.npz", attention=f"{stem}_attention.npz")
        else:
            atomic_write_bytes(self.directory / f"{stem}_embeddings.npz", _npz_bytes(self._flat_arrays()))
            entry["embeddings"] = f"{stem}_embeddings.npz"
        layout = self.run.action_layout or ActionLayout("discrete")
        trace = ep.trace if ep.trace is not None else {
            "steps": [{"action": a, "reward": float(r)}
                      for a, r in zip(scalar_actions(layout, ep.actions), ep.rewards)]}
        trace = {**trace, "episode": ep.episode}
        atomic_write_text(self.directory / f"{stem}_trace.json", json.dumps(trace))
        entry["trace"] = f"{stem}_trace.json"
        self.index = [e for e in self.index if e.get("episode") != ep.episode] + [entry]

    def _probe_set(self) -> list[dict[str, Any]]:
        if self._probe is None:
            self._probe = self._make_probe()
        return self._probe

    def _make_probe(self) -> list[dict[str, Any]]:
        if self.run.agent_kind == "graph":
            from rlpipe.envs.graph_deploy import make_probe

            return make_probe(self.run.params.env.env_kwargs(), self.probe_graphs, self.probe_seed)
        env = self.run.env_factory()
        rng = np.random.default_rng(self.probe_seed)
        obs, _ = env.reset(seed=self.probe_seed)
        discrete = isinstance(env.action_space, gym.spaces.Discrete)
        env.action_space.seed(self.probe_seed)
        states = []
        while len(states) < 256 * self.probe_graphs:
            states.append(obs)  # raw: preprocessed (flattened, normalized) when captured
            action = int(rng.integers(env.action_space.n)) if discrete else env.action_space.sample()
            obs, _, term, trunc, _ = env.step(action)
            if term or trunc:
                obs, _ = env.reset(seed=int(rng.integers(2**31)))
        env.close()
        return [{"obs": s} for s in states]

    @torch.no_grad()
    def _graph_arrays(self) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
        probe = self._probe_set()
        agent = self.agent
        agent.actor.eval()
        batch = agent.collate([p["obs"] for p in probe])
        h = agent.actor.embed(batch)
        dist = agent.distribution(batch)
        probs = dist.probs
        sizes = (batch.ptr[1:] - batch.ptr[:-1]).tolist()
        chosen = np.zeros(batch.x.shape[0], dtype=bool)
        flat_probs = np.zeros(batch.x.shape[0], dtype=np.float32)
        for g, n in enumerate(sizes):
            start = int(batch.ptr[g])
            flat_probs[start:start + n] = probs[g, :n].numpy()
            chosen[start + int(probs[g, :n].argmax())] = True
        emb = {
            "embeddings": h.numpy().astype(np.float32),
            "graph": batch.batch.numpy().astype(np.int64),
            "node": np.concatenate([np.arange(n) for n in sizes]).astype(np.int64),
            "is_cloud": np.concatenate([p["is_cloud"] for p in probe]).astype(bool),
            "is_source": np.concatenate([p["is_source"] for p in probe]).astype(bool),
            "utilization": np.concatenate([p["utilization"] for p in probe]).astype(np.float32),
            "chosen": chosen,
            "oracle": np.concatenate([p["oracle_best"] for p in probe]).astype(bool),
            "probs": flat_probs,
        }
        first = agent.collate([probe[0]["obs"]])
        _, layers = agent.actor.embed(first, return_attention=True)
        is_cloud = np.asarray(probe[0]["is_cloud"], dtype=bool)
        labels = []
        edge_i = cloud_i = 0
        for c in is_cloud:
            labels.append(f"C{cloud_i}" if c else f"E{edge_i}")
            cloud_i += int(c)
            edge_i += int(not c)
        att: dict[str, np.ndarray] = {
            "num_nodes": np.asarray(len(is_cloud)), "layers": np.asarray(len(layers)),
            "node_labels": np.asarray(labels), "is_cloud": is_cloud,
        }
        for l, (ei, alpha) in enumerate(layers):
            att[f"edge_index_{l}"] = ei.numpy().astype(np.int64)
            att[f"alpha_{l}"] = alpha.numpy().astype(np.float32).reshape(alpha.shape[0], -1)
        return emb, att

    @torch.no_grad()
    def _flat_arrays(self) -> dict[str, np.ndarray]:
        probe = self._probe_set()
        agent = self.agent
        agent.actor.eval()
        obs = agent.collate(agent.preprocess([p["obs"] for p in probe]))  # frozen statistics
        greedy = agent.distribution(obs).mode().cpu().numpy()
        actions = np.asarray(scalar_actions(agent.actions.layout(), greedy))
        return {
            "embeddings": agent.actor.embed(obs).cpu().numpy().astype(np.float32),
            "action": actions.astype(np.float32 if agent.actions.kind == "box" else np.int64),
            "value": agent.critic(obs).cpu().numpy().astype(np.float32),
        }
