"""The builders the figure registry names: ``builder(ctx)`` returns one callable per output.

``ctx`` is the visualize stage's :class:`rlpipe.plots.stage.Context`: ``ctx.table(kind)``,
``ctx.vis`` (the ``visualize`` params), ``ctx.captures`` / ``ctx.capture_notes`` (the capture
index) and ``ctx.state`` (what ``prepare`` functions left). Each callable returns a matplotlib
Figure or GIF bytes, or raises :class:`~rlpipe.plots.FigureUnavailable` with a note.
"""
from __future__ import annotations

from rlpipe.plots import inputs
from rlpipe.plots.render import FigureUnavailable


def reward(ctx):
    from rlpipe.plots import training

    return [lambda: training.reward_figure(ctx.table("episodes"), ctx.vis.smoothing)]


def loss(ctx):
    from rlpipe.plots import training

    return [lambda: training.loss_figure(ctx.table("updates"), ctx.table("episodes"), ctx.vis.smoothing)]


def actions(ctx):
    """Per-dimension histograms for Box / MultiDiscrete actions (actions.parquet has rows),
    else the action counts of steps.parquet (Discrete)."""
    from rlpipe.plots import action_dims, training

    def build():
        hist = ctx.table("actions")
        if len(hist):
            return action_dims.action_dimensions_figure(hist, ctx.vis.smoothing)
        return training.actions_figure(ctx.table("steps"), ctx.vis.smoothing)

    return [build]


def entropy(ctx):
    from rlpipe.plots import training

    return [lambda: training.entropy_figure(ctx.table("updates"), ctx.table("episodes"), ctx.vis.smoothing)]


def value(ctx):
    from rlpipe.plots import training

    return [lambda: training.value_figure(ctx.table("steps"), ctx.table("updates"), ctx.vis.smoothing)]


def performance(ctx):
    from rlpipe.plots import training

    return [lambda: training.performance_figure(ctx.table("episodes"), ctx.vis.smoothing)]


def _missing(kind: str, notes: list[str]) -> str:
    why = notes[0] if notes else "no capture lists one"
    return f"no {kind} capture ({why})"


def _latest(ctx, kind: str, load, missing: str):
    """The newest capture that has a ``kind`` file, loaded; FigureUnavailable when there is none
    or it cannot be read."""
    listed = [c for c in ctx.captures if getattr(c, kind) is not None]
    if not listed:
        raise FigureUnavailable(missing)
    c = listed[-1]
    try:
        return c, load(getattr(c, kind))
    except inputs.CaptureFileError as e:
        raise FigureUnavailable(str(e)) from None


def attention(ctx):
    def build():
        from rlpipe.plots import attention as att

        missing = (_missing("attention", ctx.capture_notes) if not ctx.captures else
                   "no attention capture (an MLP agent, or an agent without message-passing "
                   "layers, has none)")
        c, z = _latest(ctx, "attention", inputs.load_npz, missing)
        return att.attention_figure(att.validate_attention(z, c.episode, str(c.attention)))

    return [build]


def animation(ctx):
    def build():
        from rlpipe.plots import animation as anim

        c, doc = _latest(ctx, "trace", inputs.load_json, _missing("episode trace", ctx.capture_notes))
        trace = anim.validate_trace(doc, c.episode, str(c.trace))
        return anim.episode_gif(trace, ctx.vis.animation_fps, ctx.vis.animation_max_frames,
                                ctx.vis.dpi)

    return [build]


# --------------------------------------------------------------------------- embeddings
def _load_embeddings(ctx):
    """(latest Embeddings or None, all valid Embeddings of its kind, reason when None)."""
    from rlpipe.plots.embeddings import validate_embeddings

    with_emb = [c for c in ctx.captures if c.embeddings is not None]
    if not with_emb:
        return None, [], _missing("embeddings", ctx.capture_notes)
    history, latest, error = [], None, None
    for c in with_emb:
        is_latest = c is with_emb[-1]
        try:
            emb = validate_embeddings(inputs.load_npz(c.embeddings), c.episode, str(c.embeddings))
        except (inputs.CaptureFileError, FigureUnavailable, ValueError, TypeError, IndexError,
                KeyError) as e:
            if is_latest:
                error = str(e)
            else:
                ctx.note(f"embeddings evolution: {e}; capture left out")
            continue
        if emb.note:
            ctx.note(f"{c.embeddings}: {emb.note}")
        history.append(emb)
        if is_latest:
            latest = emb
    if latest is not None:
        history = [h for h in history if h.kind == latest.kind]
    return latest, history, error


def start_tsne(ctx) -> None:
    """Load the embeddings and start t-SNE (seconds for 2000 points) in a worker process while
    the other figures are drawn."""
    from rlpipe.plots.stage import TsneJob

    latest, history, error = _load_embeddings(ctx)
    job = ctx.resource(TsneJob())
    if latest is not None:
        chosen = latest.arrays.get("chosen")
        job.start(latest.X, ctx.vis.tsne_perplexity, ctx.vis.tsne_sample,
                  None if chosen is None else chosen.astype(bool))
    ctx.state["embeddings"] = (latest, history, error, job)


def embeddings(ctx):
    from rlpipe.plots import embeddings as emb

    latest, history, error, job = ctx.state["embeddings"]

    def pca():
        if latest is None:
            raise FigureUnavailable(error)
        return emb.pca_figure(latest, history)

    def tsne():
        if latest is None:
            raise FigureUnavailable(error)
        return emb.tsne_figure(latest, *job.result())

    return [pca, tsne]
