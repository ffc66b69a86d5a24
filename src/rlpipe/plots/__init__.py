"""Figures of the ``visualize`` stage (matplotlib, Agg backend; never torch).

One module per job:

- :mod:`rlpipe.plots.style` — palette, matplotlib style, integer ticks, smoothing legend
  (the moving average is :mod:`rlpipe.smoothing`, shared with summarize).
- :mod:`rlpipe.plots.render` — figure → PNG bytes, placeholders.
- :mod:`rlpipe.plots.inputs` — read the summary Parquet files and the capture files.
- :mod:`rlpipe.plots.projection` — PCA and t-SNE (arrays only; no matplotlib).
- :mod:`rlpipe.plots.training` — reward, loss, entropy, value, performance, actions.
- :mod:`rlpipe.plots.value` — the value figure (estimate against the discounted return).
- :mod:`rlpipe.plots.curves` — raw series under their moving average, shared by the curve figures.
- :mod:`rlpipe.plots.embeddings` — PCA and t-SNE of captured node/observation embeddings.
- :mod:`rlpipe.plots.attention` — GAT attention heatmaps per layer and head.
- :mod:`rlpipe.plots.animation` — the animated captured episode (GIF).
- :mod:`rlpipe.plots.registry` — the one list of figures (names, files, inputs, builders).
- :mod:`rlpipe.plots.builders` — each figure's builder, as the registry names it.
- :mod:`rlpipe.plots.stage` — orchestration: pick figures, write every output atomically.

This package imports nothing heavy at import time; each module imports what it draws with.
"""

from rlpipe.plots.registry import FIGURE_OUTPUTS  # noqa: E402 - re-exported


class FigureUnavailable(Exception):
    """A figure cannot be drawn from the inputs at hand (missing optional input, bad shapes ...).

    The message is a one-line note for the user; the stage prints it and writes a placeholder.
    """


__all__ = ["FIGURE_OUTPUTS", "FigureUnavailable"]
