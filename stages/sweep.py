"""DVC stage `sweep` (sweeps/dvc.yaml): seeds x grid of training runs on Ray, then compared.

Reads the sections env, agent, train, experiment, checkpoint, capture (the base run) and sweep.
Writes <out>/trials/<trial_id>/ (each trial's training folders and trial.json),
<out>/results/{episodes.parquet,trials.csv}, <out>/metrics.json and <out>/figures/*.png.
Exit codes: 0 done, 1 some trials failed after their retries (named), 2 bad params or an
unreachable Ray address (before any trial starts), 130 interrupted (SIGINT/SIGTERM).
Run it as `dvc --cd sweeps repro`, or from the repository root:
`python stages/sweep.py [--params params.yaml] [--out sweeps]`.
"""
import sys
from pathlib import Path

# Run the library of the commit this script belongs to (DVC queues run copies of the repo in
# .dvc/tmp/exps/), not whichever copy happens to be installed; Ray ships this copy to the nodes.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
# A user's own environment module in the repository (env.id `my_module:MyEnv-v0`) imports too;
# the sweep ships it to the Ray workers with rlpipe.
sys.path.insert(1, str(Path(__file__).resolve().parents[1]))

from rlpipe.stage_runner import stage_main  # noqa: E402

SECTIONS = ("env", "agent", "train", "experiment", "checkpoint", "capture", "sweep")


def main(argv: list[str] | None = None) -> int:
    return stage_main("sweep", __doc__.split("\n")[0], SECTIONS, "rlpipe.sweep.stage:run", argv,
                      options={"--out": ("sweeps", "output folder (sweeps/dvc.yaml gives `.`: "
                                         "the stage runs in sweeps/)")})


if __name__ == "__main__":
    sys.exit(main())
