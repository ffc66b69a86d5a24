"""The run statistics, in one table: the columns of the train stage's CSV logs (and of the
Parquet tables made from them), their TensorBoard / W&B tags, types and meanings.

Every consumer reads :data:`STATISTICS`: the algorithm (which update statistics it returns), the
metrics hook (CSV columns, scalar tags, int cells), the live hook and summarize (``metrics.json``
groups, ``live/losses.csv``), the Parquet types, the figures and docs/FILES.md. Adding a
statistic of the update is one :class:`Statistic` row with ``algorithm=True`` plus the line of
``agents/algorithms.py`` that computes it: it then reaches updates.csv, TensorBoard, W&B and
Parquet by itself (``summary`` also puts it in ``metrics.json``, ``live/metrics.json`` and
``live/losses.csv``). The episodes.csv header is a contract (docs/FILES.md) and stays as it is.

Not to be confused with :mod:`rlpipe.envs.contract` (what an environment may offer). Imports
nothing heavy, so every stage can use it cheaply.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Sequence


@dataclass(frozen=True)
class Statistic:
    """One run statistic."""

    key: str                  # its one name in code: the field of the event record
                              # (EpisodeRecord / UpdateRecord) or the key of the update's stats
    column: str               # CSV / Parquet column
    tag: str | None           # TensorBoard and W&B tag; None: not a scalar (an index, a flag,
                              # or, in episodes.csv, a copy of the latest update's value)
    dtype: type               # int or float (the Parquet type: int64 or float64)
    meaning: str              # one line, for docs/FILES.md
    algorithm: bool = False   # returned by the update (agents/algorithms.py), a column of updates.csv
    summary: str | None = None  # "group.name" in metrics.json (last value, "<name>_final"),
                                # live/metrics.json (latest value) and a column of live/losses.csv


STATISTICS: tuple[Statistic, ...] = (
    # -- the episode (EpisodeRecord)
    Statistic("episode", "Episode", None, int,
              "1-based episode number; in updates.csv: episodes finished so far"),
    Statistic("mean_reward", "Immediate Reward", "Reward / Instantaneous reward", float,
              "mean reward per step of the episode: Cumulative Reward / Episode Length"),
    Statistic("total_reward", "Cumulative Reward", "Reward / Total reward", float,
              "the episode's return: the sum of its rewards, undiscounted"),
    Statistic("length", "Episode Length", "Episode / Length", int, "steps in the episode"),
    Statistic("mean_episode_reward", "Mean Episode Reward", "Reward / Mean reward", float,
              "mean Cumulative Reward over the last train.summary_window episodes"),
    Statistic("accuracy", "Deployment Accuracy", "Performance / Deployment accuracy", float,
              "share of the episode's decisions in the environment's reference set (empty "
              "without one)"),
    # -- the update (UpdateRecord)
    Statistic("update", "Update", None, int, "1-based policy update number"),
    Statistic("global_step", "Global Step", "Run / Total timesteps", int,
              "environment steps collected so far (all envs)"),
    # -- the update's statistics (agents/algorithms.py), means over its minibatches
    Statistic("actor_loss", "Actor Loss", "Loss / Policy loss", float,
              "policy-gradient loss (PPO: clipped surrogate), without the entropy bonus",
              algorithm=True, summary="loss.actor"),
    Statistic("critic_loss", "Critic Loss", "Loss / Value loss", float,
              "value loss: 0.5 * mean squared error to the GAE returns (the critic's whole loss)",
              algorithm=True, summary="loss.critic"),
    Statistic("entropy", "Policy Entropy", "Policy / Entropy", float,
              "mean entropy of the policy's action distribution (nats)",
              algorithm=True, summary="policy.entropy"),
    Statistic("approx_kl", "Approx KL", "Policy / Approx KL", float,
              "approximate KL divergence of the updated policy from the rollout's (PPO; empty "
              "for A2C, whose one step leaves nothing measured after it)", algorithm=True),
    Statistic("clip_fraction", "Clip Fraction", "Policy / Clip fraction", float,
              "share of samples whose probability ratio left [1 - clip, 1 + clip] (A2C: 0)",
              algorithm=True),
    Statistic("explained_variance", "Explained Variance", "Value / Explained variance", float,
              "1 - Var(returns - values) / Var(returns) over the rollout, before the update",
              algorithm=True),
    Statistic("learning_rate", "Learning Rate", "Optim / Learning rate", float,
              "the actor's learning rate", algorithm=True),
    Statistic("actor_grad_norm", "Actor Grad Norm", "Optim / Actor grad norm", float,
              "actor gradient norm before clipping to train.max_grad_norm", algorithm=True),
    Statistic("critic_grad_norm", "Critic Grad Norm", "Optim / Critic grad norm", float,
              "critic gradient norm (of the value loss) before clipping to train.critic_max_grad_norm",
              algorithm=True),
    Statistic("skipped", "Skipped", None, int,
              "1 when the update was skipped for a NaN/inf loss (train.on_nan: skip), else 0",
              algorithm=True),
)

#: key -> :class:`Statistic`
BY_KEY: dict[str, Statistic] = {s.key: s for s in STATISTICS}
#: key -> CSV column (``COLUMN["total_reward"] == "Cumulative Reward"``)
COLUMN: dict[str, str] = {s.key: s.column for s in STATISTICS}

#: the statistics an update returns (keys of its stats dict), in updates.csv order
ALGORITHM_KEYS: tuple[str, ...] = tuple(s.key for s in STATISTICS if s.algorithm)
#: episodes.csv, in order: the first nine columns (a contract: docs/FILES.md)
EPISODE_KEYS: tuple[str, ...] = (
    "episode", "mean_reward", "total_reward", "actor_loss", "critic_loss", "entropy", "length",
    "mean_episode_reward", "accuracy",
)
#: updates.csv, in order: where the update happened, then what it returned
UPDATE_KEYS: tuple[str, ...] = ("update", "global_step", "episode", *ALGORITHM_KEYS)
#: statistics followed in metrics.json, live/metrics.json and live/losses.csv
SUMMARY_KEYS: tuple[str, ...] = tuple(s.key for s in STATISTICS if s.summary)

EPISODE_COLUMNS = tuple(COLUMN[k] for k in EPISODE_KEYS)
UPDATE_COLUMNS = tuple(COLUMN[k] for k in UPDATE_KEYS)

#: steps.csv's leading columns and their types (the rows are built in hooks/metrics.py)
STEP_TYPES: dict[str, type] = {
    "Episode": int, "Step": int, "Global Step": int, "Action": int, "Reward": float,
    "Value": float, "Log Prob": float, "Entropy": float, "Oracle Action": int, "Feasible": bool,
}
STEP_COLUMNS = tuple(STEP_TYPES)

#: eval/episodes.csv (the evaluate stage), then Reference Accuracy and the environment's metrics
EVAL_EPISODE_COLUMNS = ("Variant", "Policy", "Episode", "Seed", "Return", "Length")
#: training_output/eval.csv (evaluation during training), then Reference Accuracy and metric means
EVAL_DURING_TRAINING_COLUMNS = ("Episode", "Global Step", "Update", "Episodes", "Mean Return",
                                "Return SD", "Best Mean Return")


def column_types() -> dict[str, type]:
    """Every fixed column of episodes, updates and steps -> int, float or bool."""
    return {**{s.column: s.dtype for s in STATISTICS}, **STEP_TYPES}


def docs_table(keys: Sequence[str], of_latest_update: bool = False) -> str:
    """A Markdown table of statistics (column, TensorBoard tag, type, meaning) for docs/FILES.md;
    ``of_latest_update``: the update's statistics are copies (episodes.csv), sent with the update."""
    rows = ["| column | TensorBoard tag | type | meaning |", "|---|---|---|---|"]
    for key in keys:
        s = BY_KEY[key]
        tag, meaning = (f"`{s.tag}`" if s.tag else "-"), s.meaning
        if of_latest_update and s.algorithm:
            tag, meaning = "- (with the update)", f"of the latest update before the episode ended: {meaning}"
        rows.append(f"| {s.column} | {tag} | {s.dtype.__name__} | {meaning} |")
    return "\n".join(rows)


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
