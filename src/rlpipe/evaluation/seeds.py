"""Seeds of evaluation episodes, derived so that they never overlap the training seeds.

Training seeds environment ``i`` of a run with ``train.seed = s`` as ``reset(seed=s * 10007 + i)``
(``Trainer.seed``; ``i < train.num_envs <= 1024``), and every later training episode continues
from that environment's generator. So every seed that training passes to ``reset`` has a
remainder below 1024 when divided by 10007, whatever ``train.seed`` is.

Evaluation resets every episode with a seed of its own whose remainder is 1024 or more, so it
can never be a training seed (of this run or of any other seed). Those seeds are numbered in
*lanes*: lane 0 are the episodes the ``evaluate`` stage and ``rlpipe evaluate`` report (the
held-out test episodes), lane 1 the episodes of evaluation during training (which choose
``best.pt``): the two never share an episode either, so the checkpoint that evaluation during
training picks is reported on episodes it was not picked on. Episode ``j`` (0-based) of lane
``L`` with evaluation seed ``e`` gets::

    block, r = divmod(j, 10007 - 1024)
    seed = ((e * LANES + L) * 2**20 + block) * 10007 + 1024 + r

which is unique for every (e, L, j) with j < 2**20 * 8983 (about 9.4e9 episodes). Every episode
is reset with its own seed, so an episode is the same whichever policy plays it (the checkpoints
and the baselines see the same episodes) and however many episodes are played.
"""
from __future__ import annotations

#: Trainer.seed: environment i of train.seed s is reset with seed s * TRAIN_SEED_STRIDE + i
TRAIN_SEED_STRIDE = 10_007
#: the largest train.num_envs (config.TrainConfig): training seeds have remainders below it
MAX_TRAIN_ENVS = 1024
TEST, VALIDATION = 0, 1     # lanes: the evaluate stage / rlpipe evaluate; evaluation during training
LANES = 2
_PER_BLOCK = TRAIN_SEED_STRIDE - MAX_TRAIN_ENVS
_BLOCK_BITS = 20


def train_env_seed(seed: int, env_index: int) -> int:
    """The seed ``Trainer.seed`` gives training environment ``env_index``."""
    return seed * TRAIN_SEED_STRIDE + env_index


def episode_seed(seed: int, episode: int, lane: int = TEST) -> int:
    """The reset seed of evaluation episode ``episode`` (0-based) for evaluation seed ``seed``."""
    if seed < 0 or episode < 0 or lane not in (TEST, VALIDATION):
        raise ValueError(f"bad evaluation seed {seed}, episode {episode} or lane {lane}")
    block, r = divmod(episode, _PER_BLOCK)
    if block >= 2 ** _BLOCK_BITS:
        raise ValueError(f"evaluation episode {episode} is past the last derivable seed")
    return (((seed * LANES + lane) << _BLOCK_BITS) + block) * TRAIN_SEED_STRIDE + MAX_TRAIN_ENVS + r


def is_training_seed(value: int) -> bool:
    """Whether some ``train.seed`` and environment index give this reset seed."""
    return value % TRAIN_SEED_STRIDE < MAX_TRAIN_ENVS
