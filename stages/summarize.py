"""DVC stage `summarize`: training_output/*.csv -> data/summary/*.parquet, metrics.json, data/plots/*.csv.

Reads only the `summarize` and `experiment` sections of params.yaml. Run from the repository
root: `python stages/summarize.py [--params params.yaml]`.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

# Run the library of the commit this script belongs to (DVC queues run copies of the repo in
# .dvc/tmp/exps/), not whichever copy happens to be installed.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from rlpipe.config import load_sections
from rlpipe.stage_runner import run_stage
from rlpipe.summarize.stage import METRICS_PATH, PLOTS_DIR, SUMMARY_DIR, summarize

NAME = "summarize"


def _main(params_path: str) -> int:
    sections = load_sections(params_path, ("summarize", "experiment"))
    cfg, exp = sections["summarize"], sections["experiment"]

    def warn(msg: str) -> None:
        print(f"{NAME}: warning: {msg}", file=sys.stderr)

    def note(msg: str) -> None:
        print(f"{NAME}: {msg}")

    result = summarize(exp.directory, cfg.window, cfg.max_points, warn=warn, note=note)
    print(f"{NAME}: {result.episodes} episodes, {result.updates} updates, {result.steps} steps "
          f"-> {SUMMARY_DIR.as_posix()}/*.parquet, {METRICS_PATH.as_posix()}, "
          f"{PLOTS_DIR.as_posix()}/*.csv")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python stages/summarize.py",
        description="Summarise the train stage's CSV logs: typed Parquet tables "
                    f"({SUMMARY_DIR.as_posix()}/), {METRICS_PATH.as_posix()} for `dvc metrics` "
                    f"and small smoothed series ({PLOTS_DIR.as_posix()}/*.csv) for `dvc plots`.")
    parser.add_argument("--params", default="params.yaml",
                        help="parameters file; reads its `summarize` and `experiment` sections "
                             "(default: %(default)s)")
    args = parser.parse_args(argv)
    return run_stage(NAME, lambda: _main(args.params))


if __name__ == "__main__":
    sys.exit(main())
