"""File and folder names of the pipeline's outputs: one place for each (contract: docs/FILES.md).

Folders that params choose (``experiment.directory``, ``checkpoint.directory``) are joined with
these names; the fixed outputs of summarize and visualize are relative to the repository root
(the stages run there, as ``dvc.yaml`` says). Imports nothing heavy.
"""
from pathlib import Path

# inside experiment.directory (train)
EPISODES_CSV = "episodes.csv"
UPDATES_CSV = "updates.csv"
STEPS_CSV = "steps.csv"
ACTIONS_CSV = "actions.csv"  # per-dimension action histograms (Box / MultiDiscrete actions)
TEXT_LOG = "agent_training.log"
RUN_JSON = "run.json"
EVAL_CSV = "eval.csv"              # evaluation during training (train.eval_interval)
TENSORBOARD_DIR = "tensorboard"
CAPTURES_DIR = "captures"
CAPTURE_INDEX = "index.json"
ROLLOUTS_DIR = "rollouts"          # experiment.export_rollouts (rlpipe.exports)
WANDB_DIR = "wandb"

# live progress of the train stage, relative to the repository root: a folder of its own, because
# DVC refuses outputs inside another output (training_output/ is one); git-tracked (cache: false)
LIVE_DIR = Path("live")
LIVE_METRICS = LIVE_DIR / "metrics.json"
LIVE_REWARD = LIVE_DIR / "reward.csv"
LIVE_LOSSES = LIVE_DIR / "losses.csv"

# inside checkpoint.directory (train)
BEST_CHECKPOINT = "best.pt"
BEST_CHECKPOINT_DIR = "best"       # best.pt with checkpoint.store_separately: true
ARCHIVE_DIR = "archive"

# summarize
SUMMARY_DIR = Path("data/summary")
ACTIONS_PARQUET = "actions.parquet"
PLOT_SERIES_DIR = Path("data/plots")
METRICS_PATH = Path("metrics.json")

# evaluate: relative to the repository root; git-tracked (cache: false) like metrics.json
EVAL_DIR = Path("eval")
EVAL_METRICS = EVAL_DIR / "metrics.json"
EVAL_EPISODES_CSV = EVAL_DIR / "episodes.csv"

# visualize
FIGURES_DIR = Path("plots")
EPISODE_GIFS_DIR = "episodes"      # inside FIGURES_DIR: one GIF (+ .json) per captured episode

# sweep (stage `sweep` of sweeps/dvc.yaml): relative to its output folder, sweeps/
SWEEP_TRIALS_DIR = "trials"                       # trials/<trial id>/ = one run's folders
SWEEP_TRIAL_META = "trial.json"                   # inside each trial folder, the driver's record
SWEEP_TRIAL_REPORTS = "reports.json"              # inside a search trial's folder: [[step, value]]
SWEEP_STUDY = "study-{id}.journal"               # inside trials/: the Optuna study (journal file)
SWEEP_BEST_PARAMS = Path("best_params.yaml")      # the best setting as a params fragment
SWEEP_EPISODES = Path("results/episodes.parquet")
SWEEP_TRIALS_TABLE = Path("results/trials.csv")
SWEEP_METRICS = Path("metrics.json")
SWEEP_FIGURES_DIR = Path("figures")
SWEEP_LEARNING_CURVES = "learning_curves.png"     # inside SWEEP_FIGURES_DIR

# export (`rlpipe export`; stage `export` of deploy/dvc.yaml, a DVC project of its own, writes
# deploy/policy/): the file names; the folder is the stage's --out or the --output given
EXPORT_MODEL = "policy.onnx"
EXPORT_METADATA = "metadata.json"  # beside the model: one exported policy per folder
SWEEP_HISTORY = "study_history.png"               # inside SWEEP_FIGURES_DIR (search: optuna)
SWEEP_IMPORTANCE = "param_importance.png"         # inside SWEEP_FIGURES_DIR (search: optuna)
