"""DVC stage `visualize`: figures from the summary tables and the training captures.

Reads the `visualize` and `experiment` sections of params.yaml (experiment.directory holds
`captures/`) and `train.gamma` (the value figure discounts returns with it),
`data/summary/{episodes,updates,steps}.parquet` and, when present,
`<experiment.directory>/captures/`; writes the PNG/GIF files of `plots/` (the figure registry,
docs/FIGURES.md). Run from the repository root: `python stages/visualize.py [--params params.yaml]`.
Imports neither torch nor torch_geometric; draws with matplotlib's Agg backend.
"""
import sys
from pathlib import Path

# Run the library of the commit this script belongs to (DVC queues run copies of the repo in
# .dvc/tmp/exps/), not whichever copy happens to be installed.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from rlpipe.stage_runner import stage_main  # noqa: E402

SECTIONS = ("visualize", "experiment", "train.gamma")


def main(argv: list[str] | None = None) -> int:
    return stage_main("visualize", "Draw the figures of plots/ (docs/FIGURES.md) from "
                      "data/summary/*.parquet and the training captures. visualize.figures "
                      "selects the figures; the others become small placeholder images.",
                      SECTIONS, "rlpipe.plots.stage:run", argv)


if __name__ == "__main__":
    sys.exit(main())
