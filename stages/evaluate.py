"""DVC stage `evaluate`: the trained checkpoints and the baselines on held-out episodes.

Reads the `evaluate` section of params.yaml and `checkpoint.directory`; loads the final
checkpoint and/or best.pt (evaluate.checkpoints), plays evaluate.episodes greedy (or sampled)
episodes per variant (evaluate.variants: env.kwargs overrides, e.g. zero-shot on larger graphs)
beside the random and reference baselines on the same seeds, never a training seed. Writes
eval/metrics.json (`dvc metrics show`) and eval/episodes.csv (one row per episode). Exit codes:
0 done, 2 bad params or a missing/bad checkpoint (nothing written).
"""
import sys
from pathlib import Path

# Run the library of the commit this script belongs to (DVC queues run copies of the repo in
# .dvc/tmp/exps/), not whichever copy happens to be installed.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
# A user's own environment module in the repository (env.id `my_module:MyEnv-v0`) imports too.
sys.path.insert(1, str(Path(__file__).resolve().parents[1]))

from rlpipe.stage_runner import stage_main  # noqa: E402

SECTIONS = ("evaluate", "checkpoint.directory")


def main(argv: list[str] | None = None) -> int:
    return stage_main("evaluate", __doc__.split("\n")[0], SECTIONS, "rlpipe.evaluation.stage:run",
                      argv)


if __name__ == "__main__":
    sys.exit(main())
