"""DVC stage `train`: train the agent per params.yaml, resuming from the newest valid checkpoint.

Reads the sections env, agent, train, experiment, checkpoint, capture. Writes
<experiment.directory>/ (CSVs, agent_training.log, tensorboard/, captures/, run.json) and
<checkpoint.directory>/. Exit codes: 0 done, 2 bad params/input, 3 stopped on a NaN loss,
130/143 interrupted by SIGINT/SIGTERM (a checkpoint of the last finished rollout is saved).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

# Run the library of the commit this script belongs to (DVC queues run copies of the repo in
# .dvc/tmp/exps/), not whichever copy happens to be installed.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from rlpipe.stage_runner import run_stage

SECTIONS = ("env", "agent", "train", "experiment", "checkpoint", "capture")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="stages/train.py", description=__doc__.split("\n")[0])
    parser.add_argument("--params", default="params.yaml", help="params file (default: params.yaml)")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    args = parser.parse_args(argv)

    def run() -> int:
        from rlpipe.config import Params, load_sections

        sections = load_sections(args.params, SECTIONS)
        params = Params.from_dict({})  # defaults for the sections this stage does not read
        params = Params(**{**params.__dict__, **sections})
        if args.no_progress:
            from dataclasses import replace
            params = replace(params, train=replace(params.train, progress_bar=False))
        from rlpipe.train.run import train

        return train(params, Path("."))

    return run_stage("train", run)


if __name__ == "__main__":
    sys.exit(main())
