"""Figures of the ``visualize`` stage (matplotlib, Agg backend; never torch).

One module per job:

- :mod:`rlpipe.plots.style` — palette, matplotlib style, integer ticks, smoothing legend
  (the moving average is :mod:`rlpipe.smoothing`, shared with summarize).
- :mod:`rlpipe.plots.render` — figure → PNG bytes, placeholders.
- :mod:`rlpipe.plots.inputs` — read the summary Parquet files and the capture files.
- :mod:`rlpipe.plots.projection` — PCA and t-SNE (arrays only; no matplotlib).
- :mod:`rlpipe.plots.training` — reward, loss, entropy, value, performance, actions.
- :mod:`rlpipe.plots.embeddings` — PCA and t-SNE of captured node/observation embeddings.
- :mod:`rlpipe.plots.attention` — GAT attention heatmaps per layer and head.
- :mod:`rlpipe.plots.animation` — the animated captured episode (GIF).
- :mod:`rlpipe.plots.stage` — orchestration: pick figures, write every output atomically.

This package imports nothing heavy at import time; each module imports what it draws with.
"""

# Each figure name of ``visualize.figures`` and the files it writes under ``plots/`` (fixed names,
# listed as outputs in dvc.yaml). A disabled or unavailable figure still writes its files, as
# small placeholders that say why, so that every declared output exists after the stage.
FIGURE_OUTPUTS: dict[str, tuple[str, ...]] = {
    "reward": ("reward.png",),
    "loss": ("loss.png",),
    "actions": ("actions.png",),
    "entropy": ("entropy.png",),
    "value": ("value.png",),
    "performance": ("performance.png",),
    "embeddings": ("embeddings_pca.png", "embeddings_tsne.png"),
    "attention": ("attention.png",),
    "animation": ("episode.gif",),
}



class FigureUnavailable(Exception):
    """A figure cannot be drawn from the inputs at hand (missing optional input, bad shapes ...).

    The message is a one-line note for the user; the stage prints it and writes a placeholder.
    """


__all__ = ["FIGURE_OUTPUTS", "FigureUnavailable"]
