"""The one registry of figures: name, output files, titles, inputs and builder of each.

Everything else derives from :data:`FIGURES`: the allowed values of ``visualize.figures``
(:data:`FIGURE_NAMES`), the visualize stage's dispatch and placeholders
(:mod:`rlpipe.plots.stage`), the outputs it writes (:data:`FIGURE_OUTPUTS`) and the figure table
in docs/FIGURES.md (``python -m rlpipe.plots.registry`` prints it; a test keeps the two equal).
Adding a figure = its builder + one entry here + its line under ``plots:`` in dvc.yaml.

Imports nothing heavy: builders are named as ``module:function`` and imported only when the
stage draws. The training side never imports it (``config.py`` checks only the shape of the
``visualize`` section; :func:`check_settings` checks its names here, when the visualize stage
starts), so editing a figure never makes ``train`` stale.
"""
from __future__ import annotations

from dataclasses import dataclass

from rlpipe.config_build import ConfigError
from rlpipe.paths import EPISODE_GIFS_DIR, EVAL_EPISODES_CSV


@dataclass(frozen=True)
class FigureSpec:
    """One figure of the visualize stage.

    Attributes:
        name: the value listed in ``visualize.figures``.
        outputs: files it writes under ``plots/`` (dvc.yaml declares each).
        titles: one title per output (also the title of its placeholder).
        tables: summary tables it reads (``episodes``, ``updates``, ``steps``, ``actions``); a
            missing table fails the stage before anything is written (``actions`` is optional:
            missing = no rows).
        captures: capture files it reads (``embeddings``, ``attention``, ``trace``); missing
            captures give a placeholder and a note.
        files: other stages' files it reads (relative to the repository root, e.g. the evaluate
            stage's ``eval/episodes.csv``); missing ones give a placeholder and a note.
        builder: ``module:function``; ``function(ctx)`` returns one callable per output, each
            returning a matplotlib Figure or GIF bytes, or raising ``FigureUnavailable``.
        prepare: optional ``module:function`` run before any figure is drawn (``prepare(ctx)``),
            e.g. to start slow work in the background.
        per_capture: optional ``module:function``; ``function(ctx)`` yields
            ``(file name, bytes, metadata)`` for files named per capture (one GIF per captured
            episode), written under ``plots/<per_capture_dir>/`` with the metadata as JSON beside
            each; files there that it does not yield again are removed.
        per_capture_dir: the folder of those files, inside ``plots/``.
        description: what the figure shows (docs).
    """

    name: str
    outputs: tuple[str, ...]
    titles: tuple[str, ...]
    tables: tuple[str, ...] = ()
    captures: tuple[str, ...] = ()
    builder: str = ""
    prepare: str = ""
    per_capture: str = ""
    per_capture_dir: str = ""
    description: str = ""
    files: tuple[str, ...] = ()


_B = "rlpipe.plots.builders:"

#: every figure, in drawing order (slow ones last)
FIGURES: tuple[FigureSpec, ...] = (
    FigureSpec("reward", ("reward.png",), ("Episode reward",), ("episodes",), (), _B + "reward",
               description="episode return and its moving average, mean episode reward; the "
                           "evaluations during training beside them (train.eval_interval)",
               files=("<experiment.directory>/eval.csv",)),
    FigureSpec("loss", ("loss.png",), ("Losses",), ("updates", "episodes"), (), _B + "loss",
               description="actor and critic losses per update"),
    FigureSpec("actions", ("actions.png",), ("Action distribution",), ("steps", "actions"), (),
               _B + "actions",
               description="action frequency per window of episodes; chosen vs reference actions "
                           "(Discrete); per-dimension histograms (Box) or per-component counts "
                           "(MultiDiscrete) per window"),
    FigureSpec("entropy", ("entropy.png",), ("Policy entropy",), ("updates", "episodes"), (),
               _B + "entropy", description="policy entropy per update"),
    FigureSpec("value", ("value.png",), ("Value function",), ("steps", "updates"), (),
               _B + "value", description="value estimates against the return discounted at train.gamma, explained variance"),
    FigureSpec("performance", ("performance.png",), ("Performance metrics",), ("episodes",), (),
               _B + "performance",
               description="Deployment Accuracy and the environment's episode metrics"),
    FigureSpec("evaluation", ("evaluation.png",), ("Held-out evaluation",), (), (),
               _B + "evaluation", files=(EVAL_EPISODES_CSV.as_posix(),),
               description="the evaluate stage: return (and reference accuracy) per variant and "
                           "policy (checkpoints and baselines), mean ± sd over the held-out "
                           "episodes"),
    FigureSpec("attention", ("attention.png",), ("GAT attention",), (), ("attention",),
               _B + "attention",
               description="attention per layer and head of probe state 0, mean by node-kind pair, "
                           "of the capture `visualize.capture_episode` (0: the newest)"),
    FigureSpec("animation", ("episode.gif",), ("Captured episode",), (), ("trace",),
               _B + "animation", per_capture=_B + "episode_gifs", per_capture_dir=EPISODE_GIFS_DIR,
               description="the newest captured episode, step by step; and one GIF per captured "
                           "episode in episodes/ (`epXXXXXX_reward<R>.gif` + `.json` metadata)"),
    FigureSpec("embeddings", ("embeddings_pca.png", "embeddings_tsne.png"),
               ("Embeddings by PCA", "Embeddings by t-SNE"), (), ("embeddings",),
               _B + "embeddings", _B + "start_tsne",
               description="captured node/observation embeddings in 2-D by PCA and by t-SNE, of the "
                           "capture `visualize.capture_episode` (0: the newest)"),
)

FIGURE_NAMES: tuple[str, ...] = tuple(f.name for f in FIGURES)
#: image formats of ``visualize.formats``: every ``.png`` output is also written as ``.svg`` beside
#: it when asked (dvc.yaml declares the ``.png`` files, the default); GIFs stay GIFs
FIGURE_FORMATS: tuple[str, ...] = ("png", "svg")
FIGURE_OUTPUTS: dict[str, tuple[str, ...]] = {f.name: f.outputs for f in FIGURES}
BY_NAME: dict[str, FigureSpec] = {f.name: f for f in FIGURES}


def check_settings(figures: tuple[str, ...] | None, formats: tuple[str, ...]) -> tuple[str, ...]:
    """Check ``visualize.figures`` and ``visualize.formats`` against the registry (before the
    stage writes anything); return the names of the figures to draw (``None``: every figure)."""
    for i, name in enumerate(figures or ()):
        if name not in BY_NAME:
            raise ConfigError(f"visualize.figures[{i}]: must be one of "
                              f"{', '.join(map(repr, FIGURE_NAMES))}, got {name!r}")
    for i, fmt in enumerate(formats):
        if fmt not in FIGURE_FORMATS:
            raise ConfigError(f"visualize.formats[{i}]: must be one of "
                              f"{', '.join(map(repr, FIGURE_FORMATS))}, got {fmt!r}")
    if not formats or len(set(formats)) != len(formats):
        raise ConfigError(f"visualize.formats: must list each of {', '.join(FIGURE_FORMATS)} at "
                          f"most once, and at least one, got {list(formats)!r}")
    return FIGURE_NAMES if figures is None else tuple(figures)


def docs_table() -> str:
    """The markdown table of docs/FIGURES.md."""
    rows = ["| figure | files (plots/) | reads | shows |", "|---|---|---|---|"]
    for f in FIGURES:
        reads = ", ".join([*(f"{t}.parquet" for t in f.tables), *(f"{c} captures" for c in f.captures),
                           *f.files])
        rows.append(f"| `{f.name}` | {', '.join(f'`{o}`' for o in f.outputs)} | {reads} | "
                    f"{f.description} |")
    return "\n".join(rows) + "\n"


if __name__ == "__main__":  # pragma: no cover - prints the docs table
    print(docs_table(), end="")
