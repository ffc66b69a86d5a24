"""One palette and one look for every figure, integer ticks, and the smoothing legend.

The moving average itself is :mod:`rlpipe.smoothing` (shared with the summarize stage).

Colours are the Okabe–Ito colour-blind-safe set. A quantity keeps its colour in every figure
(critic loss is always vermillion, the second node kind always orange, the chosen node always red ...).
"""
from __future__ import annotations

# Okabe–Ito
_BLUE = "#0072B2"
_ORANGE = "#E69F00"
_SKY = "#56B4E9"
_GREEN = "#009E73"
_YELLOW = "#F0E442"
_VERMILLION = "#D55E00"
_PURPLE = "#CC79A7"
_GREY = "#7F7F7F"
_BLACK = "#222222"

COLORS: dict[str, str] = {
    # training curves
    "reward": _BLUE,            # Cumulative Reward (raw faint, moving average solid)
    "mean_reward": _VERMILLION,  # Mean Episode Reward as logged by train
    "evaluation": _GREEN,       # evaluation during training (training_output/eval.csv)
    "actor": _BLUE,             # actor / policy loss
    "critic": _VERMILLION,      # critic / value loss
    "entropy": _GREEN,          # policy entropy
    "kl": _PURPLE,              # approx KL
    "clip": _ORANGE,            # clip fraction
    "value": _PURPLE,           # value estimate
    "return": _ORANGE,          # observed return / reward-to-go
    "explained_variance": _SKY,
    "accuracy": _GREEN,         # Deployment Accuracy
    "skipped": _VERMILLION,     # skipped (NaN) updates
    "reference": _GREY,         # y = x, y = 0 ... reference lines
    # graph nodes (node kinds: KIND_CYCLE)
    "chosen": _VERMILLION,      # the node the policy chose / ranks highest
    "reference_set": _GREEN,    # in the environment's reference decision set
    "focus": _PURPLE,           # the step's focus node (e.g. a request's source)
    "graph_edge": "#B0B0B0",
    "text": _BLACK,
}

# Node kinds (the environment's kind names, in order) take these colours.
KIND_CYCLE = (_BLUE, _ORANGE, _GREEN, _PURPLE, _SKY, _VERMILLION, _YELLOW, _GREY)


def kind_colors(n: int) -> list[str]:
    """One colour per node kind, in the environment's kind order."""
    return [KIND_CYCLE[i % len(KIND_CYCLE)] for i in range(max(n, 1))]


# Further metrics (performance panels) cycle through these, in column order.
METRIC_CYCLE = (_GREEN, _BLUE, _ORANGE, _PURPLE, _SKY, _VERMILLION, _YELLOW, _GREY)

# Colour maps: sequential for magnitudes, one per meaning.
CMAP_SHARE = "viridis"        # shares / frequencies / probabilities
CMAP_UTILIZATION = "YlOrRd"   # node utilisation 0..1
CMAP_ATTENTION = "magma_r"    # attention weights 0..1 (light = low)
CMAP_DENSITY = "Greys"        # 2-D histograms

RAW_ALPHA = 0.25   # raw series drawn faint under their moving average
RAW_WIDTH = 0.7
SMOOTH_WIDTH = 1.8

_STYLE_SHEETS = {
    "whitegrid": "seaborn-v0_8-whitegrid",
    "darkgrid": "seaborn-v0_8-darkgrid",
    "white": "seaborn-v0_8-white",
    "ticks": "seaborn-v0_8-ticks",
    "default": "default",
}


def apply_style(style: str) -> None:
    """Set matplotlib's rcParams for ``visualize.style`` (seaborn-like sheets shipped with matplotlib)."""
    import matplotlib
    import matplotlib.style

    matplotlib.style.use("default")
    sheet = _STYLE_SHEETS.get(style, "default")
    if sheet != "default":
        matplotlib.style.use(sheet)
    matplotlib.rcParams.update({
        "figure.titlesize": 13,
        "figure.titleweight": "bold",
        "axes.titlesize": 11,
        "axes.labelsize": 10,
        "legend.fontsize": 8,
        "legend.framealpha": 0.85,
        "xtick.labelsize": 8,
        "ytick.labelsize": 8,
        "image.cmap": CMAP_SHARE,
    })


def integer_ticks(*axes) -> None:
    """Integer tick positions only (episode, update, node index ...): never 2.5 of a node."""
    from matplotlib.ticker import MaxNLocator

    for axis in axes:
        axis.set_major_locator(MaxNLocator(integer=True))


def smoothing_label(window: int, unit: str) -> str:
    """What a smoothed curve's legend says: the window it was really drawn with."""
    return f"centred mean of {window} {unit}"
