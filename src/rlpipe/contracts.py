"""The leading columns of the train stage's CSV logs (and of the Parquet tables made from them).

One definition for the writer (hooks), the reader (summarize) and the plots; the full contract
is docs/FILES.md. Imports nothing, so every stage can use it cheaply.
"""

EPISODE_COLUMNS = (
    "Episode", "Immediate Reward", "Cumulative Reward", "Actor Loss", "Critic Loss",
    "Policy Entropy", "Episode Length", "Mean Episode Reward", "Deployment Accuracy",
)
UPDATE_COLUMNS = (
    "Update", "Global Step", "Episode", "Actor Loss", "Critic Loss", "Policy Entropy", "Approx KL",
    "Clip Fraction", "Explained Variance", "Learning Rate", "Actor Grad Norm", "Critic Grad Norm",
    "Skipped",
)
STEP_COLUMNS = (
    "Episode", "Step", "Global Step", "Action", "Reward", "Value", "Log Prob", "Entropy",
    "Oracle Action", "Feasible",
)
