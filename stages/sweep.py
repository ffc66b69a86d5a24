"""DVC stage `sweep` (sweeps/dvc.yaml): seeds x grid of training runs on Ray, then compared.

Reads the sections env, agent, train, experiment, checkpoint, capture (the base run) and sweep.
Writes <out>/trials/<trial_id>/ (each trial's training folders and trial.json),
<out>/results/{episodes.parquet,trials.csv}, <out>/metrics.json and <out>/figures/*.png.
Exit codes: 0 done, 1 some trials failed after their retries (named), 2 bad params or an
unreachable Ray address (before any trial starts), 130/143 interrupted by SIGINT/SIGTERM.
Run it as `dvc repro sweeps/dvc.yaml`, or by hand from the repository root:
`python stages/sweep.py [--params params.yaml] [--out sweeps]`.
"""
from __future__ import annotations

import argparse
import signal
import sys
from pathlib import Path

# Run the library of the commit this script belongs to (DVC queues run copies of the repo in
# .dvc/tmp/exps/), not whichever copy happens to be installed; Ray ships this copy to the nodes.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from rlpipe.config import TRAIN_SECTIONS
from rlpipe.stage_runner import run_stage

NAME = "sweep"
SECTIONS = (*TRAIN_SECTIONS, "sweep")


def _sigterm(signum, frame):
    raise KeyboardInterrupt  # leave Ray cleanly: run() stops Ray in its finally


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="stages/sweep.py", description=__doc__.split("\n")[0])
    parser.add_argument("--params", default="params.yaml", help="params file (default: params.yaml)")
    parser.add_argument("--out", default="sweeps",
                        help="output folder (default: sweeps; dvc runs it with `.` in sweeps/)")
    args = parser.parse_args(argv)

    def run() -> int:
        from rlpipe.config import Params, load_sections
        from rlpipe.sweep.stage import run as run_sweep

        sections = load_sections(args.params, SECTIONS)
        params = Params(**{**Params.from_dict({}).__dict__, **sections})
        signal.signal(signal.SIGTERM, _sigterm)
        return run_sweep(params, Path(args.out))

    return run_stage(NAME, run)


if __name__ == "__main__":
    sys.exit(main())
