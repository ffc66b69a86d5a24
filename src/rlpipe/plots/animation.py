"""Animated GIF of a captured episode (``epXXXXXX_trace.json``).

Graph traces (docs/ENVIRONMENTS.md: ``num_nodes``, ``edges``, optional ``positions`` (else a
circle), ``node_kinds``/``node_kind_names``, per step ``node_values``, ``focus``, ``reference``,
``valid``, ``caption``) draw the network at each step: node colour = the step's node values,
marker = node kind, the focus node ringed purple, the chosen node ringed red, the reference set
marked with green stars, title ``step k — reward r``. Other traces (``{"episode", "steps":
[{"action", "reward"}]}``) become a strip animation of actions and cumulative reward.

Frames are drawn by blitting on the Agg canvas (static parts drawn once, the changing artists
redrawn per frame) and encoded with Pillow directly — several times faster than
``matplotlib.animation.PillowWriter``, which redraws and re-saves the whole figure per frame.
"""
from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np

from rlpipe.plots.render import FigureUnavailable, new_figure
from rlpipe.plots.style import CMAP_UTILIZATION, COLORS

KIND_MARKERS = ("o", "s", "^", "D", "v", "P", "h", "X")


@dataclass
class GraphTrace:
    episode: int
    positions: np.ndarray      # [N, 2]
    edges: np.ndarray          # [E, 2] int
    node_kinds: np.ndarray     # [N] int
    kind_names: tuple          # names of the kinds
    focus: np.ndarray          # [T] int (-1 = none)
    action: np.ndarray         # [T] int
    reward: np.ndarray         # [T] float
    valid: list                # [T] bool or None
    reference: list            # [T] list of node indices
    node_values: np.ndarray    # [T, N] (zeros when the trace has none)
    value_name: str            # what the node values are ("" = none)
    focus_name: str            # what the focus node is
    caption: list              # [T] str


def circle_layout(n: int) -> np.ndarray:
    """Positions on a unit circle, for traces without positions."""
    angle = 2 * np.pi * np.arange(n) / max(n, 1)
    return np.stack([np.cos(angle), np.sin(angle)], axis=1)


@dataclass
class SimpleTrace:
    episode: int
    action: np.ndarray  # [T]
    reward: np.ndarray  # [T]


def _num(v, where: str) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise FigureUnavailable(f"{where}: expected a number, got {v!r}")
    return float(v)


def _int(v, where: str) -> int:
    if isinstance(v, bool) or not isinstance(v, int):
        raise FigureUnavailable(f"{where}: expected an integer, got {v!r}")
    return v


def validate_trace(doc, episode: int, source: str = ""):
    """A :class:`GraphTrace` or :class:`SimpleTrace` from a trace document (docs/FILES.md)."""
    where = source or f"episode {episode} trace"
    if not isinstance(doc, dict) or not isinstance(doc.get("steps"), list):
        raise FigureUnavailable(f"{where}: expected an object with a 'steps' list")
    steps = doc["steps"]
    if not steps:
        raise FigureUnavailable(f"{where}: the trace has no steps")
    for i, s in enumerate(steps):
        if not isinstance(s, dict) or "action" not in s or "reward" not in s:
            raise FigureUnavailable(f"{where}: steps[{i}] has no 'action'/'reward'")
    ep = doc.get("episode", episode)
    ep = ep if isinstance(ep, int) and not isinstance(ep, bool) else episode
    # an integer action (Discrete, flat MultiDiscrete index) or a number (Box: the action's mean)
    action = np.array([_num(s["action"], f"{where}: steps[{i}].action") for i, s in enumerate(steps)])
    reward = np.array([_num(s["reward"], f"{where}: steps[{i}].reward") for i, s in enumerate(steps)])
    if "num_nodes" not in doc:
        return SimpleTrace(ep, action, reward)

    n = _int(doc.get("num_nodes"), f"{where}: num_nodes")
    if n < 1:
        raise FigureUnavailable(f"{where}: num_nodes must be >= 1, got {n}")
    try:
        pos = np.asarray(doc["positions"], dtype=np.float64) if "positions" in doc else circle_layout(n)
        edges = np.asarray(doc.get("edges", []), dtype=np.int64).reshape(-1, 2)
    except (TypeError, ValueError) as e:
        raise FigureUnavailable(f"{where}: bad 'positions'/'edges' ({e})") from None
    if pos.shape != (n, 2):
        raise FigureUnavailable(f"{where}: 'positions' has shape {pos.shape}, expected [{n}, 2]")
    if edges.size and (edges.min() < 0 or edges.max() >= n):
        raise FigureUnavailable(f"{where}: 'edges' hold node indices outside 0..{n - 1}")
    kind_names = tuple(str(k) for k in doc.get("node_kind_names") or ()) or ("node",)
    try:
        kinds = np.asarray(doc.get("node_kinds", [0] * n), dtype=np.int64).reshape(-1)
    except (TypeError, ValueError):
        raise FigureUnavailable(f"{where}: 'node_kinds' must be integers") from None
    if kinds.size != n:
        raise FigureUnavailable(f"{where}: 'node_kinds' has {kinds.size} entries, num_nodes is {n}")
    if kinds.min() < 0 or kinds.max() >= len(kind_names):
        raise FigureUnavailable(f"{where}: 'node_kinds' holds a kind outside the "
                                f"{len(kind_names)} kind names")
    values = np.zeros((len(steps), n))
    has_values = False
    focus, reference, valid, caption = [], [], [], []
    for i, s in enumerate(steps):
        u = s.get("node_values")
        if u is not None:
            u = np.asarray(u, dtype=np.float64).reshape(-1)
            if u.size != n:
                raise FigureUnavailable(f"{where}: steps[{i}].node_values has {u.size} values, "
                                        f"num_nodes is {n}")
            values[i] = u
            has_values = True
        f = s.get("focus")
        focus.append(_int(f, f"{where}: steps[{i}].focus") if f is not None else -1)
        ref = s.get("reference") or []
        if not isinstance(ref, list):
            raise FigureUnavailable(f"{where}: steps[{i}].reference must be a list")
        ref = [_int(o, f"{where}: steps[{i}].reference") for o in ref]
        if any(o < 0 or o >= n for o in ref):
            raise FigureUnavailable(f"{where}: steps[{i}].reference holds a node outside 0..{n - 1}")
        reference.append(ref)
        valid.append(s.get("valid"))
        caption.append(str(s.get("caption") or ""))
    focus_arr = np.array(focus)
    if (focus_arr >= n).any():
        raise FigureUnavailable(f"{where}: a step's 'focus' is outside 0..{n - 1}")
    value_name = str(doc.get("node_value_name") or "node value") if has_values else ""
    return GraphTrace(ep, pos, edges, kinds, kind_names, focus_arr, action, reward, valid,
                      reference, values, value_name, str(doc.get("focus_name") or "focus node"),
                      caption)


def frame_indices(num_steps: int, max_frames: int) -> np.ndarray:
    """Step indices (0-based) of the frames: all steps, or ``max_frames`` evenly spaced ones
    including the first and the last."""
    if num_steps <= max_frames:
        return np.arange(num_steps)
    return np.unique(np.round(np.linspace(0, num_steps - 1, max_frames)).astype(np.int64))


def _encode_gif(frames: list[np.ndarray], fps: int) -> bytes:
    """RGB frames → animated GIF bytes with one shared palette (built from a few frames)."""
    from PIL import Image

    if len(frames) > 1:
        pick = frames[:: max(1, len(frames) // 4)][:4]
        sample = Image.fromarray(np.concatenate(pick, axis=0))
    else:
        sample = Image.fromarray(frames[0])
    palette = sample.quantize(colors=255, method=Image.Quantize.MEDIANCUT)
    images = [Image.fromarray(f).quantize(palette=palette, dither=Image.Dither.NONE) for f in frames]
    buf = io.BytesIO()
    images[0].save(buf, format="GIF", save_all=True, append_images=images[1:],
                   duration=max(int(round(1000 / fps)), 20), loop=0, disposal=1)
    return buf.getvalue()


class _Blitter:
    """Draw the static figure once; per frame restore it and redraw only the animated artists."""

    def __init__(self, fig, artists):
        self.fig, self.artists = fig, artists
        for a in artists:
            a.set_animated(True)
        fig.canvas.draw()
        self.background = fig.canvas.copy_from_bbox(fig.bbox)

    def grab(self) -> np.ndarray:
        canvas = self.fig.canvas
        canvas.restore_region(self.background)
        for a in self.artists:
            self.fig.draw_artist(a)
        return np.asarray(canvas.buffer_rgba())[..., :3].copy()


def graph_gif(tr: GraphTrace, fps: int, max_frames: int, dpi: int) -> bytes:
    import matplotlib
    from matplotlib.collections import LineCollection
    from matplotlib.lines import Line2D

    fig = new_figure(7.6, 6.8, layout=None, dpi=dpi)
    ax = fig.add_axes((0.08, 0.30, 0.70, 0.59))
    cax = fig.add_axes((0.82, 0.30, 0.03, 0.59))
    sax = fig.add_axes((0.08, 0.06, 0.77, 0.08))
    pos = tr.positions
    if tr.edges.size:
        ax.add_collection(LineCollection(pos[tr.edges], colors=COLORS["graph_edge"], linewidths=0.8,
                                         zorder=1))
    pad = 0.06 * max(np.ptp(pos[:, 0]), np.ptp(pos[:, 1]), 1e-9)
    ax.update_datalim(np.vstack([pos.min(axis=0) - pad, pos.max(axis=0) + 2 * pad]))
    ax.set_aspect("equal", adjustable="datalim")
    ax.set_xlabel("x position (layout units)")
    ax.set_ylabel("y position (layout units)")
    ax.grid(False)
    cmap = matplotlib.colormaps[CMAP_UTILIZATION]
    vmin, vmax = 0.0, max(1.0, float(tr.node_values.max()) if tr.node_values.size else 1.0)
    if tr.node_values.size and tr.node_values.min() < 0:
        vmin = float(tr.node_values.min())
    nodes = []
    for k in range(len(tr.kind_names)):
        mask = tr.node_kinds == k
        marker = KIND_MARKERS[k % len(KIND_MARKERS)]
        sc = ax.scatter(pos[mask, 0], pos[mask, 1], c=tr.node_values[0, mask], cmap=cmap,
                        vmin=vmin, vmax=vmax, marker=marker, s=150 if k == 0 else 220,
                        edgecolors="#333333", linewidths=0.8, zorder=3)
        nodes.append((sc, mask))
    if tr.value_name:
        fig.colorbar(nodes[0][0], cax=cax, label=tr.value_name)
    else:
        cax.set_visible(False)
    ring_src = ax.scatter([], [], s=560, facecolors="none", edgecolors=COLORS["focus"],
                          linewidths=2.6, zorder=4)
    ring_act = ax.scatter([], [], s=340, facecolors="none", edgecolors=COLORS["chosen"],
                          linewidths=2.6, zorder=5)
    off = np.array([0.5 * pad, 0.5 * pad])
    ref_m = ax.scatter([], [], s=70, marker="*", color=COLORS["reference_set"], edgecolors="black",
                       linewidths=0.4, zorder=6)
    handles = [
        Line2D([], [], ls="", marker="o", ms=9, mfc="none", mec=COLORS["chosen"], mew=2,
               label="chosen node (action)"),
    ]
    if (tr.focus >= 0).any():
        handles.insert(0, Line2D([], [], ls="", marker="o", ms=9, mfc="none", mec=COLORS["focus"],
                                 mew=2, label=tr.focus_name))
    if any(tr.reference):
        handles.append(Line2D([], [], ls="", marker="*", ms=9, color=COLORS["reference_set"],
                              label="reference set"))
    if len(tr.kind_names) > 1:
        handles += [Line2D([], [], ls="", marker=KIND_MARKERS[k % len(KIND_MARKERS)],
                           mfc="#DDDDDD", mec="#333333", label=f"{name} node")
                    for k, name in enumerate(tr.kind_names)]
    fig.legend(handles=handles, loc="center", bbox_to_anchor=(0.47, 0.185),
               ncol=min(len(handles), 5), fontsize=7, frameon=False, handletextpad=0.3,
               columnspacing=1.0)
    title = ax.set_title("step 1 — reward 0", fontsize=12, fontweight="bold", pad=14)
    info = ax.text(0.5, 1.005, "", transform=ax.transAxes, ha="center", va="bottom", fontsize=8)
    fig.suptitle(f"Captured episode {tr.episode}", x=0.45, fontsize=11)
    T = tr.reward.size
    cum = np.cumsum(tr.reward)
    sax.bar(np.arange(1, T + 1), tr.reward, width=1.0, color=COLORS["reward"], alpha=0.5)
    sax.set_xlim(0.5, T + 0.5)
    sax.set_xlabel("step", fontsize=8, labelpad=1)
    sax.set_ylabel("reward", fontsize=8)
    sax.tick_params(labelsize=7)
    cursor = sax.axvline(1, color=COLORS["chosen"], lw=1.5)
    n = pos.shape[0]
    animated = [sc for sc, _ in nodes] + [ring_src, ring_act, ref_m, title, info, cursor]
    blit = _Blitter(fig, animated)
    frames = []
    for k in frame_indices(T, max_frames):
        for sc, mask in nodes:
            sc.set_array(tr.node_values[k, mask])
        s = int(tr.focus[k])
        ring_src.set_offsets(pos[[s]] if 0 <= s < n else np.empty((0, 2)))
        a = int(tr.action[k])
        ring_act.set_offsets(pos[[a]] if 0 <= a < n else np.empty((0, 2)))
        ref = tr.reference[k]
        ref_m.set_offsets(pos[ref] + off if ref else np.empty((0, 2)))
        title.set_text(f"step {k + 1} — reward {tr.reward[k]:.3g}")
        parts = [f"action {a}" + ("" if 0 <= a < n else " (no node)"),
                 f"cumulative reward {cum[k]:.3g}"]
        if tr.caption[k]:
            parts.append(tr.caption[k])
        if tr.valid[k] is not None:
            parts.append("valid" if tr.valid[k] else "invalid")
        info.set_text(" · ".join(parts))
        cursor.set_xdata([k + 1, k + 1])
        frames.append(blit.grab())
    return _encode_gif(frames, fps)


def strip_gif(tr: SimpleTrace, fps: int, max_frames: int, dpi: int) -> bytes:
    """Actions and cumulative reward revealed step by step (non-graph environments)."""
    fig = new_figure(7.6, 5.2, layout=None, dpi=dpi)
    ax_a = fig.add_axes((0.10, 0.56, 0.86, 0.32))
    ax_r = fig.add_axes((0.10, 0.10, 0.86, 0.32))
    T = tr.reward.size
    steps = np.arange(1, T + 1)
    cum = np.cumsum(tr.reward)
    integral = bool(np.all(tr.action == np.round(tr.action)))
    lo_a, hi_a = float(tr.action.min()), float(tr.action.max())
    ax_a.set_xlim(0.5, T + 0.5)
    if integral:
        ax_a.set_ylim(lo_a - 0.5, hi_a + 0.5)
        if hi_a - lo_a <= 20:
            ax_a.set_yticks(range(int(lo_a), int(hi_a) + 1))
        ax_a.set_ylabel("action index")
    else:
        pad = 0.05 * (hi_a - lo_a or 1.0)
        ax_a.set_ylim(lo_a - pad, hi_a + pad)
        ax_a.set_ylabel("action (mean over dimensions)")
    ax_a.set_xlabel("step")
    ax_r.set_xlim(0.5, T + 0.5)
    span = [min(cum.min(), tr.reward.min(), 0.0), max(cum.max(), tr.reward.max(), 0.0)]
    pad = 0.05 * (span[1] - span[0] or 1.0)
    ax_r.set_ylim(span[0] - pad, span[1] + pad)
    ax_r.set_xlabel("step")
    ax_r.set_ylabel("reward (env. units)")
    (act_line,) = ax_a.plot([], [], drawstyle="steps-mid", color=COLORS["chosen"], lw=1.2,
                            marker="o", ms=2.5, label="action taken")
    (rew_line,) = ax_r.plot([], [], color=COLORS["reward"], lw=0.9, marker="o", ms=2,
                            label="reward per step")
    (cum_line,) = ax_r.plot([], [], color=COLORS["mean_reward"], lw=1.8, label="cumulative reward")
    ax_a.legend(loc="upper right")
    ax_r.legend(loc="upper left")
    title = fig.text(0.5, 0.93, "step 1 — reward 0", ha="center", fontsize=13, fontweight="bold")
    fig.text(0.5, 0.975, f"Captured episode {tr.episode} ({T} steps)", ha="center", fontsize=10)
    blit = _Blitter(fig, [act_line, rew_line, cum_line, title])
    frames = []
    for k in frame_indices(T, max_frames):
        act_line.set_data(steps[: k + 1], tr.action[: k + 1])
        rew_line.set_data(steps[: k + 1], tr.reward[: k + 1])
        cum_line.set_data(steps[: k + 1], cum[: k + 1])
        title.set_text(f"step {k + 1} — reward {tr.reward[k]:.3g}")
        frames.append(blit.grab())
    return _encode_gif(frames, fps)


def episode_gif(trace, fps: int, max_frames: int, dpi: int) -> bytes:
    if isinstance(trace, GraphTrace):
        return graph_gif(trace, fps, max_frames, dpi)
    return strip_gif(trace, fps, max_frames, dpi)

