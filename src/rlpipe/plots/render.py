"""Turn figures into file bytes, and draw placeholders for figures that cannot be drawn.

Figures are built with :class:`matplotlib.figure.Figure` on the Agg canvas directly (no pyplot,
so no global figure registry and no GUI backend). Callers write the returned bytes with
:func:`rlpipe.io_utils.atomic_write_bytes`, so a failure never leaves a torn file.
"""
from __future__ import annotations

import io
import textwrap

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from rlpipe.plots import FigureUnavailable  # noqa: F401  (re-exported for the figure modules)


def new_figure(width: float, height: float, **kwargs) -> Figure:
    """A figure on the Agg canvas, laid out with constrained layout."""
    kwargs.setdefault("layout", "constrained")
    fig = Figure(figsize=(width, height), **kwargs)
    FigureCanvasAgg(fig)
    return fig


def figure_png(fig: Figure, dpi: int) -> bytes:
    """Render ``fig`` to PNG bytes."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    return buf.getvalue()


def figure_svg(fig: Figure) -> bytes:
    """Render ``fig`` to SVG bytes, the same bytes for the same figure (no date, fixed ids)."""
    import matplotlib

    buf = io.BytesIO()
    with matplotlib.rc_context({"svg.hashsalt": "rlpipe"}):
        fig.savefig(buf, format="svg", metadata={"Date": None})
    return buf.getvalue()


def figure_bytes(fig: Figure, fmt: str, dpi: int) -> bytes:
    """``fig`` as a ``png`` or ``svg`` file (``visualize.formats``)."""
    return figure_png(fig, dpi) if fmt == "png" else figure_svg(fig)


def placeholder_figure(title: str, message: str) -> Figure:
    """A small figure that says which figure this is and why it is not drawn."""
    fig = new_figure(6.4, 1.8, layout=None)
    fig.text(0.5, 0.70, title, ha="center", va="center", fontsize=12, fontweight="bold")
    fig.text(0.5, 0.36, "\n".join(textwrap.wrap(message, 90)), ha="center", va="center",
             fontsize=9, color="#444444")
    return fig


def placeholder_png(title: str, message: str, dpi: int) -> bytes:
    return figure_png(placeholder_figure(title, message), dpi)


def placeholder_gif(title: str, message: str, dpi: int) -> bytes:
    """A one-frame GIF placeholder (the animation output is declared as a .gif)."""
    from PIL import Image

    png = placeholder_png(title, message, dpi)
    with Image.open(io.BytesIO(png)) as im:
        frame = im.convert("RGB").convert("P", palette=Image.Palette.ADAPTIVE, colors=64)
    buf = io.BytesIO()
    frame.save(buf, format="GIF")
    return buf.getvalue()
