"""Service-chain placement: place the services of each chain one after another on a network.

Each episode draws a network (:func:`~rlpipe.envs.service_chain.topology.knn_topology`: the
``neighbours`` nearest nodes plus a spanning tree; whole-millisecond link latencies) whose nodes
have a hardware kind (compute, storage, accelerator) and a few service slots, and a stream of
*chains*. A chain enters the network at an *ingress* node and is a sequence of services, each
requiring a kind (two consecutive services never the same kind). One step places one service:
the agent picks the node that hosts it.

The quality of a node is **relational**: the latency a service adds is the shortest-path latency
from the *anchor* (the node hosting the chain's previous service, or the ingress for the first
one) to that node. The observation gives each node only its own state (its kind, whether it
matches the service, its slots, whether it is the anchor) and the links their latencies: no node
feature says how far it is from the anchor. Reference set: :mod:`.reference`.

This module imports numpy (and scipy when available) only: it runs in the training hot loop.
"""
from __future__ import annotations

from dataclasses import asdict

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from rlpipe.envs.contract import REFERENCE_NEXT, ProbeState, reference_walk
from rlpipe.envs.service_chain import reference
from rlpipe.envs.service_chain.config import HARDWARE_KINDS, ServiceChainConfig
from rlpipe.envs.service_chain.topology import all_pairs_latency, knn_topology, undirected_links
from rlpipe.envs.settings import build

#: Node feature columns of the observation, in order (``F = 8``).
NODE_FEATURES = (
    "kind_compute",         # one-hot hardware kind of the node ...
    "kind_storage",
    "kind_accelerator",
    "kind_match",           # 1 when the node's kind is the one the service requires
    "free_slots",           # free slots / capacity_max
    "utilization",          # used slots / the node's slots
    "feasible",             # 1 when the node can host the service (kind_match and a free slot)
    "is_anchor",            # 1 for the node hosting the chain's previous service (or its ingress)
)
NUM_NODE_FEATURES = len(NODE_FEATURES)
COL_KIND, COL_MATCH, COL_FREE, COL_UTIL, COL_FEASIBLE, COL_ANCHOR = 0, 3, 4, 5, 6, 7

#: Node kinds for the attention and embedding figures: a node's role in the current decision.
ROLE_NAMES = ("anchor", "candidate", "other")
REJECTED_REWARD = -1.0
MAX_LATENCY_PENALTY = 1.5   # a feasible placement pays at least 1 - 1.5 = -0.5


class ServiceChainEnv(gym.Env):
    r"""Place the services of chains on a network, one service per step.

    **Reward**: a feasible node pays ``1 - min(latency / latency_scale, 1.5)`` (latency in ms,
    from the anchor along shortest paths; the service takes one slot for its lifetime); an
    infeasible node pays ``-1`` and the service is rejected (the chain goes on from the same
    anchor). **Termination** after the last service of ``chains_per_episode`` chains, or once
    ``max_rejections`` services were rejected; ``truncated`` is always False. A service placed at
    step ``t`` with lifetime ``L`` frees its slot at the end of step ``t + L``. Everything random
    is drawn at :meth:`reset` from ``self.np_random``; :meth:`step` draws nothing.

    **Contract** (:mod:`rlpipe.envs.contract`): every step's info holds ``reference_hit``,
    ``reference_action``, ``valid`` and ``step_summary``; the last step's info ``metrics`` and
    ``episode_trace``; after :meth:`reset` and every step, ``action_mask`` (feasible nodes, all
    if none) and ``reference_next`` (bool [N], the reference set) describe the next decision.

    Args:
        **kwargs: the fields of :class:`ServiceChainConfig` (checked, errors name
            ``env.kwargs.<key>``).
        render_mode (None): only None (animations come from the episode traces).

    Shapes:
        - **observation:** ``GraphInstance(nodes, edges, edge_links)``: nodes float32
          :math:`[N, 8]` (columns :data:`NODE_FEATURES`), edges float32 :math:`[2E, 1]` (link
          latency / ``link_latency_max``), edge_links int64 :math:`[2E, 2]` (the :math:`E` links
          ``(u, v), u < v``, then the same reversed).
        - **action:** int in :math:`[0, N)`
    """

    metadata = {"render_modes": []}
    config_class = ServiceChainConfig
    metric_names = ("Acceptance Rate", "Mean Latency", "Excess Latency", "Mean Utilization")
    step_summary_names = ("Latency", "Mean Utilization", "Max Utilization")
    has_reference = True
    node_kind_names = ROLE_NAMES
    node_features = NODE_FEATURES

    def __init__(self, render_mode: str | None = None, **kwargs) -> None:
        if render_mode is not None:
            raise ValueError(f"ServiceChainEnv does not render (render_mode={render_mode!r})")
        self.config = build(ServiceChainConfig, kwargs, "env.kwargs")
        self.render_mode = None
        self.num_nodes = self.config.num_nodes
        self.record_trace = True  # set False to skip the episode trace (long episodes)
        self.observation_space = spaces.Graph(
            node_space=spaces.Box(0.0, 1.0, (NUM_NODE_FEATURES,), np.float32),
            edge_space=spaces.Box(0.0, 1.0, (1,), np.float32))
        self.action_space = spaces.Discrete(self.num_nodes)
        self._episode = 0
        self._done = True

    # ------------------------------------------------------------------ contract
    def node_kinds(self, obs) -> np.ndarray:
        """Role of every node of ``obs`` (int64 [N], indices into :data:`ROLE_NAMES`)."""
        x = np.asarray(obs.nodes)
        roles = np.full(x.shape[0], 2, dtype=np.int64)
        roles[x[:, COL_FEASIBLE] > 0.5] = 1
        roles[x[:, COL_ANCHOR] > 0.5] = 0
        return roles

    def probe_states(self, n: int, seed: int, warmup_steps: int = 10) -> list[ProbeState]:
        """``n`` fixed states: a fresh env reset with ``seed + i``, then ``warmup_steps``
        reference decisions (the last state before the episode would end, if sooner)."""
        env = ServiceChainEnv(**asdict(self.config))
        env.record_trace = False
        return reference_walk(env, n, seed, warmup_steps, env._probe)

    def _probe(self, obs, info) -> ProbeState:
        nodes = np.array(obs.nodes)
        return ProbeState(
            obs=spaces.GraphInstance(nodes, np.array(obs.edges), np.array(obs.edge_links)),
            reference=np.array(info[REFERENCE_NEXT], dtype=bool),
            node_kinds=self.node_kinds(obs),
            node_values={"load": nodes[:, COL_UTIL].astype(np.float64)})

    # ------------------------------------------------------------------ episode generation
    def _draw_episode(self) -> None:
        c, rng, n = self.config, self.np_random, self.num_nodes
        self._pos = rng.uniform(0.0, 1.0, size=(n, 2))
        self._pairs = knn_topology(self._pos, c.neighbours)
        link_lat = rng.integers(c.link_latency_min, c.link_latency_max + 1, size=len(self._pairs))
        self._dist = all_pairs_latency(n, self._pairs, link_lat)
        self._kind = rng.permutation(np.arange(n) % len(HARDWARE_KINDS))  # kinds balanced
        self._cap = rng.integers(c.capacity_min, c.capacity_max + 1, size=n)
        lengths = rng.integers(c.chain_length_min, c.chain_length_max + 1, size=c.chains_per_episode)
        self._ingress = rng.integers(0, n, size=c.chains_per_episode)
        total = int(lengths.sum())
        self._chain = np.repeat(np.arange(c.chains_per_episode), lengths)
        starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
        self._first = np.zeros(total, dtype=bool)
        self._first[starts] = True
        self._pos_in_chain = np.arange(total) - np.repeat(starts, lengths)
        kinds = len(HARDWARE_KINDS)
        shift = rng.integers(1, kinds, size=total)  # consecutive services differ in kind
        shift[starts] = rng.integers(0, kinds, size=len(starts))
        self._req_kind = np.cumsum(shift) % kinds
        self._life = rng.integers(c.lifetime_min, c.lifetime_max + 1, size=total)
        self._total = total
        lat = (link_lat / c.link_latency_max).astype(np.float32)
        self._obs_edges = np.concatenate([lat, lat])[:, None]
        self._obs_links = undirected_links(self._pairs)
        self._kind_onehot = np.eye(kinds, dtype=np.float32)[self._kind]
        self._inv_cap = 1.0 / self._cap

    # ------------------------------------------------------------------ per-decision view
    def _prepare(self) -> None:
        """Anchor, feasibility, reference set and observation of decision ``self._t``."""
        t = min(self._t, self._total - 1)  # the final observation repeats the last decision
        if self._first[t] and self._t < self._total:
            self._anchor = int(self._ingress[self._chain[t]])
        kind = int(self._req_kind[t])
        free = self._cap - self._used
        feas = reference.feasible_mask(self._kind, free, kind)
        lat = self._dist[self._anchor]
        self._cur_lat, self._cur_feas = lat, feas
        self._cur_ref = reference.reference_set(lat, feas)
        self._cur_any_feas = bool(feas.any())
        x = np.zeros((self.num_nodes, NUM_NODE_FEATURES), dtype=np.float32)
        x[:, COL_KIND:COL_KIND + 3] = self._kind_onehot
        x[:, COL_MATCH] = self._kind == kind
        x[:, COL_FREE] = free / self.config.capacity_max
        x[:, COL_UTIL] = self._used * self._inv_cap
        x[:, COL_FEASIBLE] = feas
        x[self._anchor, COL_ANCHOR] = 1.0
        # fresh edge arrays every step: callers keep observations
        self._obs = spaces.GraphInstance(x, self._obs_edges.copy(), self._obs_links.copy())

    def _next_info(self) -> dict:
        mask = self._cur_feas.copy() if self._cur_any_feas else np.ones(self.num_nodes, dtype=bool)
        return {"action_mask": mask, REFERENCE_NEXT: self._cur_ref}

    # ------------------------------------------------------------------ gym API
    def reset(self, *, seed: int | None = None, options: dict | None = None):
        """Draw a new network and the episode's chains; return the first observation."""
        super().reset(seed=seed)
        self._draw_episode()
        self._used = np.zeros(self.num_nodes, dtype=np.int64)
        self._releases: dict[int, list[int]] = {}
        self._t = 0
        self._anchor = 0
        self._accepted = self._rejected = 0
        self._lat_sum = self._excess_sum = self._util_sum = 0.0
        self._trace: list[dict] = []
        self._episode += 1
        self._done = False
        self._prepare()
        return self._obs, self._next_info()

    def step(self, action):
        if self._done:
            raise RuntimeError("ServiceChainEnv.step() called after the episode ended; call reset()")
        a = int(action)
        if not 0 <= a < self.num_nodes:
            raise ValueError(f"action {action!r} outside [0, {self.num_nodes})")
        t, anchor = self._t, self._anchor
        valid = bool(self._cur_feas[a])
        hit = bool(self._cur_ref[a])
        latency = float(self._cur_lat[a])
        if valid:
            reward = 1.0 - min(latency / self.config.latency_scale, MAX_LATENCY_PENALTY)
            self._used[a] += 1
            self._releases.setdefault(t + int(self._life[t]), []).append(a)
            self._accepted += 1
            self._lat_sum += latency
            self._excess_sum += latency - float(self._cur_lat[self._cur_ref].min())
            self._anchor = a
        else:
            reward = REJECTED_REWARD
            self._rejected += 1
        for node in self._releases.pop(t, ()):
            self._used[node] -= 1
        util = self._used * self._inv_cap
        u_mean, u_max = float(util.mean()), float(util.max())
        self._util_sum += u_mean
        if self.record_trace:
            self._trace.append(self._trace_step(t, a, anchor, reward, valid, latency, util))
        info_ref_action = int(np.argmax(self._cur_ref))
        self._t = t + 1
        terminated = self._t >= self._total or self._rejected >= self.config.max_rejections
        self._prepare()
        info = self._next_info()
        info.update(valid=valid, reference_hit=hit, reference_action=info_ref_action,
                    step_summary={"Latency": latency, "Mean Utilization": u_mean,
                                  "Max Utilization": u_max})
        if terminated:
            self._done = True
            self._finish(info)
        return self._obs, reward, terminated, False, info

    def _finish(self, info: dict) -> None:
        decisions, acc = self._t, self._accepted
        info["metrics"] = {
            "Acceptance Rate": acc / decisions,
            "Mean Latency": self._lat_sum / acc if acc else 0.0,
            "Excess Latency": self._excess_sum / acc if acc else 0.0,
            "Mean Utilization": self._util_sum / decisions,
        }
        if self.record_trace:
            info["episode_trace"] = {
                "episode": self._episode, "num_nodes": self.num_nodes,
                "positions": self._pos.tolist(), "edges": self._pairs.tolist(),
                "node_kinds": self._kind.tolist(), "node_kind_names": list(HARDWARE_KINDS),
                "node_value_name": "load", "focus_name": "anchor (previous service)",
                "steps": self._trace}

    def _trace_step(self, t, a, anchor, reward, valid, latency, util) -> dict:
        c, pos = int(self._chain[t]), int(self._pos_in_chain[t])
        ref = np.flatnonzero(self._cur_ref).tolist()
        best = reference.reference_latency(self._cur_lat, self._cur_feas)
        kind = HARDWARE_KINDS[int(self._req_kind[t])]
        outcome = f"{anchor}→{a} {latency:.0f} ms" if valid else f"{a} cannot host it"
        best_txt = f"ref. {best:.0f} ms" if np.isfinite(best) else "none feasible"
        return {"action": a, "reward": float(reward), "reference": ref, "valid": valid,
                "focus": anchor, "node_values": util.tolist(),
                "caption": f"chain {c + 1} service {pos + 1} ({kind}): {outcome}, {best_txt}"}

    def render(self):
        """Not implemented: animations come from ``info["episode_trace"]``."""
        return None
