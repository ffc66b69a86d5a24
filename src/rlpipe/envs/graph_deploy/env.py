"""Graph service deployment: place a stream of service requests on the nodes of a network.

Each episode draws a new network (:mod:`.topology`: edge nodes in the unit square, cloud nodes
behind edge gateways) and a stream of requests (a source edge node, cpu and memory demands, a
latency budget, a lifetime); every step the agent picks the node that hosts one request. The
oracle (:mod:`.oracle`) scores the nodes; the settings are :class:`.config.GraphDeployConfig`.

This module imports numpy only (scipy when available, for shortest paths): it runs in the
training hot loop.
"""
from __future__ import annotations

import math
from dataclasses import asdict

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from rlpipe.envs.contract import ProbeState, reference_walk
from rlpipe.envs.graph_algorithms import shortest_rows
from rlpipe.envs.graph_deploy import oracle
from rlpipe.envs.graph_deploy.config import GraphDeployConfig
from rlpipe.envs.graph_deploy.topology import draw_network, link_radius
from rlpipe.envs.settings import build

__all__ = ["GraphDeployEnv", "NODE_FEATURES", "NUM_NODE_FEATURES", "NODE_KIND_NAMES"]

#: Node feature columns of the observation, in order (``F = len(NODE_FEATURES) = 10``).
NODE_FEATURES = (
    "free_cpu_frac",        # (cpu_cap - cpu_used) / cpu_cap
    "free_mem_frac",        # (mem_cap - mem_used) / mem_cap
    "cpu_utilization",      # cpu_used / cpu_cap
    "latency_ratio",        # latency(source, node) / budget, clipped to 3
    "is_source",            # 1 for the request's source node
    "is_cloud",             # 1 for cloud nodes
    "feasible",             # 1 when the node can host the request
    "cpu_demand_ratio",     # cpu_demand / cpu_cap, clipped to 3
    "mem_demand_ratio",     # mem_demand / mem_cap, clipped to 3
    "util_after",           # mean of cpu and mem utilisation after placement, clipped to 3
)
NUM_NODE_FEATURES = len(NODE_FEATURES)
IS_CLOUD_COLUMN = NODE_FEATURES.index("is_cloud")
#: node kinds for the attention and embedding figures (index = ``is_cloud``)
NODE_KIND_NAMES = ("edge", "cloud")
FEATURE_CLIP = 3.0
EDGE_FEATURE_SCALE = 100.0      # edge feature = latency / 100 ms


class GraphDeployEnv(gym.Env):
    r"""Service deployment on a random edge/cloud network, one request per step.

    **Topology** (new each episode, drawn from ``self.np_random``; :mod:`.topology`): edge
    nodes in the unit square linked within :attr:`link_radius` and along a spanning tree, then the
    ``num_cloud`` cloud nodes (the last indices) behind edge gateways. Latency between two nodes
    is the shortest-path latency.

    **Requests**: source = uniform edge node, cpu and memory demand uniform in
    ``[demand_min, demand_max]``, latency budget uniform in
    ``[latency_budget_min, latency_budget_max]`` ms, lifetime uniform integer in
    ``[lifetime_min, lifetime_max]``. A request deployed at step ``t`` with lifetime ``L`` holds
    its cpu and memory for the next ``L`` requests and is released at the end of step ``t + L``.
    All requests of an episode (plus one spare for the final observation) are drawn at
    :meth:`reset`, so :meth:`step` draws no random numbers.

    **Reward**: a feasible node (enough free cpu and memory, latency within budget) pays
    ``1 - cost`` in ``[0, 1]`` with ``cost = 0.6 * latency / budget + 0.4 * util_after``
    (:mod:`.oracle`) and the service is deployed; an infeasible node pays ``-1`` and
    the request is rejected. The feasible nodes are in ``info["action_mask"]`` (used when the
    run sets ``env.action_masking``).

    **Termination**: ``terminated=True`` after ``requests_per_episode`` requests or once
    ``max_rejections`` requests were rejected; ``truncated`` is always False.

    **Info** (after :meth:`reset` and every :meth:`step`, about the *next* request):
    ``action_mask`` bool [N] (feasible nodes, all True if none is), ``oracle_best`` bool [N].
    After a step, about the decision just taken (the environment contract,
    :mod:`rlpipe.envs.contract`): ``valid`` (the node was feasible), ``reference_hit`` (it was in
    the oracle's best set), ``reference_action`` (lowest index of that set), ``step_summary``
    (``{"Mean Utilization", "Max Utilization"}`` of edge-node cpu utilisation after the step).
    On the terminating step also ``metrics`` (keys :attr:`metric_names`) and ``episode_trace``
    (see ``docs/ENVIRONMENTS.md``; left out when :attr:`record_trace` is False). The trace's
    ``"episode"`` is a counter local to this env (resets since construction); the trainer may
    overwrite it.

    Rendering is not implemented (``render_mode`` must be None): animations are drawn by the
    visualize stage from the episode traces.

    Args:
        **kwargs: the fields of :class:`GraphDeployConfig` (defaults and bounds are there; checked
            on construction, errors name ``env.kwargs.<key>``).
        render_mode (None): only None is supported.

    Shapes:
        - **observation:** ``GraphInstance(nodes, edges, edge_links)`` with
          nodes float32 :math:`[N, 10]` (columns :data:`NODE_FEATURES`),
          edges float32 :math:`[2E, 1]` (link latency / 100 ms),
          edge_links int64 :math:`[2E, 2]`: the :math:`E` undirected links ``(u, v), u < v``
          (edge-edge links in lexicographic order, then cloud links), followed by the same
          :math:`E` links reversed ``(v, u)``. Every observation holds fresh arrays.
        - **action:** int in :math:`[0, N)`
        - **info masks:** bool :math:`[N]`
    """

    metadata = {"render_modes": []}
    metric_names = ("Acceptance Rate", "Mean Latency", "Mean Utilization", "Load Imbalance")
    step_summary_names = ("Mean Utilization", "Max Utilization")
    has_reference = True
    node_kind_names = NODE_KIND_NAMES
    node_features = NODE_FEATURES
    config_class = GraphDeployConfig

    def __init__(self, render_mode: str | None = None, **kwargs) -> None:
        if render_mode is not None:
            raise ValueError(
                f"GraphDeployEnv does not render (render_mode={render_mode!r}); "
                "animations are drawn by the visualize stage from episode traces"
            )
        self.config = c = build(GraphDeployConfig, kwargs, "env.kwargs")
        self.render_mode = None
        self.num_nodes = c.num_nodes
        self.num_cloud = c.num_cloud
        self.num_edge = self.num_nodes - self.num_cloud
        #: Connection radius of edge nodes at this graph size (see ``radius_nodes``).
        self.link_radius = link_radius(c.edge_radius, c.radius_nodes, self.num_nodes)
        #: Record and return ``info["episode_trace"]`` at episode end (set False to save memory
        #: on very long episodes with many nodes).
        self.record_trace = True

        self.observation_space = spaces.Graph(
            node_space=spaces.Box(-np.inf, np.inf, (NUM_NODE_FEATURES,), np.float32),
            edge_space=spaces.Box(0.0, np.inf, (1,), np.float32),
        )
        self.action_space = spaces.Discrete(self.num_nodes)

        n = self.num_nodes
        self._is_cloud = np.zeros(n, dtype=bool)
        self._is_cloud[self.num_edge:] = True
        self._is_cloud_f = self._is_cloud.astype(np.float32)
        self._episode = 0
        self._done = True
        self._t = 0

    # ------------------------------------------------------------------ public views
    @property
    def positions(self) -> np.ndarray:
        """Drawing positions, float64 :math:`[N, 2]` (cloud nodes at ``x = 1.3``)."""
        return self._pos

    @property
    def is_cloud(self) -> np.ndarray:
        """bool :math:`[N]`, True for the last ``num_cloud`` nodes."""
        return self._is_cloud

    @property
    def edge_pairs(self) -> np.ndarray:
        """Undirected links ``(u, v), u < v``, int64 :math:`[E, 2]`."""
        return self._pairs

    @property
    def utilization(self) -> np.ndarray:
        """Current cpu utilisation ``cpu_used / cpu_cap`` of every node, float64 :math:`[N]`."""
        return self._cpu_used / self._cpu_cap

    @property
    def source(self) -> int:
        """Source node of the current (next to be decided) request."""
        return int(self._req_src[self._t])

    # ------------------------------------------------------------------ episode generation
    def _build_topology(self) -> None:
        net = draw_network(self.np_random, self.num_edge, self.num_cloud, self.link_radius)
        self._pos = net.positions
        self._pairs = net.pairs
        self._link_lat = net.latency
        self._cpu_cap, self._mem_cap = net.cpu_cap, net.mem_cap
        self._inv_cpu_cap, self._inv_mem_cap = 1.0 / net.cpu_cap, 1.0 / net.mem_cap
        lat = net.latency
        edges = np.concatenate([lat, lat]).astype(np.float32)[:, None] / EDGE_FEATURE_SCALE
        links = np.concatenate([net.pairs, net.pairs[:, ::-1]]).astype(np.int64)
        links = np.ascontiguousarray(links)
        self._obs_edges, self._obs_links = edges, links

    def _draw_requests(self) -> None:
        rng, c = self.np_random, self.config
        r = c.requests_per_episode + 1  # one spare request for the final observation
        self._req_src = rng.integers(0, self.num_edge, size=r)
        self._req_cpu = rng.uniform(c.demand_min, c.demand_max, size=r)
        self._req_mem = rng.uniform(c.demand_min, c.demand_max, size=r)
        self._req_budget = rng.uniform(c.latency_budget_min, c.latency_budget_max, size=r)
        self._req_life = rng.integers(c.lifetime_min, c.lifetime_max + 1, size=r)
        # Shortest-path latencies, only from the sources this episode uses (identical values to
        # an all-pairs computation, far cheaper for large graphs).
        sources = np.unique(self._req_src)
        self._lat_rows = shortest_rows(self.num_nodes, self._pairs, self._link_lat, sources)
        self._src_row = np.full(self.num_edge, -1, dtype=np.int64)
        self._src_row[sources] = np.arange(len(sources))

    # ------------------------------------------------------------------ per-request view
    def _prepare(self) -> None:
        """Features, feasibility, cost and best set for request ``self._t``."""
        t = self._t
        src = int(self._req_src[t])
        cd, md, b = float(self._req_cpu[t]), float(self._req_mem[t]), float(self._req_budget[t])
        lat = self._lat_rows[self._src_row[src]]
        cpu_used, mem_used = self._cpu_used, self._mem_used
        inv_c, inv_m = self._inv_cpu_cap, self._inv_mem_cap
        cpu_util = cpu_used * inv_c
        feas = oracle.feasible_mask(lat, b, self._cpu_cap - cpu_used, self._mem_cap - mem_used,
                                    cd, md)
        ua = oracle.util_after(cpu_used, self._cpu_cap, mem_used, self._mem_cap, cd, md)
        lat_ratio = lat / b
        cost = oracle.LATENCY_WEIGHT * lat_ratio + oracle.UTIL_WEIGHT * ua  # = oracle.node_cost
        best = oracle.best_set(cost, feas)

        x = np.empty((self.num_nodes, NUM_NODE_FEATURES), dtype=np.float32)
        x[:, 0] = 1.0 - cpu_util
        x[:, 1] = 1.0 - mem_used * inv_m
        x[:, 2] = cpu_util
        np.minimum(lat_ratio, FEATURE_CLIP, out=x[:, 3])
        x[:, 4] = 0.0
        x[src, 4] = 1.0
        x[:, 5] = self._is_cloud_f
        x[:, 6] = feas
        np.minimum(cd * inv_c, FEATURE_CLIP, out=x[:, 7])
        np.minimum(md * inv_m, FEATURE_CLIP, out=x[:, 8])
        np.minimum(ua, FEATURE_CLIP, out=x[:, 9])

        self._cur_lat, self._cur_feas, self._cur_cost, self._cur_best = lat, feas, cost, best
        self._cur_any_feas = bool(feas.any())
        # Fresh edge arrays each step: users keep observations (gymnasium's reuse check).
        self._obs = spaces.GraphInstance(x, self._obs_edges.copy(), self._obs_links.copy())

    def _mask_info(self) -> dict:
        mask = self._cur_feas.copy() if self._cur_any_feas else np.ones(self.num_nodes, dtype=bool)
        return {"action_mask": mask, "oracle_best": self._cur_best, "reference_next": self._cur_best}

    # ------------------------------------------------------------------ gym API
    def reset(self, *, seed: int | None = None, options: dict | None = None):
        """Draw a new network and the episode's requests; return the first observation."""
        super().reset(seed=seed)
        self._build_topology()
        self._draw_requests()
        n = self.num_nodes
        self._cpu_used = np.zeros(n)
        self._mem_used = np.zeros(n)
        self._count = np.zeros(n, dtype=np.int64)
        self._releases: dict[int, list[tuple[int, float, float]]] = {}
        self._t = 0
        self._accepted = 0
        self._rejected = 0
        self._hits = 0
        self._lat_sum = 0.0
        self._util_mean_sum = 0.0
        self._util_std_sum = 0.0
        self._trace_steps: list[tuple] = []
        self._episode += 1
        self._done = False
        self._prepare()
        return self._obs, self._mask_info()

    def step(self, action):
        if self._done:
            raise RuntimeError("GraphDeployEnv.step() called after the episode ended; call reset()")
        a = int(action)
        if not 0 <= a < self.num_nodes:
            raise ValueError(f"action {action!r} outside [0, {self.num_nodes})")
        t = self._t
        feasible = bool(self._cur_feas[a])
        hit = bool(self._cur_best[a])
        oracle_action = int(self._cur_best.argmax())
        if feasible:
            reward = 1.0 - float(self._cur_cost[a])
            cd, md = float(self._req_cpu[t]), float(self._req_mem[t])
            self._cpu_used[a] += cd
            self._mem_used[a] += md
            self._count[a] += 1
            self._releases.setdefault(t + int(self._req_life[t]), []).append((a, cd, md))
            self._accepted += 1
            self._lat_sum += float(self._cur_lat[a])
        else:
            reward = -1.0
            self._rejected += 1
        self._hits += hit
        for node, cd, md in self._releases.pop(t, ()):
            self._count[node] -= 1
            if self._count[node] == 0:  # no drift: an empty node is exactly empty
                self._cpu_used[node] = 0.0
                self._mem_used[node] = 0.0
            else:
                self._cpu_used[node] -= cd
                self._mem_used[node] -= md

        util = self._cpu_used * self._inv_cpu_cap
        eu = util[: self.num_edge]
        u_mean = float(eu.mean())
        u_max = float(eu.max())
        # an exactly rounded sum: np.dot is BLAS's, whose kernel (and last bit) depends on the CPU
        u_std = math.sqrt(max(math.fsum((eu * eu).tolist()) / eu.size - u_mean * u_mean, 0.0))
        self._util_mean_sum += u_mean
        self._util_std_sum += u_std
        if self.record_trace:
            self._trace_steps.append((a, reward, feasible, self._cur_best, util))

        self._t = t + 1
        c = self.config
        terminated = self._t >= c.requests_per_episode or self._rejected >= c.max_rejections
        self._prepare()
        info = self._mask_info()
        info["valid"] = feasible
        info["reference_hit"] = hit
        info["reference_action"] = oracle_action
        info["step_summary"] = {"Mean Utilization": u_mean, "Max Utilization": u_max}
        if terminated:
            self._done = True
            self._finish(info)
        return self._obs, reward, terminated, False, info

    def _finish(self, info: dict) -> None:
        decisions = self._t
        info["metrics"] = {
            "Acceptance Rate": self._accepted / decisions,
            "Mean Latency": self._lat_sum / self._accepted if self._accepted else 0.0,
            "Mean Utilization": self._util_mean_sum / decisions,
            "Load Imbalance": self._util_std_sum / decisions,
        }
        if self.record_trace:
            info["episode_trace"] = self._make_trace()

    def _make_trace(self) -> dict:
        """The episode in the contract's trace format (docs/ENVIRONMENTS.md)."""
        steps = []
        for t, (a, reward, feasible, best, util) in enumerate(self._trace_steps):
            steps.append({
                # the contract's keys (docs/ENVIRONMENTS.md) ...
                "action": a,
                "reward": reward,
                "reference": np.flatnonzero(best).tolist(),
                "valid": feasible,
                "focus": int(self._req_src[t]),
                "node_values": util.tolist(),
                "caption": f"request from node {int(self._req_src[t])}: "
                           f"cpu {float(self._req_cpu[t]):.2f}, mem {float(self._req_mem[t]):.2f}, "
                           f"budget {float(self._req_budget[t]):.0f} ms",
                # ... and this environment's own: the request
                "source": int(self._req_src[t]), "cpu": float(self._req_cpu[t]),
                "mem": float(self._req_mem[t]), "budget": float(self._req_budget[t]),
            })
        return {
            "episode": self._episode,
            "num_nodes": self.num_nodes,
            "positions": self._pos.tolist(),
            "edges": self._pairs.tolist(),
            "node_kinds": self._is_cloud.astype(int).tolist(),
            "node_kind_names": list(NODE_KIND_NAMES),
            "node_value_name": "cpu utilisation",
            "focus_name": "request source",
            "steps": steps,
        }

    # ------------------------------------------------------------------ contract views
    @staticmethod
    def node_kinds(obs) -> np.ndarray:
        """Kind index per node of an observation: 0 edge, 1 cloud (:data:`NODE_KIND_NAMES`)."""
        return np.asarray(obs.nodes[:, IS_CLOUD_COLUMN] > 0.5, dtype=np.int64)

    def probe_states(self, n: int, seed: int, warmup_steps: int = 10) -> list[ProbeState]:
        """``n`` fixed states for captures: a fresh environment of these settings reset with
        ``seed + i``, then loaded by ``warmup_steps`` oracle decisions (the last state before the
        episode would end, if it ends sooner). Each state's ``reference`` is the oracle's best
        set, ``node_kinds`` 0 edge / 1 cloud, ``node_values`` ``{"utilization": float32 [N]
        (cpu), "is_source": float32 [N]}``; all arrays are copies."""
        env = GraphDeployEnv(**asdict(self.config))
        env.record_trace = False
        probes = reference_walk(env, n, seed, warmup_steps, env._probe)
        env.close()
        return probes

    def _probe(self, obs, info) -> ProbeState:
        is_source = np.zeros(self.num_nodes, dtype=np.float32)
        is_source[self.source] = 1.0
        return ProbeState(
            obs=spaces.GraphInstance(obs.nodes.copy(), np.array(obs.edges), np.array(obs.edge_links)),
            reference=np.array(info["oracle_best"], dtype=bool),
            node_kinds=self._is_cloud.astype(np.int64),
            node_values={"utilization": self.utilization.astype(np.float32), "is_source": is_source},
        )

    def render(self):
        """Not implemented: animations come from ``info["episode_trace"]`` (visualize stage)."""
        return None
