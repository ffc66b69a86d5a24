"""A2C/PPO: GAE against a hand computation, losses fall on a fixed batch, NaN updates are undone."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
import gymnasium as gym

import rlpipe.envs

rlpipe.envs.register()
from rlpipe.agents.algorithms import A2C, PPO, Rollout
from rlpipe.train.buffer import compute_gae
from rlpipe.agents.graph import GraphBatch
from rlpipe.agents.policy import build_agent
from rlpipe.config import AgentConfig, TrainConfig
from rlpipe.statistics import ALGORITHM_KEYS


def test_gae_matches_hand_computation():
    r = np.array([1.0, 0.0, 2.0])
    v = np.array([0.5, 0.4, 0.3])
    g, lam = 0.9, 0.8
    d = [r[0] + g * v[1] - v[0], r[1] + g * v[2] - v[1], r[2] + g * 0.7 - v[2]]
    a2 = d[2]
    a1 = d[1] + g * lam * a2
    a0 = d[0] + g * lam * a1
    adv, ret = compute_gae(r, v, 0.7, g, lam)
    np.testing.assert_allclose(adv, [a0, a1, a2], rtol=1e-6)
    np.testing.assert_allclose(ret, np.array([a0, a1, a2]) + v, rtol=1e-6)


def fixed_rollout(agent, n=64, seed=0):
    env = gym.make("rlpipe/GraphDeploy-v0", num_nodes=8, num_cloud=1)
    obs, info = env.reset(seed=seed)
    rng = np.random.default_rng(seed)
    observations, actions, best = [], [], []
    for _ in range(n):
        observations.append(obs)
        a = int(rng.integers(8))
        actions.append(a)
        best.append(bool(info["oracle_best"][a]))
        obs, _, term, trunc, info = env.step(a)
        if term or trunc:
            obs, info = env.reset(seed=int(rng.integers(1000)))
    batch = agent.collate(observations)
    with torch.no_grad():
        dist = agent.distribution(batch)
        logp = dist.log_prob(torch.tensor(actions))
        values = agent.value(batch)
    adv = torch.tensor([1.0 if b else -1.0 for b in best])
    return Rollout(observations, None, torch.tensor(actions), logp, values, adv, adv.clone())


@pytest.mark.parametrize("algo", [PPO, A2C])
def test_update_improves_objective_on_fixed_batch(algo):
    torch.manual_seed(0)
    env = gym.make("rlpipe/GraphDeploy-v0", num_nodes=8, num_cloud=1)
    agent = build_agent(env.observation_space, env.action_space, AgentConfig(hidden_dim=16, heads=2))
    cfg = TrainConfig(update_epochs=4, minibatches=2, actor_lr=3e-3, critic_lr=3e-3, ent_coef=0.0)
    rollout = fixed_rollout(agent)
    learner = algo(agent, cfg)

    def objective():
        with torch.no_grad():
            b = agent.collate(rollout.observations)
            lp = agent.distribution(b).log_prob(rollout.actions)
            v = agent.value(b)
        return float((lp * rollout.advantages).mean()), float(((v - rollout.returns) ** 2).mean())

    pg0, vl0 = objective()
    for _ in range(10 if algo is PPO else 40):  # A2C: one gradient step per update
        stats = learner.update(rollout)
    pg1, vl1 = objective()
    assert stats["skipped"] == 0
    assert pg1 > pg0 + 0.05          # more probability on positively-advantaged actions
    assert vl1 < vl0                 # value loss falls
    assert tuple(stats) == ALGORITHM_KEYS   # what the statistics table says an update returns
    for k in ("actor_loss", "critic_loss", "entropy", "actor_grad_norm"):
        assert np.isfinite(stats[k])
    if algo is PPO:
        assert np.isfinite(stats["approx_kl"]) and stats["approx_kl"] != 0.0
    else:  # A2C's one step leaves no updated policy to measure a KL on: none is reported
        assert stats["approx_kl"] is None and stats["clip_fraction"] == 0.0


def test_nonfinite_loss_undoes_the_update():
    torch.manual_seed(0)
    env = gym.make("rlpipe/GraphDeploy-v0", num_nodes=8, num_cloud=1)
    agent = build_agent(env.observation_space, env.action_space, AgentConfig(hidden_dim=16, heads=2))
    learner = PPO(agent, TrainConfig(update_epochs=2, minibatches=2))
    rollout = fixed_rollout(agent)
    learner.update(rollout)  # gives the optimizers some state
    before = {k: v.clone() for k, v in agent.actor.state_dict().items()}
    opt_before = str(learner.actor_optim.state_dict()["state"][0]["exp_avg"].sum())
    rollout.returns[5] = float("nan")
    stats = learner.update(rollout)
    assert stats["skipped"] == 1 and np.isnan(stats["actor_loss"])
    for k, v in agent.actor.state_dict().items():
        assert torch.equal(v, before[k])
    assert str(learner.actor_optim.state_dict()["state"][0]["exp_avg"].sum()) == opt_before


def test_the_critic_steps_on_the_unweighted_value_loss_gradient_clipped_on_its_own():
    torch.manual_seed(0)
    env = gym.make("rlpipe/GraphDeploy-v0", num_nodes=8, num_cloud=1)
    agent = build_agent(env.observation_space, env.action_space, AgentConfig(hidden_dim=16, heads=2))
    rollout = fixed_rollout(agent)
    for max_norm in (1e6, 1e-3):  # no clipping; clipping the critic's own gradient
        learner = A2C(agent, TrainConfig(max_grad_norm=1e6, critic_max_grad_norm=max_norm))
        idx = next(iter(learner.minibatches_of(len(rollout))))   # A2C: the whole rollout
        value_loss = learner.losses(rollout, idx)[1]
        critic = list(agent.critic.parameters())
        grads = torch.autograd.grad(value_loss, critic)            # of the value loss alone
        norm = float(torch.linalg.vector_norm(torch.stack([g.norm() for g in grads])))
        before = [p.detach().clone() for p in critic]
        stats = learner.update(rollout)
        assert stats["critic_grad_norm"] == pytest.approx(norm, rel=1e-5)
        scale = min(1.0, max_norm / (norm + 1e-6))                 # clip_grad_norm_'s factor
        for p, g in zip(critic, grads):
            torch.testing.assert_close(p.grad, g * scale, rtol=1e-5, atol=1e-8)
        # Adam's first step moves each weight by about lr * sign(gradient), whatever its scale
        moved = torch.cat([(p.detach() - b).flatten() for p, b in zip(critic, before)])
        assert moved.abs().max() <= 1.01 * learner.cfg.critic_lr


@pytest.mark.parametrize("dense", [False, True])
def test_minibatches_selected_from_the_rollout_collated_once_equal_collating_each(dense):
    torch.manual_seed(0)
    env = gym.make("rlpipe/GraphDeploy-v0", num_nodes=8, num_cloud=1)
    agent = build_agent(env.observation_space, env.action_space, AgentConfig(hidden_dim=16, heads=2))
    agent.dense_max_nodes = 16 if dense else 0
    learner = PPO(agent, TrainConfig(update_epochs=1, minibatches=4))
    each = fixed_rollout(agent)                                   # observations: a list
    once = dataclasses.replace(each, observations=agent.batch_store(each.observations))
    assert isinstance(once.observations, GraphBatch)              # the rollout collated once
    for idx in learner.minibatches_of(len(each)):
        for a, b in zip(learner.losses(once, idx)[:3], learner.losses(each, idx)[:3]):
            assert torch.equal(a, b)   # the same tensors in, the same numbers out
