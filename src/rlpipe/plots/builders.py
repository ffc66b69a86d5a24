"""The builders the figure registry names: ``builder(ctx)`` returns one callable per output.

``ctx`` is the visualize stage's :class:`rlpipe.plots.stage.Context`: ``ctx.table(kind)``,
``ctx.vis`` (the ``visualize`` params), ``ctx.captures`` / ``ctx.capture_notes`` (the capture
index) and ``ctx.state`` (what ``prepare`` functions left). Each callable returns a matplotlib
Figure or GIF bytes, or raises :class:`~rlpipe.plots.FigureUnavailable` with a note.
"""
from __future__ import annotations

import numpy as np

from rlpipe.plots import inputs
from rlpipe.plots.render import FigureUnavailable


def reward(ctx):
    from rlpipe.plots import training

    from rlpipe.paths import EVAL_CSV
    from rlpipe.plots.evaluation import read_training_evaluations

    evals = ctx.root / ctx.exp.directory / EVAL_CSV
    return [lambda: training.reward_figure(ctx.table("episodes"), ctx.vis.smoothing,
                                           read_training_evaluations(evals, ctx.note))]


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

    return [lambda: training.value_figure(ctx.table("steps"), ctx.table("updates"), ctx.vis.smoothing,
                                          ctx.gamma)]


def performance(ctx):
    from rlpipe.plots import training

    return [lambda: training.performance_figure(ctx.table("episodes"), ctx.vis.smoothing)]


def evaluation(ctx):
    from rlpipe.paths import EVAL_EPISODES_CSV
    from rlpipe.plots.evaluation import evaluation_figure

    return [lambda: evaluation_figure(ctx.root / EVAL_EPISODES_CSV)]


def _missing(kind: str, notes: list[str]) -> str:
    why = notes[0] if notes else "no capture lists one"
    return f"no {kind} capture ({why})"


def chosen_capture(ctx, kind: str, missing: str):
    """The capture that ``visualize.capture_episode`` names (0: the newest) among those with a
    ``kind`` file; FigureUnavailable when there is none."""
    listed = [c for c in ctx.captures if getattr(c, kind) is not None]
    if not listed:
        raise FigureUnavailable(missing)
    wanted = ctx.vis.capture_episode
    if not wanted:
        return listed[-1]
    for c in listed:
        if c.episode == wanted:
            return c
    raise FigureUnavailable(f"no {kind} capture at episode {wanted} (visualize.capture_episode; "
                            f"captured: {', '.join(str(c.episode) for c in listed)})")


def _chosen(ctx, kind: str, load, missing: str):
    """The chosen capture (:func:`chosen_capture`) and its ``kind`` file, loaded."""
    c = chosen_capture(ctx, kind, missing)
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
        c, z = _chosen(ctx, "attention", inputs.load_npz, missing)
        return att.attention_figure(att.validate_attention(z, c.episode, str(c.attention)))

    return [build]


def _episode_gif(ctx, capture) -> tuple[bytes, dict]:
    """GIF bytes and metadata of one captured episode (memoized: episode.gif and the
    per-episode GIF of the newest capture are drawn once)."""
    from rlpipe.plots import animation as anim

    done = ctx.state.setdefault("episode_gifs", {})
    if capture.episode not in done:
        try:
            doc = inputs.load_json(capture.trace)
        except inputs.CaptureFileError as e:
            raise FigureUnavailable(str(e)) from None
        trace = anim.validate_trace(doc, capture.episode, str(capture.trace))
        vis = ctx.vis
        gif = anim.episode_gif(trace, vis.animation_fps, vis.animation_max_frames, vis.dpi)
        steps = len(trace.reward)
        meta = {"episode": capture.episode, "reward": float(np.sum(trace.reward)), "steps": steps,
                "frames": int(anim.frame_indices(steps, vis.animation_max_frames).size),
                "fps": vis.animation_fps, "trace": capture.trace.name}
        done[capture.episode] = (gif, meta)
    return done[capture.episode]


def animation(ctx):
    def build():
        listed = [c for c in ctx.captures if c.trace is not None]
        if not listed:
            raise FigureUnavailable(_missing("episode trace", ctx.capture_notes))
        return _episode_gif(ctx, listed[-1])[0]

    return [build]


def episode_gif_name(episode: int, reward: float) -> str:
    """``ep000100_reward0.732.gif``: the episode and its return (3 decimals)."""
    return f"ep{episode:06d}_reward{reward:.3f}.gif"


def episode_gifs(ctx):
    """One GIF per captured episode, with its metadata (file name, bytes, metadata)."""
    from rlpipe.plots.stage import CAPTURE_ERRORS

    for c in ctx.captures:
        if c.trace is None:
            continue
        try:
            gif, meta = _episode_gif(ctx, c)
        except (FigureUnavailable, *CAPTURE_ERRORS) as e:
            ctx.note(f"episode {c.episode} GIF: {e}; not drawn")
            continue
        yield episode_gif_name(c.episode, meta["reward"]), gif, meta


# --------------------------------------------------------------------------- embeddings
def _load_embeddings(ctx):
    """(chosen Embeddings or None, the valid Embeddings of its kind up to it, reason when None).

    The chosen capture is ``visualize.capture_episode`` (0: the newest).
    """
    from rlpipe.plots.embeddings import validate_embeddings

    try:
        chosen = chosen_capture(ctx, "embeddings", _missing("embeddings", ctx.capture_notes))
    except FigureUnavailable as e:
        return None, [], str(e)
    with_emb = [c for c in ctx.captures if c.embeddings is not None and c.episode <= chosen.episode]
    history, latest, error = [], None, None
    for c in with_emb:
        is_latest = c is chosen
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
