"""Evaluation seeds never overlap the training seeds, nor each other (rlpipe.evaluation.seeds)."""
from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

from rlpipe.config import TrainConfig
from rlpipe.evaluation import seeds as S


def test_the_largest_num_envs_is_the_one_the_derivation_assumes():
    from dataclasses import fields

    check = next(f for f in fields(TrainConfig) if f.name == "num_envs").metadata["check"]
    check("train.num_envs", S.MAX_TRAIN_ENVS)
    with pytest.raises(ValueError):
        check("train.num_envs", S.MAX_TRAIN_ENVS + 1)


def test_trainer_seeds_its_environments_as_the_derivation_assumes():
    from rlpipe.train.trainer import Trainer

    class Env:
        def __init__(self):
            self.env = gym.make("CartPole-v1")
            self.unwrapped, self.action_space = self.env.unwrapped, self.env.action_space

        def reset(self, seed=None):
            return self.env.reset(seed=seed)

    from rlpipe.train.env_group import LocalEnvs

    trainer = Trainer.__new__(Trainer)
    trainer.group = LocalEnvs([Env() for _ in range(3)])
    trainer.seed(5)
    for i, env in enumerate(trainer.group.envs):
        fresh = gym.make("CartPole-v1")
        fresh.reset(seed=S.train_env_seed(5, i))
        assert env.unwrapped.np_random.bit_generator.state == fresh.unwrapped.np_random.bit_generator.state


@pytest.mark.parametrize("seed", [0, 1, 7, 2**32 - 1])
def test_evaluation_seeds_are_never_training_seeds_and_never_repeat(seed):
    episodes = list(range(50)) + [8982, 8983, 8984, 100_000]
    test = [S.episode_seed(seed, j, S.TEST) for j in episodes]
    validation = [S.episode_seed(seed, j, S.VALIDATION) for j in episodes]
    assert not any(S.is_training_seed(v) for v in test + validation)
    assert len(set(test + validation)) == 2 * len(episodes)
    training = [S.train_env_seed(t, i) for t in (0, 1, seed) for i in (0, 1, 1023)]
    assert all(S.is_training_seed(v) for v in training)
    assert not set(training) & set(test + validation)


def test_other_evaluation_seeds_give_other_episodes():
    a = {S.episode_seed(0, j) for j in range(1000)}
    b = {S.episode_seed(1, j) for j in range(1000)}
    assert not a & b
    np.random.default_rng(S.episode_seed(2**32 - 1, 10**6))  # numpy takes these big seeds
