"""Graph service deployment: place a stream of service requests on the nodes of a network.

Each episode draws a new network: ``num_nodes - num_cloud`` *edge* nodes at uniform positions in
the unit square, linked when closer than a connection radius plus along a Euclidean minimum
spanning tree (so the graph is always connected), and ``num_cloud`` *cloud* nodes, each linked to one or two
random edge "gateway" nodes. Every step brings one request (a source edge node, cpu and memory
demands, a latency budget, a lifetime); the agent picks the node that hosts it.

Node order: **edge nodes first** (indices ``0 .. num_nodes - num_cloud - 1``), **then cloud nodes**
(the last ``num_cloud`` indices).

This module imports numpy only (scipy when available, for shortest paths): it runs in the
training hot loop.
"""
from __future__ import annotations

import math
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from rlpipe.envs import oracle
from rlpipe.envs.contract import ProbeState  # noqa: F401 - the type probe_states returns
from rlpipe.envs.graph_deploy_config import GraphDeployConfig

try:  # scipy comes with scikit-learn; a pure numpy Floyd-Warshall is the fallback
    from scipy.sparse import csr_matrix as _csr_matrix
    from scipy.sparse.csgraph import shortest_path as _shortest_path
except ImportError:  # pragma: no cover - exercised only without scipy
    _csr_matrix = None
    _shortest_path = None

__all__ = [
    "GraphDeployEnv", "NODE_FEATURES", "NUM_NODE_FEATURES", "NODE_KIND_NAMES",
    "encode_rng_state", "decode_rng_state", "link_radius",
]

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

EDGE_LATENCY_PER_UNIT = 100.0   # ms per unit of Euclidean distance between edge nodes
EDGE_LATENCY_BASE = 1.0         # ms added to every edge-edge link
CLOUD_LATENCY = (40.0, 60.0)    # ms, uniform, of each cloud-gateway link
EDGE_CAPACITY = (0.5, 1.0)      # uniform cpu and memory capacity of edge nodes
CLOUD_CAPACITY = 8.0            # cpu and memory capacity of cloud nodes
CLOUD_X = 1.3                   # drawing position of cloud nodes: x = 1.3, y spread over [0, 1]
FEATURE_CLIP = 3.0
EDGE_FEATURE_SCALE = 100.0      # edge feature = latency / 100 ms


# --------------------------------------------------------------------------- rng state helpers
def encode_rng_state(state: dict) -> dict:
    """Make a numpy ``bit_generator.state`` dict safe for ``torch.load(weights_only=True)``.

    Every Python ``int`` becomes a decimal string (PCG64's 128-bit integers do not fit int64);
    :func:`decode_rng_state` turns them back. Other values are kept as they are.
    """
    def enc(v: Any) -> Any:
        if isinstance(v, dict):
            return {k: enc(x) for k, x in v.items()}
        if isinstance(v, bool):
            return v
        if isinstance(v, (int, np.integer)):
            return str(int(v))
        if isinstance(v, np.ndarray):  # e.g. MT19937's key array
            return {"__ndarray__": [str(int(x)) for x in v.ravel()], "dtype": str(v.dtype)}
        return v

    return enc(state)


def decode_rng_state(state: dict) -> dict:
    """Inverse of :func:`encode_rng_state`."""
    def dec(k: str | None, v: Any) -> Any:
        if isinstance(v, dict):
            if "__ndarray__" in v:
                return np.array([int(x) for x in v["__ndarray__"]], dtype=v["dtype"])
            return {kk: dec(kk, x) for kk, x in v.items()}
        if isinstance(v, str) and k != "bit_generator":
            return int(v)
        return v

    return dec(None, state)


# --------------------------------------------------------------------------- topology helpers
def link_radius(edge_radius: float, radius_nodes: int, num_nodes: int) -> float:
    """Connection radius of a ``num_nodes`` graph: ``edge_radius`` up to ``radius_nodes`` nodes
    (exactly: no arithmetic on it), ``edge_radius * sqrt(radius_nodes / num_nodes)`` above;
    ``radius_nodes = 0`` keeps ``edge_radius`` at every size."""
    if radius_nodes <= 0 or num_nodes <= radius_nodes:
        return edge_radius
    return edge_radius * math.sqrt(radius_nodes / num_nodes)


def _euclidean_mst(dist: np.ndarray) -> np.ndarray:
    """Prim's algorithm on a dense distance matrix; returns ``[n-1, 2]`` pairs ``(u < v)``."""
    n = dist.shape[0]
    if n <= 1:
        return np.zeros((0, 2), dtype=np.int64)
    in_tree = np.zeros(n, dtype=bool)
    in_tree[0] = True
    best = dist[0].copy()
    best[0] = np.inf
    parent = np.zeros(n, dtype=np.int64)
    pairs = np.empty((n - 1, 2), dtype=np.int64)
    for k in range(n - 1):
        j = int(np.argmin(best))
        pairs[k] = (min(parent[j], j), max(parent[j], j))
        in_tree[j] = True
        best[j] = np.inf
        upd = (dist[j] < best) & ~in_tree
        best[upd] = dist[j][upd]
        parent[upd] = j
    return pairs


def _shortest_rows(n: int, pairs: np.ndarray, weights: np.ndarray, sources: np.ndarray
                   ) -> np.ndarray:
    """Shortest-path lengths from each of ``sources`` to all ``n`` nodes (undirected graph).

    Shapes:
        - **input:** pairs :math:`[E, 2]`, weights :math:`[E]`, sources :math:`[S]`
        - **output:** :math:`[S, n]`
    """
    if _shortest_path is not None:
        m = _csr_matrix((weights, (pairs[:, 0], pairs[:, 1])), shape=(n, n))
        return np.asarray(_shortest_path(m, method="D", directed=False, indices=sources),
                          dtype=np.float64).reshape(len(sources), n)
    d = np.full((n, n), np.inf)
    np.fill_diagonal(d, 0.0)
    d[pairs[:, 0], pairs[:, 1]] = np.minimum(d[pairs[:, 0], pairs[:, 1]], weights)
    d[pairs[:, 1], pairs[:, 0]] = d[pairs[:, 0], pairs[:, 1]]
    for k in range(n):  # Floyd-Warshall, O(n^3) vectorised per pivot
        np.minimum(d, d[:, k:k + 1] + d[k:k + 1, :], out=d)
    return d[sources]


# --------------------------------------------------------------------------- environment
class GraphDeployEnv(gym.Env):
    r"""Service deployment on a random edge/cloud network, one request per step.

    **Topology** (new each episode, drawn from ``self.np_random``): ``num_nodes - num_cloud`` edge
    nodes uniform in the unit square, linked when closer than the connection radius
    :attr:`link_radius` (``edge_radius``, shrinking above ``radius_nodes`` nodes so the average
    degree stays bounded) and along a Euclidean minimum spanning tree, link latency
    ``100 ms * distance + 1 ms``; each cloud node is linked to 1-2 random edge gateways with latency uniform in 40-60 ms. Latency between two
    nodes is the shortest-path latency. Edge nodes have cpu and memory capacity uniform in
    ``[0.5, 1.0]``, cloud nodes 8.0. Node order: edge nodes first, then the ``num_cloud`` cloud
    nodes (the last indices). Cloud nodes are drawn at ``x = 1.3`` (right of the square).

    **Requests**: source = uniform edge node, cpu and memory demand uniform in
    ``[demand_min, demand_max]``, latency budget uniform in
    ``[latency_budget_min, latency_budget_max]`` ms, lifetime uniform integer in
    ``[lifetime_min, lifetime_max]``. A request deployed at step ``t`` with lifetime ``L`` holds
    its cpu and memory for the next ``L`` requests and is released at the end of step ``t + L``.
    All requests of an episode (plus one spare for the final observation) are drawn at
    :meth:`reset`, so :meth:`step` draws no random numbers.

    **Reward**: a feasible node (enough free cpu and memory, latency within budget) pays
    ``1 - cost`` in ``[0, 1]`` with ``cost = 0.6 * latency / budget + 0.4 * util_after``
    (:mod:`rlpipe.envs.oracle`) and the service is deployed; an infeasible node pays ``-1`` and
    the request is rejected. With ``action_masking=True`` the agent is expected to use
    ``info["action_mask"]``; the environment behaves the same either way.

    **Termination**: ``terminated=True`` after ``requests_per_episode`` requests or once
    ``max_rejections`` requests were rejected; ``truncated`` is always False.

    **Info** (after :meth:`reset` and every :meth:`step`, about the *next* request):
    ``action_mask`` bool [N] (feasible nodes, all True if none is), ``oracle_best`` bool [N].
    After a step, about the decision just taken (the environment contract,
    :mod:`rlpipe.envs.contract`): ``valid`` (the node was feasible), ``reference_hit`` (it was in
    the oracle's best set), ``reference_action`` (lowest index of that set), ``step_summary``
    (``{"Mean Utilization", "Max Utilization"}`` of edge-node cpu utilisation after the step).
    On the terminating step also ``metrics`` (keys :attr:`metric_names`) and ``episode_trace``
    (see ``docs/ENVIRONMENTS.md``; left out when :attr:`record_trace` is False). The trace's ``"episode"`` is a counter local to this env
    (resets since construction); the trainer may overwrite it.

    Rendering is not implemented (``render_mode`` must be None): animations are drawn by the
    visualize stage from the episode traces.

    Args:
        num_nodes (int): total number of nodes :math:`N` (edge + cloud).
        num_cloud (int): number of cloud nodes (``< num_nodes``).
        requests_per_episode (int): requests (steps) per episode.
        max_rejections (int): the episode ends once this many requests were rejected.
        action_masking (bool): informational; the mask is always in ``info["action_mask"]``.
        edge_radius (float): edge nodes closer than this are linked, in graphs of up to
            ``radius_nodes`` nodes.
        radius_nodes (int): above this many nodes the radius shrinks as
            ``edge_radius * sqrt(radius_nodes / num_nodes)``, so the expected number of
            neighbours of a node (about ``pi * r^2 * num_nodes``) stays bounded as graphs grow
            and the links grow linearly with the nodes, not with their square. 0 keeps the radius
            fixed at every size (links then grow as ``num_nodes^2``). Graphs of up to
            ``radius_nodes`` nodes are the same either way.
        demand_min, demand_max (float): range of cpu and memory demands.
        lifetime_min, lifetime_max (int): range of service lifetimes (steps).
        latency_budget_min, latency_budget_max (float): range of latency budgets (ms).
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

    def __init__(
        self,
        num_nodes: int = 20,
        num_cloud: int = 2,
        requests_per_episode: int = 50,
        max_rejections: int = 10,
        action_masking: bool = False,
        edge_radius: float = 0.3,
        radius_nodes: int = 20,
        demand_min: float = 0.1,
        demand_max: float = 0.4,
        lifetime_min: int = 10,
        lifetime_max: int = 40,
        latency_budget_min: float = 20.0,
        latency_budget_max: float = 120.0,
        render_mode: str | None = None,
    ) -> None:
        if render_mode is not None:
            raise ValueError(
                f"GraphDeployEnv does not render (render_mode={render_mode!r}); "
                "animations are drawn by the visualize stage from episode traces"
            )
        checks = [
            (num_nodes >= 1, "num_nodes must be >= 1"),
            (0 <= num_cloud < num_nodes, "num_cloud must be >= 0 and < num_nodes"),
            (requests_per_episode >= 1, "requests_per_episode must be >= 1"),
            (max_rejections >= 1, "max_rejections must be >= 1"),
            (edge_radius >= 0, "edge_radius must be >= 0"),
            (radius_nodes >= 0, "radius_nodes must be >= 0"),
            (0 <= demand_min <= demand_max, "need 0 <= demand_min <= demand_max"),
            (1 <= lifetime_min <= lifetime_max, "need 1 <= lifetime_min <= lifetime_max"),
            (0 < latency_budget_min <= latency_budget_max,
             "need 0 < latency_budget_min <= latency_budget_max"),
        ]
        for ok, msg in checks:
            if not ok:
                raise ValueError(f"GraphDeployEnv: {msg}")
        self.render_mode = None
        self.num_nodes = int(num_nodes)
        self.num_cloud = int(num_cloud)
        self.num_edge = self.num_nodes - self.num_cloud
        self.requests_per_episode = int(requests_per_episode)
        self.max_rejections = int(max_rejections)
        self.action_masking = bool(action_masking)
        self.edge_radius = float(edge_radius)
        self.radius_nodes = int(radius_nodes)
        #: Connection radius of edge nodes at this graph size (see ``radius_nodes``).
        self.link_radius = link_radius(self.edge_radius, self.radius_nodes, self.num_nodes)
        self.demand_min, self.demand_max = float(demand_min), float(demand_max)
        self.lifetime_min, self.lifetime_max = int(lifetime_min), int(lifetime_max)
        self.latency_budget_min = float(latency_budget_min)
        self.latency_budget_max = float(latency_budget_max)
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

    # ------------------------------------------------------------------ rng state
    def get_rng_state(self) -> dict:
        """``self.np_random.bit_generator.state`` with every int as a string (torch-safe)."""
        return encode_rng_state(self.np_random.bit_generator.state)

    def set_rng_state(self, state: dict) -> None:
        """Restore a state from :meth:`get_rng_state`; the next ``reset()`` (no seed) repeats."""
        self.np_random.bit_generator.state = decode_rng_state(state)

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
        rng = self.np_random
        ne, nc, n = self.num_edge, self.num_cloud, self.num_nodes
        pos_e = rng.uniform(0.0, 1.0, size=(ne, 2))
        diff = pos_e[:, None, :] - pos_e[None, :, :]
        dist = np.sqrt(np.einsum("ijk,ijk->ij", diff, diff))
        adj = dist <= self.link_radius
        mst = _euclidean_mst(dist)
        adj[mst[:, 0], mst[:, 1]] = True
        iu, ju = np.nonzero(np.triu(adj, 1))
        edge_pairs = np.stack([iu, ju], axis=1).astype(np.int64)
        edge_lat = EDGE_LATENCY_PER_UNIT * dist[iu, ju] + EDGE_LATENCY_BASE

        cpu_cap = np.full(n, CLOUD_CAPACITY)
        mem_cap = np.full(n, CLOUD_CAPACITY)
        cpu_cap[:ne] = rng.uniform(*EDGE_CAPACITY, size=ne)
        mem_cap[:ne] = rng.uniform(*EDGE_CAPACITY, size=ne)

        cloud_pairs, cloud_lat = [], []
        for c in range(nc):
            k = min(int(rng.integers(1, 3)), ne)
            gws = np.sort(rng.choice(ne, size=k, replace=False))
            lats = rng.uniform(*CLOUD_LATENCY, size=k)
            for g, lat in zip(gws, lats):
                cloud_pairs.append((int(g), ne + c))
                cloud_lat.append(float(lat))
        pairs = np.concatenate([edge_pairs, np.asarray(cloud_pairs, dtype=np.int64).reshape(-1, 2)])
        link_lat = np.concatenate([edge_lat, np.asarray(cloud_lat, dtype=np.float64)])

        pos = np.empty((n, 2))
        pos[:ne] = pos_e
        pos[ne:, 0] = CLOUD_X
        pos[ne:, 1] = (np.arange(nc) + 1.0) / (nc + 1.0)

        self._pos = pos
        self._pairs = pairs
        self._link_lat = link_lat
        self._cpu_cap, self._mem_cap = cpu_cap, mem_cap
        self._inv_cpu_cap, self._inv_mem_cap = 1.0 / cpu_cap, 1.0 / mem_cap
        edges = np.concatenate([link_lat, link_lat]).astype(np.float32)[:, None] / EDGE_FEATURE_SCALE
        links = np.concatenate([pairs, pairs[:, ::-1]]).astype(np.int64)
        links = np.ascontiguousarray(links)
        self._obs_edges, self._obs_links = edges, links

    def _draw_requests(self) -> None:
        rng = self.np_random
        r = self.requests_per_episode + 1  # one spare request for the final observation
        self._req_src = rng.integers(0, self.num_edge, size=r)
        self._req_cpu = rng.uniform(self.demand_min, self.demand_max, size=r)
        self._req_mem = rng.uniform(self.demand_min, self.demand_max, size=r)
        self._req_budget = rng.uniform(self.latency_budget_min, self.latency_budget_max, size=r)
        self._req_life = rng.integers(self.lifetime_min, self.lifetime_max + 1, size=r)
        # Shortest-path latencies, only from the sources this episode uses (identical values to
        # an all-pairs computation, far cheaper for large graphs).
        sources = np.unique(self._req_src)
        self._lat_rows = _shortest_rows(self.num_nodes, self._pairs, self._link_lat, sources)
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
        u_std = float(np.sqrt(max(float(np.dot(eu, eu)) / eu.size - u_mean * u_mean, 0.0)))
        self._util_mean_sum += u_mean
        self._util_std_sum += u_std
        if self.record_trace:
            self._trace_steps.append((a, reward, feasible, self._cur_best, util))

        self._t = t + 1
        terminated = self._t >= self.requests_per_episode or self._rejected >= self.max_rejections
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

    def probe_states(self, n: int, seed: int) -> list[ProbeState]:
        """Fixed states for captures: :func:`make_probe` with this environment's settings."""
        from rlpipe.envs.graph_deploy_probes import make_probe

        return make_probe(self.settings, n, seed)

    @property
    def settings(self) -> dict:
        """The constructor's keyword arguments (a fresh environment of the same kind)."""
        return {
            "num_nodes": self.num_nodes, "num_cloud": self.num_cloud,
            "requests_per_episode": self.requests_per_episode,
            "max_rejections": self.max_rejections, "edge_radius": self.edge_radius,
            "radius_nodes": self.radius_nodes,
            "demand_min": self.demand_min, "demand_max": self.demand_max,
            "lifetime_min": self.lifetime_min, "lifetime_max": self.lifetime_max,
            "latency_budget_min": self.latency_budget_min,
            "latency_budget_max": self.latency_budget_max,
        }

    def render(self):
        """Not implemented: animations come from ``info["episode_trace"]`` (visualize stage)."""
        return None
