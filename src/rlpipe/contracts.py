"""The leading columns of the train stage's CSV logs (and of the Parquet tables made from them).

One definition for the writer (hooks), the reader (summarize) and the plots; the full contract
is docs/FILES.md. Imports nothing heavy, so every stage can use it cheaply.
"""
import re
from typing import Sequence

EPISODE_COLUMNS = (
    "Episode", "Immediate Reward", "Cumulative Reward", "Actor Loss", "Critic Loss",
    "Policy Entropy", "Episode Length", "Mean Episode Reward", "Deployment Accuracy",
)
UPDATE_COLUMNS = (
    "Update", "Global Step", "Episode", "Actor Loss", "Critic Loss", "Policy Entropy", "Approx KL",
    "Clip Fraction", "Explained Variance", "Learning Rate", "Actor Grad Norm", "Critic Grad Norm",
    "Skipped",
)
#: eval/episodes.csv (the evaluate stage), then Reference Accuracy and the environment's metrics
EVAL_EPISODE_COLUMNS = ("Variant", "Policy", "Episode", "Seed", "Return", "Length")
#: training_output/eval.csv (evaluation during training), then Reference Accuracy and metric means
EVAL_DURING_TRAINING_COLUMNS = ("Episode", "Global Step", "Update", "Episodes", "Mean Return",
                                "Return SD", "Best Mean Return")
STEP_COLUMNS = (
    "Episode", "Step", "Global Step", "Action", "Reward", "Value", "Log Prob", "Entropy",
    "Oracle Action", "Feasible",
)


# metric column names as JSON keys (metrics.json of summarize, live/metrics.json of train)
def snake_case(name: str) -> str:
    """``"Acceptance Rate"`` -> ``"acceptance_rate"``; ``"Latency (ms)"`` -> ``"latency_ms"``."""
    s = re.sub(r"[^0-9A-Za-z]+", "_", name).strip("_").lower()
    return s or "metric"


def performance_keys(names: Sequence[str]) -> dict[str, str]:
    """Column name -> unique snake_case key (``_2``, ``_3``... on a collision)."""
    keys: dict[str, str] = {}
    used: set[str] = set()
    for name in names:
        key = base = snake_case(name)
        i = 2
        while key in used:
            key, i = f"{base}_{i}", i + 1
        used.add(key)
        keys[name] = key
    return keys
