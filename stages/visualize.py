"""DVC stage ``visualize``: figures from the summary tables and the training captures.

Reads the ``visualize`` and ``experiment`` sections of params.yaml (experiment.directory holds
``captures/``) and ``train.gamma`` (the value figure compares values with returns discounted by it), ``data/summary/{episodes,updates,steps}.parquet`` and, when present,
``<experiment.directory>/captures/``; writes the PNG/GIF files of ``plots/``. Run from the
repository root:  python stages/visualize.py [--params params.yaml]

Imports neither torch nor torch_geometric; draws with matplotlib's Agg backend.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

# Run the library of the commit this script belongs to (DVC queues run copies of the repo in
# .dvc/tmp/exps/), not whichever copy happens to be installed.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from rlpipe.stage_runner import run_stage


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python stages/visualize.py",
        description="Draw the figures of plots/ (reward, loss, actions, entropy, value, "
                    "performance, embeddings PCA/t-SNE, attention, episode animation) from "
                    "data/summary/*.parquet and the training captures. visualize.figures selects "
                    "the figures; the others become small placeholder images.",
    )
    p.add_argument("--params", default="params.yaml", metavar="PATH",
                   help="parameters file; only its 'visualize' and 'experiment' sections and "
                        "'train.gamma' are read "
                        "(default: params.yaml)")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)

    def _main() -> int:
        from rlpipe.config import load_sections, load_setting

        sections = load_sections(args.params, ("visualize", "experiment"))
        gamma = load_setting(args.params, "train.gamma")  # the value figure's discount
        import matplotlib

        matplotlib.use("Agg")
        from rlpipe.plots.stage import run_visualize

        return run_visualize(sections["visualize"], sections["experiment"], gamma=gamma)

    return run_stage("visualize", _main)


if __name__ == "__main__":
    sys.exit(main())
