"""Node / observation embeddings from the captures, in 2-D by PCA and by t-SNE.

Graph agents (``epXXXXXX_embeddings.npz`` with ``embeddings``, ``node_kind``, ``chosen`` ...):
points coloured by node kind (the environment's kind names), the chosen node (highest policy
probability in its probe graph) drawn as a star, nodes of the reference set ringed; a second panel
colours by policy probability. MLP agents (``embeddings``,
``action``, ``value``): coloured by greedy action, second panel by value estimate.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from matplotlib.figure import Figure

from rlpipe.plots import FigureUnavailable
from rlpipe.plots.projection import SEED, pca_2d, subsample_indices
from rlpipe.plots.render import new_figure
from rlpipe.plots.style import CMAP_SHARE, COLORS, kind_colors

EVOLUTION_PANELS = 6  # at most this many captures in the PCA evolution row
MAX_DRAWN = 20_000   # points drawn per PCA panel (PCA itself uses every point)
MAX_DRAWN_EVOLUTION = 3_000

GRAPH_ARRAYS = ("graph", "node", "node_kind", "chosen", "reference", "probs")


@dataclass
class Embeddings:
    """Validated embeddings of one capture. ``kind`` is ``"graph"`` or ``"mlp"``."""

    episode: int
    kind: str
    X: np.ndarray                  # [n, D] float64, finite
    arrays: dict[str, np.ndarray]  # per-point arrays, same row order as X
    note: str = ""                 # e.g. rows dropped because they were not finite
    kind_names: tuple[str, ...] = ("node",)  # names of the node kinds (graph)


def validate_embeddings(z: dict[str, np.ndarray], episode: int, source: str = "") -> Embeddings:
    """Check the arrays of an embeddings npz (docs/FILES.md) and return them as :class:`Embeddings`.

    Raises :class:`FigureUnavailable` naming the array when shapes do not agree.
    """
    where = source or f"episode {episode} embeddings"
    if "embeddings" not in z:
        raise FigureUnavailable(f"{where}: no 'embeddings' array (arrays: {', '.join(sorted(z))})")
    X = np.asarray(z["embeddings"])
    if X.ndim != 2 or X.shape[0] == 0 or X.shape[1] == 0 or not np.issubdtype(X.dtype, np.number):
        raise FigureUnavailable(f"{where}: 'embeddings' must be a non-empty numeric [N, D] array, "
                                f"got shape {X.shape} {X.dtype}")
    n = X.shape[0]
    if "node_kind" in z or "chosen" in z:
        kind, required, optional = "graph", ("node_kind", "chosen"), GRAPH_ARRAYS
    elif "action" in z:
        kind, required, optional = "mlp", ("action",), ("action", "value")
    else:
        raise FigureUnavailable(f"{where}: neither graph arrays ('node_kind', 'chosen') nor MLP "
                                f"arrays ('action') found")
    kind_names: tuple[str, ...] = ("node",)
    if kind == "graph":
        names = np.asarray(z["node_kind_names"]).reshape(-1) if "node_kind_names" in z else ()
        kind_names = tuple(str(k) for k in names) or ("node",)
    arrays: dict[str, np.ndarray] = {}
    for key in optional:
        if key not in z:
            if key in required:
                raise FigureUnavailable(f"{where}: missing array '{key}'")
            continue
        a = np.asarray(z[key])
        if a.ndim != 1 or a.shape[0] != n:
            raise FigureUnavailable(f"{where}: '{key}' has shape {a.shape}, expected [{n}] "
                                    f"(one per row of 'embeddings' {X.shape})")
        arrays[key] = a
    X = X.astype(np.float64)
    ok = np.isfinite(X).all(axis=1)
    note = ""
    if not ok.all():
        if not ok.any():
            raise FigureUnavailable(f"{where}: every embedding row holds NaN/inf")
        note = f"{int((~ok).sum())} of {n} rows with NaN/inf left out"
        X = X[ok]
        arrays = {k: v[ok] for k, v in arrays.items()}
    if kind == "graph":
        kinds = arrays["node_kind"].astype(np.int64)
        if kinds.size and (kinds.min() < 0 or kinds.max() >= len(kind_names)):
            raise FigureUnavailable(f"{where}: 'node_kind' holds {int(kinds.max())}, but only "
                                    f"{len(kind_names)} kind names are given")
    return Embeddings(episode=episode, kind=kind, X=X, arrays=arrays, note=note,
                      kind_names=kind_names)


# --------------------------------------------------------------------------- drawing
def point_size(n: int, scale: float = 1.0) -> float:
    """Marker area for ``n`` points: large for a few, small for thousands."""
    return float(np.clip(2500.0 / max(n, 1), 3.0, 40.0)) * scale


def _scatter_graph(ax, Y: np.ndarray, arrays: dict[str, np.ndarray], by: str, size: float = 14,
                   kind_names: tuple[str, ...] = ("node",)):
    """Graph points: colour by node kind (``by="type"``) or policy probability (``by="probs"``);
    the chosen nodes as stars on top, nodes of the reference set ringed. Returns the mappable for
    a colour bar (or None)."""
    chosen = arrays["chosen"].astype(bool)
    palette = np.asarray(kind_colors(len(kind_names)), dtype=object)
    kind = np.clip(arrays["node_kind"].astype(np.int64), 0, len(kind_names) - 1)
    mappable = None
    if by == "probs":
        top = float(np.nanmax(arrays["probs"])) if arrays["probs"].size else 1.0
        vmax = top if np.isfinite(top) and top > 0 else 1.0
    for mask, marker, s, z in ((~chosen, "o", size, 2), (chosen, "*", max(size * 5, 60), 3)):
        if not mask.any():
            continue
        if by == "probs":
            mappable = ax.scatter(Y[mask, 0], Y[mask, 1], c=arrays["probs"][mask], cmap=CMAP_SHARE,
                                  vmin=0.0, vmax=vmax, marker=marker, s=s, zorder=z,
                                  edgecolors="black" if marker == "*" else "none", linewidths=0.6)
        else:
            ax.scatter(Y[mask, 0], Y[mask, 1], c=list(palette[kind[mask]]), marker=marker, s=s,
                       zorder=z, edgecolors="black" if marker == "*" else "none", linewidths=0.6,
                       alpha=0.85 if marker == "o" else 1.0)
    if "reference" in arrays and arrays["reference"].astype(bool).any():
        ref = arrays["reference"].astype(bool)
        ax.scatter(Y[ref, 0], Y[ref, 1], s=size * 3.5, facecolors="none",
                   edgecolors=COLORS["reference_set"], linewidths=1.0, zorder=4)
    return mappable


def _graph_legend(ax, kind_names: tuple[str, ...], has_reference: bool) -> None:
    from matplotlib.lines import Line2D

    handles = [Line2D([], [], ls="", marker="o", color=c, label=f"{name} node")
               for name, c in zip(kind_names, kind_colors(len(kind_names)))]
    handles.append(Line2D([], [], ls="", marker="*", ms=11, markerfacecolor="#BBBBBB",
                          markeredgecolor="black", label="chosen (highest probability in its graph)"))
    if has_reference:
        handles.append(Line2D([], [], ls="", marker="o", ms=9, markerfacecolor="none",
                              markeredgecolor=COLORS["reference_set"], label="in the reference set"))
    ax.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, -0.13),
              ncol=min(len(handles), 3), frameon=False)


def _scatter_mlp(ax, Y: np.ndarray, arrays: dict[str, np.ndarray], by: str, size: float = 14):
    if by == "value" and "value" in arrays:
        return ax.scatter(Y[:, 0], Y[:, 1], c=arrays["value"].astype(float), cmap=CMAP_SHARE,
                          s=size, edgecolors="none")
    act = arrays["action"]
    if not np.all(act == np.round(act)):  # Box: the greedy action's mean, a continuous colour
        return ax.scatter(Y[:, 0], Y[:, 1], c=act.astype(float), cmap="coolwarm", s=size,
                          edgecolors="none")
    act = act.astype(np.int64)
    uniq = np.unique(act)
    if uniq.size <= 10:
        import matplotlib

        cmap = matplotlib.colormaps["tab10"]
        for a in uniq:
            m = act == a
            ax.scatter(Y[m, 0], Y[m, 1], color=cmap(int(a) % 10), s=size,
                       edgecolors="none", label=f"action {a}")
        return None
    return ax.scatter(Y[:, 0], Y[:, 1], c=act, cmap="turbo", s=size, edgecolors="none")


def _draw_pair(fig, axes, Y: np.ndarray, emb: Embeddings, xlabel: str, ylabel: str) -> None:
    """Two panels of the same 2-D points: categorical colouring, then continuous colouring."""
    ax1, ax2 = axes
    if emb.kind == "graph":
        size = point_size(Y.shape[0])
        _scatter_graph(ax1, Y, emb.arrays, "type", size, emb.kind_names)
        _graph_legend(ax1, emb.kind_names, "reference" in emb.arrays)
        ax1.set_title(f"by node kind ({' / '.join(emb.kind_names)}); ★ = chosen node", fontsize=10)
        if "probs" in emb.arrays:
            m = _scatter_graph(ax2, Y, emb.arrays, "probs", size, emb.kind_names)
            if m is not None:
                fig.colorbar(m, ax=ax2, label="policy probability of the node")
            ax2.set_title("by policy probability (within its probe graph); ★ = chosen node",
                          fontsize=10)
        else:
            ax2.set_visible(False)
    else:
        size = point_size(Y.shape[0])
        m = _scatter_mlp(ax1, Y, emb.arrays, "action", size)
        if m is not None:
            fig.colorbar(m, ax=ax1, label="greedy action")
        else:
            ax1.legend(loc="best", title="greedy action")
        ax1.set_title("by greedy action", fontsize=10)
        if "value" in emb.arrays:
            m = _scatter_mlp(ax2, Y, emb.arrays, "value", size)
            fig.colorbar(m, ax=ax2, label="value estimate (env. reward units)")
            ax2.set_title("by value estimate", fontsize=10)
        else:
            ax2.set_visible(False)
    for ax in axes:
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)


def _what(emb: Embeddings) -> str:
    if emb.kind == "graph":
        return f"{emb.X.shape[0]} probe-graph nodes, D = {emb.X.shape[1]}"
    return f"{emb.X.shape[0]} probe observations, D = {emb.X.shape[1]}"


def pca_figure(latest: Embeddings, history: list[Embeddings] = ()) -> Figure:
    """PCA of the latest capture (two panels); with several captures, a row of PCA panels across them."""
    history = [h for h in history if h.episode != latest.episode] + [latest]
    history.sort(key=lambda h: h.episode)
    show = _evenly(history, EVOLUTION_PANELS) if len(history) > 1 else []
    fig = new_figure(11.0, 5.0 + (3.0 if show else 0.0))
    if show:
        top, bottom = fig.subfigures(2, 1, height_ratios=[5.0, 3.0])
    else:
        top, bottom = fig, None
    Y, ratio = pca_2d(latest.X)
    axes = top.subplots(1, 2)
    drawn = _drawn(latest, MAX_DRAWN)
    _draw_pair(top, axes, Y[drawn], _rows(latest, drawn),
               f"PC 1 ({100 * ratio[0]:.1f} % of variance)", f"PC 2 ({100 * ratio[1]:.1f} % of variance)")
    note = f" — {latest.note}" if latest.note else ""
    if drawn.size < latest.X.shape[0]:
        note += f" — {drawn.size} points drawn (seeded sample)"
    fig.suptitle(f"Embeddings by PCA, episode {latest.episode} ({_what(latest)}){note}")
    if show:
        bax = bottom.subplots(1, len(show), squeeze=False)[0]
        for ax, h in zip(bax, show):
            Yh, rh = pca_2d(h.X)
            d = _drawn(h, MAX_DRAWN_EVOLUTION)
            hd = _rows(h, d)
            if h.kind == "graph":
                _scatter_graph(ax, Yh[d], hd.arrays, "type", point_size(d.size, 0.6), h.kind_names)
            else:
                _scatter_mlp(ax, Yh[d], hd.arrays, "action", point_size(d.size, 0.6))
            ax.set_title(f"episode {h.episode}", fontsize=9)
            ax.set_xlabel(f"PC 1 ({100 * rh[0]:.0f} %)", fontsize=8)
            ax.set_ylabel(f"PC 2 ({100 * rh[1]:.0f} %)", fontsize=8)
            ax.tick_params(labelsize=6)
        bottom.suptitle("Evolution across captures (each capture's own PCA; colours as above)",
                        fontsize=10, fontweight="normal")
    return fig


def _drawn(emb: Embeddings, limit: int) -> np.ndarray:
    """Rows to draw: all, or a seeded sample of ``limit`` that keeps the chosen nodes."""
    chosen = emb.arrays.get("chosen")
    return subsample_indices(emb.X.shape[0], limit, SEED,
                             None if chosen is None else chosen.astype(bool))


def _rows(emb: Embeddings, idx: np.ndarray) -> Embeddings:
    if idx.size == emb.X.shape[0]:
        return emb
    return Embeddings(emb.episode, emb.kind, emb.X[idx], {k: v[idx] for k, v in emb.arrays.items()},
                      kind_names=emb.kind_names)


def _evenly(items: list, k: int) -> list:
    if len(items) <= k:
        return list(items)
    pos = np.unique(np.round(np.linspace(0, len(items) - 1, k)).astype(int))
    return [items[i] for i in pos]


def tsne_figure(emb: Embeddings, idx: np.ndarray, Y: np.ndarray, perplexity: float,
                backend: str = "") -> Figure:
    """t-SNE panels of the (subsampled) latest capture."""
    sub = _rows(emb, idx)
    fig = new_figure(11.0, 5.0)
    axes = fig.subplots(1, 2)
    _draw_pair(fig, axes, Y, sub, "t-SNE 1 (arbitrary units)", "t-SNE 2 (arbitrary units)")
    shown = f"{idx.size} of {emb.X.shape[0]} points" if idx.size < emb.X.shape[0] else \
        f"all {idx.size} points"
    by = f"{backend}, " if backend else ""
    fig.suptitle(f"Embeddings by t-SNE, episode {emb.episode} ({shown}; "
                 f"{by}perplexity {perplexity:.3g}, seed {SEED})")
    return fig


__all__ = ["Embeddings", "validate_embeddings", "pca_figure", "tsne_figure"]
