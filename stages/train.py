"""DVC stage `train`: train the agent per params.yaml, resuming from the newest valid checkpoint.

Reads the sections env, agent, train, experiment, checkpoint, capture. Writes
<experiment.directory>/ (CSVs, agent_training.log, tensorboard/, captures/, run.json) and
<checkpoint.directory>/. Exit codes: 0 done, 2 bad params/input, 3 stopped on a NaN loss,
130/143 interrupted by SIGINT/SIGTERM (a checkpoint of the last finished rollout is saved).
"""
import sys
from pathlib import Path

# Run the library of the commit this script belongs to (DVC queues run copies of the repo in
# .dvc/tmp/exps/), not whichever copy happens to be installed.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
# A user's own environment module in the repository (env.id `my_module:MyEnv-v0`) imports too.
sys.path.insert(1, str(Path(__file__).resolve().parents[1]))

from rlpipe.stage_runner import exit_now, stage_main  # noqa: E402

SECTIONS = ("env", "agent", "train", "experiment", "checkpoint", "capture")


def main(argv: list[str] | None = None) -> int:
    return stage_main("train", __doc__.split("\n")[0], SECTIONS, "rlpipe.train.run:run", argv,
                      flags={"--no-progress": "hide the progress bar"})


if __name__ == "__main__":
    exit_now(main())   # a stop signal ends the process at once (stage_runner.exit_now)
