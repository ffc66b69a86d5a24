"""DVC stage `summarize`: training_output/*.csv -> data/summary/*.parquet, metrics.json, data/plots/*.csv.

Reads only the `summarize` and `experiment` sections of params.yaml. Run from the repository
root: `python stages/summarize.py [--params params.yaml]`. Imports no torch.
"""
import sys
from pathlib import Path

# Run the library of the commit this script belongs to (DVC queues run copies of the repo in
# .dvc/tmp/exps/), not whichever copy happens to be installed.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from rlpipe.stage_runner import stage_main  # noqa: E402

SECTIONS = ("summarize", "experiment")


def main(argv: list[str] | None = None) -> int:
    return stage_main("summarize", "Summarise the train stage's CSV logs: typed Parquet tables "
                      "(data/summary/), metrics.json for `dvc metrics` and small smoothed series "
                      "(data/plots/*.csv) for `dvc plots`.", SECTIONS,
                      "rlpipe.summarize.stage:run", argv)


if __name__ == "__main__":
    sys.exit(main())
