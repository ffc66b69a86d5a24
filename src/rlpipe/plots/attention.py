"""GAT attention of probe graph 0: one node × node heatmap per layer and head, plus a summary.

``alpha_l[e, h]`` is the attention of target ``edge_index_l[1, e]`` on source ``edge_index_l[0, e]``
(GATConv's convention, self-loops included). The heatmap puts it at row = target, column = source,
so each row sums to 1 (softmax over the target's neighbours) and the self-loop weights lie on the
diagonal. Cells without an edge are masked (drawn grey), so a zero weight and "no edge" differ.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from matplotlib.figure import Figure

from rlpipe.plots.render import FigureUnavailable, new_figure
from rlpipe.plots.style import CMAP_ATTENTION, kind_colors

MAX_HEADS_SHOWN = 8     # heads per layer drawn as heatmaps (all heads enter the summary)
MAX_LABELLED_NODES = 40  # tick labels per node up to this many nodes
SELF_LOOP = "self-loop"


@dataclass
class Attention:
    """Validated attention capture of one episode."""

    episode: int
    num_nodes: int
    labels: list[str]
    node_kinds: np.ndarray                      # int [N], index into kind_names
    kind_names: tuple[str, ...]                 # the environment's node kinds ("node" if none)
    layers: list[tuple[np.ndarray, np.ndarray]]  # per layer: (edge_index int [2, M], alpha float [M, H])

    def kind_pairs(self) -> tuple[str, ...]:
        """The summary's categories: every ``source kind→target kind`` pair, then self-loops."""
        return tuple(f"{a}→{b}" for a in self.kind_names for b in self.kind_names) + (SELF_LOOP,)


def _scalar_int(z: dict, key: str, where: str) -> int:
    if key not in z:
        raise FigureUnavailable(f"{where}: missing '{key}'")
    a = np.asarray(z[key])
    if a.size != 1 or not np.issubdtype(a.dtype, np.integer):
        raise FigureUnavailable(f"{where}: '{key}' must be one integer, got {a.dtype} {a.shape}")
    return int(a.reshape(()))


def validate_attention(z: dict[str, np.ndarray], episode: int, source: str = "") -> Attention:
    """Check the arrays of an attention npz (docs/FILES.md); :class:`FigureUnavailable` on mismatch."""
    where = source or f"episode {episode} attention"
    n = _scalar_int(z, "num_nodes", where)
    num_layers = _scalar_int(z, "layers", where)
    if n < 1 or num_layers < 1:
        raise FigureUnavailable(f"{where}: num_nodes ({n}) and layers ({num_layers}) must be >= 1 "
                                "(an agent without message-passing layers has no attention)")
    if "node_labels" in z:
        labels = [str(s) for s in np.asarray(z["node_labels"]).reshape(-1)]
        if len(labels) != n:
            raise FigureUnavailable(f"{where}: 'node_labels' has {len(labels)} entries, "
                                    f"num_nodes is {n}")
    else:
        labels = [str(i) for i in range(n)]
    names = np.asarray(z["node_kind_names"]).reshape(-1) if "node_kind_names" in z else ()
    kind_names = tuple(str(k) for k in names) or ("node",)
    if "node_kinds" in z:
        kinds = np.asarray(z["node_kinds"]).reshape(-1)
        if kinds.size != n or not np.issubdtype(kinds.dtype, np.integer):
            raise FigureUnavailable(f"{where}: 'node_kinds' has {kinds.size} entries "
                                    f"({kinds.dtype}), expected {n} integers")
        if kinds.size and (kinds.min() < 0 or kinds.max() >= len(kind_names)):
            raise FigureUnavailable(f"{where}: 'node_kinds' holds a kind outside the "
                                    f"{len(kind_names)} kind names")
    else:
        kinds = np.zeros(n, dtype=np.int64)
    layers = []
    for layer in range(num_layers):
        ek, ak = f"edge_index_{layer}", f"alpha_{layer}"
        if ek not in z or ak not in z:
            raise FigureUnavailable(f"{where}: layers = {num_layers} but '{ek}' or '{ak}' is missing")
        ei, alpha = np.asarray(z[ek]), np.asarray(z[ak])
        if ei.ndim != 2 or ei.shape[0] != 2 or not np.issubdtype(ei.dtype, np.integer):
            raise FigureUnavailable(f"{where}: '{ek}' must be an integer [2, E] array, "
                                    f"got {ei.dtype} {ei.shape}")
        if alpha.ndim == 1:
            alpha = alpha[:, None]
        if alpha.ndim != 2 or alpha.shape[0] != ei.shape[1] or alpha.shape[1] == 0:
            raise FigureUnavailable(f"{where}: '{ak}' has shape {alpha.shape}, expected "
                                    f"[{ei.shape[1]}, heads] (one row per column of '{ek}')")
        if ei.size and (ei.min() < 0 or ei.max() >= n):
            raise FigureUnavailable(f"{where}: '{ek}' holds node indices outside 0..{n - 1}")
        layers.append((ei.astype(np.int64), alpha.astype(np.float64)))
    return Attention(episode, n, labels, kinds.astype(np.int64), kind_names, layers)


def attention_matrices(edge_index: np.ndarray, alpha: np.ndarray, num_nodes: int) -> np.ndarray:
    """Dense attention [H, N, N]: ``M[h, target, source] = alpha[e, h]`` for every edge ``e``
    (target = ``edge_index[1, e]``, source = ``edge_index[0, e]``); NaN where there is no edge.
    Duplicate edges add up (their softmax weights together)."""
    edge_index = np.asarray(edge_index, dtype=np.int64)
    alpha = np.asarray(alpha, dtype=np.float64)
    if alpha.ndim == 1:
        alpha = alpha[:, None]
    heads = alpha.shape[1]
    M = np.zeros((heads, num_nodes, num_nodes))
    src, dst = edge_index[0], edge_index[1]
    for h in range(heads):
        np.add.at(M[h], (dst, src), alpha[:, h])
    present = np.zeros((num_nodes, num_nodes), dtype=bool)
    present[dst, src] = True
    M[:, ~present] = np.nan
    return M


def type_pair_means(edge_index: np.ndarray, alpha: np.ndarray, node_kinds: np.ndarray,
                    kind_names: tuple[str, ...]) -> dict[str, np.ndarray]:
    """Mean attention per head [H] over the edges of each pair ``source kind→target kind``
    (self-loops counted apart, as ``self-loop``); NaN for a pair with no edge."""
    alpha = np.asarray(alpha, dtype=np.float64)
    if alpha.ndim == 1:
        alpha = alpha[:, None]
    src, dst = np.asarray(edge_index[0]), np.asarray(edge_index[1])
    kinds = np.asarray(node_kinds, dtype=np.int64)
    self_loop = src == dst
    sk, dk = kinds[src], kinds[dst]
    masks = {f"{a}→{b}": (sk == i) & (dk == j) & ~self_loop
             for i, a in enumerate(kind_names) for j, b in enumerate(kind_names)}
    masks[SELF_LOOP] = self_loop
    return {k: (alpha[m].mean(axis=0) if m.any() else np.full(alpha.shape[1], np.nan))
            for k, m in masks.items()}


def _label_ticks(ax, att: Attention) -> None:
    n = att.num_nodes
    if n > MAX_LABELLED_NODES:
        ax.set_xlabel("source node index (sends)")
        ax.set_ylabel("target node index (attends)")
        return
    ax.set_xticks(range(n))
    ax.set_yticks(range(n))
    fs = 7 if n <= 20 else 5
    ax.set_xticklabels(att.labels, rotation=90, fontsize=fs)
    ax.set_yticklabels(att.labels, fontsize=fs)
    colors = kind_colors(len(att.kind_names))
    for ticks in (ax.get_xticklabels(), ax.get_yticklabels()):
        for t, k in zip(ticks, att.node_kinds):
            t.set_color(colors[int(k)])
    ax.set_xlabel("source node (sends)", fontsize=8)
    ax.set_ylabel("target node (attends)", fontsize=8)


def attention_figure(att: Attention) -> Figure:
    import matplotlib

    heads = [alpha.shape[1] for _, alpha in att.layers]
    ncols = max(2, min(max(heads), MAX_HEADS_SHOWN))
    nrows = len(att.layers) + 1
    cell = 2.9 if att.num_nodes <= 20 else 3.4
    fig = new_figure(cell * ncols + 1.2, cell * (nrows - 1) + 3.4)
    grid = fig.add_gridspec(nrows, ncols, height_ratios=[cell] * (nrows - 1) + [3.0])
    cmap = matplotlib.colormaps[CMAP_ATTENTION].with_extremes(bad="#E8E8E8")  # grey = no edge
    vmax = max(float(np.nanmax(a)) if a.size else 0.0 for _, a in att.layers)
    vmax = vmax if vmax > 0 else 1.0
    heat_axes = []
    image = None
    for layer, (ei, alpha) in enumerate(att.layers):
        M = attention_matrices(ei, alpha, att.num_nodes)
        for h in range(min(alpha.shape[1], MAX_HEADS_SHOWN)):
            ax = fig.add_subplot(grid[layer, h])
            image = ax.imshow(np.ma.masked_invalid(M[h]), cmap=cmap, vmin=0.0, vmax=vmax,
                              interpolation="nearest")
            ax.grid(False)
            more = f" (of {alpha.shape[1]})" if h == MAX_HEADS_SHOWN - 1 and \
                alpha.shape[1] > MAX_HEADS_SHOWN else ""
            ax.set_title(f"layer {layer}, head {h}{more}", fontsize=9)
            _label_ticks(ax, att)
            heat_axes.append(ax)
    if image is not None:
        fig.colorbar(image, ax=heat_axes, shrink=0.8,
                     label="attention weight α of target on source (grey = no edge)")
    ax = fig.add_subplot(grid[nrows - 1, :])
    width = 0.8 / len(att.layers)
    pairs = att.kind_pairs()
    x = np.arange(len(pairs))
    layer_colors = matplotlib.colormaps["Blues"](np.linspace(0.45, 0.9, len(att.layers)))
    for layer, (ei, alpha) in enumerate(att.layers):
        means = type_pair_means(ei, alpha, att.node_kinds, att.kind_names)
        vals = np.array([np.nanmean(means[k]) if np.isfinite(means[k]).any() else np.nan
                         for k in pairs])
        pos = x - 0.4 + width * (layer + 0.5)
        ax.bar(pos, np.nan_to_num(vals), width=width, color=layer_colors[layer],
               label=f"layer {layer} (mean of {alpha.shape[1]} head{'s' if alpha.shape[1] > 1 else ''})")
        for p, v in zip(pos, vals):
            if not np.isfinite(v):
                ax.text(p, 0.0, "n/a", ha="center", va="bottom", fontsize=7, color="#666666")
    ax.set_xticks(x)
    ax.set_xticklabels(list(pairs), rotation=30 if len(pairs) > 6 else 0,
                       ha="right" if len(pairs) > 6 else "center")
    ax.set_xlabel("edge kind: source node kind → target node kind")
    ax.set_ylabel("mean attention weight α (0–1)")
    ax.set_title("Mean attention by node kind", fontsize=10)
    ax.legend(loc="best")
    counts = ", ".join(f"{int((att.node_kinds == i).sum())} {name}"
                       for i, name in enumerate(att.kind_names))
    kinds_note = f"; tick colours: {' / '.join(att.kind_names)}" if len(att.kind_names) > 1 else ""
    fig.suptitle(f"GAT attention, probe state 0, episode {att.episode} "
                 f"({att.num_nodes} nodes: {counts}{kinds_note})")
    return fig
