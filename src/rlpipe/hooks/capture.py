"""The capture hook: node embeddings, GAT attention and episode traces at scheduled episodes.

Captures run the agent, in eval mode and without touching any random generator the training
uses (turning captures on or off never changes what the run computes), on *probe states*: the
environment's own fixed states when it offers them (``probe_states`` of the environment
contract; the same states every time, so captures are comparable across training), else states
of the captured episode itself. Files: docs/FILES.md (captures/).
"""
from __future__ import annotations

import io
import json
from collections import deque
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch

from rlpipe.action_log import ActionLayout, scalar_actions
from rlpipe.envs.contract import ProbeState
from rlpipe.events import EpisodeRecord, RolloutEnd, RunInfo
from rlpipe.hooks.base import Hook
from rlpipe.io_utils import atomic_write_bytes, atomic_write_text
from rlpipe.paths import CAPTURE_INDEX as INDEX


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


def node_labels(kinds: np.ndarray, kind_names: Sequence[str]) -> list[str]:
    """``E0, E1, C0 ...``: each kind's initial (or its whole name when initials clash) and a
    running number within the kind."""
    initials = [n[:1].upper() for n in kind_names]
    short = len(set(initials)) == len(initials)
    counts = [0] * len(kind_names)
    labels = []
    for k in kinds:
        k = int(k) if 0 <= int(k) < len(kind_names) else 0
        labels.append(f"{initials[k] if short else kind_names[k]}{counts[k]}")
        counts[k] += 1
    return labels


class CaptureHook(Hook):
    """Writes ``epXXXXXX_{embeddings,attention}.npz`` and ``epXXXXXX_trace.json`` for the
    scheduled episodes, at the end of the rollout that finished them.

    Args:
        directory: the captures folder.
        explicit, every, last: the schedule (:func:`capture_schedule`).
        probe_count: states per capture when the fallback samples the captured episode
            (graph agents); flat agents use every state of the episode.
        agent: the agent (``collate``, ``distribution``, ``actor.embed``).
        probe_states: returns the environment's fixed probe states, or None when it has none.
        node_kinds: kind index per node of an observation (environment contract).
    """

    def __init__(self, directory: Path, explicit: tuple[int, ...], every: int, last: int,
                 probe_count: int, agent, probe_states: Callable[[], list[ProbeState] | None],
                 node_kinds: Callable[[Any], np.ndarray]):
        self.directory = Path(directory)
        self.explicit, self.every, self.last = explicit, every, last
        self.probe_count = probe_count
        self.agent = agent
        self._probe_source = probe_states
        self._node_kinds = node_kinds
        self.pending: list[EpisodeRecord] = []
        self._probe: list[ProbeState] | None = None
        self._probe_loaded = False

    # ------------------------------------------------------------------ lifecycle
    def on_train_start(self, run: RunInfo) -> None:
        self.run = run
        self.kind_names = run.env.node_kind_names
        budget = run.run_budget
        # a step budget: the last episodes are known only at its last rollout (_recent)
        self.by_steps = budget.unit == "steps"
        self.schedule = (capture_schedule(self.explicit, 0, 0, 10**12) if self.by_steps else
                         capture_schedule(self.explicit, self.every, self.last, run.target_episodes))
        self._recent: deque[EpisodeRecord] = deque(maxlen=self.last if self.by_steps else 0)
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
        if ep.episode in self.schedule or (self.by_steps and self.every > 0
                                           and ep.episode % self.every == 0):
            self.pending.append(ep)
        elif self._recent.maxlen:
            self._recent.append(ep)

    def on_rollout_end(self, rollout: RolloutEnd) -> None:
        if rollout.final and self._recent:  # a step budget's last episodes, in order
            self.pending = sorted([*self.pending, *self._recent], key=lambda e: e.episode)
        for ep in self.pending:
            self._capture(ep)
        if self.pending:
            self._write_index()
        self.pending = []

    # ------------------------------------------------------------------ capture
    def _capture(self, ep: EpisodeRecord) -> None:
        stem = f"ep{ep.episode:06d}"
        entry: dict[str, Any] = {"episode": ep.episode}
        states = self._states(ep)
        if self.run.agent_kind == "graph":
            emb, att = self._graph_arrays(states)
            atomic_write_bytes(self.directory / f"{stem}_embeddings.npz", _npz_bytes(emb))
            atomic_write_bytes(self.directory / f"{stem}_attention.npz", _npz_bytes(att))
            entry.update(embeddings=f"{stem}_embeddings.npz", attention=f"{stem}_attention.npz")
        else:
            atomic_write_bytes(self.directory / f"{stem}_embeddings.npz",
                               _npz_bytes(self._flat_arrays(states)))
            entry["embeddings"] = f"{stem}_embeddings.npz"
        layout = self.run.action_layout or ActionLayout("discrete")
        trace = ep.trace if ep.trace is not None else {
            "steps": [{"action": a, "reward": float(r)}
                      for a, r in zip(scalar_actions(layout, ep.actions), ep.rewards)]}
        trace = {**trace, "episode": ep.episode}
        atomic_write_text(self.directory / f"{stem}_trace.json", json.dumps(trace))
        entry["trace"] = f"{stem}_trace.json"
        self.index = [e for e in self.index if e.get("episode") != ep.episode] + [entry]

    def _states(self, ep: EpisodeRecord) -> list[ProbeState]:
        """The environment's fixed probe states, else states of the captured episode."""
        if not self._probe_loaded:
            self._probe = self._probe_source()
            self._probe_loaded = True
        if self._probe:
            return self._probe
        obs = list(ep.observations)
        if self.run.agent_kind == "graph" and len(obs) > self.probe_count:
            picks = np.linspace(0, len(obs) - 1, self.probe_count).round().astype(int)
            obs = [obs[i] for i in picks]
        return [ProbeState(obs=o) for o in obs]

    def _kinds(self, state: ProbeState, n: int) -> np.ndarray:
        if state.node_kinds is not None:
            return np.asarray(state.node_kinds, dtype=np.int64).reshape(-1)
        return self._node_kinds(state.obs)

    def _batch(self, states: list[ProbeState]):
        """The agent's batch of ``states`` (raw observations, prepared here: flattened, and
        normalized with the current statistics, which a capture never moves)."""
        return self.agent.collate(self.agent.preprocess([s.obs for s in states], update=False))

    @torch.no_grad()
    def _graph_arrays(self, states: list[ProbeState]) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
        agent = self.agent
        agent.actor.eval()
        batch = self._batch(states)
        h = agent.actor.embed(batch)
        probs = agent.distribution(batch).probs.cpu()
        sizes = (batch.ptr[1:] - batch.ptr[:-1]).tolist()
        total = int(batch.x.shape[0])
        chosen = np.zeros(total, dtype=bool)
        flat_probs = np.zeros(total, dtype=np.float32)
        for g, n in enumerate(sizes):
            start = int(batch.ptr[g])
            flat_probs[start:start + n] = probs[g, :n].numpy()
            chosen[start + int(probs[g, :n].argmax())] = True
        kinds = [self._kinds(s, n) for s, n in zip(states, sizes)]
        emb = {
            "embeddings": h.cpu().numpy().astype(np.float32),
            "graph": batch.batch.cpu().numpy().astype(np.int64),
            "node": np.concatenate([np.arange(n) for n in sizes]).astype(np.int64),
            "node_kind": np.concatenate(kinds).astype(np.int64),
            "node_kind_names": np.asarray(self.kind_names),
            "chosen": chosen,
            "probs": flat_probs,
        }
        if all(s.reference is not None for s in states):
            emb["reference"] = np.concatenate([s.reference for s in states]).astype(bool)
        shared = set.intersection(*(set(s.node_values) for s in states)) if states else set()
        for name in sorted(shared):
            emb[f"value_{name}"] = np.concatenate(
                [np.asarray(s.node_values[name], dtype=np.float32) for s in states])
        first = self._batch(states[:1])
        _, layers = agent.actor.embed(first, return_attention=True)
        kinds0 = kinds[0]
        att: dict[str, np.ndarray] = {
            "num_nodes": np.asarray(sizes[0]), "layers": np.asarray(len(layers)),
            "node_labels": np.asarray(node_labels(kinds0, self.kind_names)),
            "node_kinds": kinds0, "node_kind_names": np.asarray(self.kind_names),
        }
        for l, (ei, alpha) in enumerate(layers):
            att[f"edge_index_{l}"] = ei.cpu().numpy().astype(np.int64)
            att[f"alpha_{l}"] = alpha.cpu().numpy().astype(np.float32).reshape(alpha.shape[0], -1)
        return emb, att

    @torch.no_grad()
    def _flat_arrays(self, states: list[ProbeState]) -> dict[str, np.ndarray]:
        agent = self.agent
        agent.actor.eval()
        obs = self._batch(states)
        greedy = agent.distribution(obs).mode().cpu().numpy()
        actions = np.asarray(scalar_actions(agent.actions.layout(), greedy))
        return {
            "embeddings": agent.actor.embed(obs).cpu().numpy().astype(np.float32),
            # Discrete: the greedy action; MultiDiscrete: its flat index; Box: its clipped mean
            "action": actions.astype(np.float32 if agent.actions.kind == "box" else np.int64),
            "value": agent.critic(obs).cpu().numpy().astype(np.float32),
        }
