"""The flat agent on Box and MultiDiscrete actions: one interface, and PPO/A2C learn through it."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from gymnasium import spaces

from rlpipe.agents.algorithms import A2C, PPO, Rollout
from rlpipe.agents.distributions import DiagGaussianActions, MultiCategoricalActions
from rlpipe.agents.policy import FlatActorCritic, build_agent
from rlpipe.config import AgentConfig, TrainConfig

OBS = spaces.Box(-1.0, 1.0, (2, 3), dtype=np.float32)
BOX = spaces.Box(-2.0, 2.0, (2,), dtype=np.float32)
MULTI = spaces.MultiDiscrete([3, 2])
CFG = AgentConfig(mlp_hidden=(16,))


def observations(n, seed=0):
    return list(np.random.default_rng(seed).uniform(-1, 1, size=(n, 2, 3)).astype(np.float32))


def test_box_agent_has_a_learned_state_independent_log_std():
    agent = build_agent(OBS, BOX, AgentConfig(mlp_hidden=(16,), log_std_init=-0.5))
    assert isinstance(agent, FlatActorCritic)
    assert "log_std" in agent.actor.state_dict()
    assert torch.equal(agent.actor.log_std.data, torch.full((2,), -0.5))
    assert any(p is agent.actor.log_std for p in agent.actor.parameters())
    batch = agent.collate(agent.preprocess(observations(4)))
    assert batch.shape == (4, 6)
    dist = agent.distribution(batch)
    assert isinstance(dist, DiagGaussianActions)
    assert dist.sample().shape == (4, 2) and dist.log_prob(dist.sample()).shape == (4,)
    torch.testing.assert_close(dist.std, torch.full((4, 2), float(np.exp(-0.5))))


def test_multi_discrete_agent_outputs_one_categorical_per_component():
    agent = build_agent(OBS, MULTI, CFG)
    dist = agent.distribution(agent.collate(agent.preprocess(observations(5))))
    assert isinstance(dist, MultiCategoricalActions)
    a = dist.sample()
    assert a.shape == (5, 2) and dist.log_prob(a).shape == (5,)
    assert MULTI.contains(agent.actions.to_env(a[0].numpy()))


def test_preprocess_normalizes_only_with_normalization_on():
    obs = [o * 100 + 50 for o in observations(64)]
    plain = build_agent(OBS, BOX, CFG)
    assert np.array_equal(plain.preprocess(obs, update=True)[0], obs[0].reshape(-1))
    norm = build_agent(OBS, BOX, CFG, normalize_observations=True)
    out = np.stack(norm.preprocess(obs, update=True))
    np.testing.assert_allclose(out.mean(0), 0, atol=1e-3)
    assert norm.normalizer.stats.count > 60


def test_batch_store_and_select_give_the_same_batch_as_collate():
    agent = build_agent(OBS, BOX, CFG)
    prepared = agent.preprocess(observations(10))
    store = agent.batch_store(prepared)
    idx = torch.tensor([7, 2, 5])
    assert torch.equal(agent.select(store, idx), agent.collate([prepared[i] for i in (7, 2, 5)]))
    assert torch.equal(agent.select(prepared, idx), agent.select(store, idx))


def fixed_rollout(agent, n=64, seed=0):
    """Actions sampled by the agent; advantage +1 where the first action component is 'high'."""
    prepared = agent.preprocess(observations(n, seed))
    batch = agent.collate(prepared)
    torch.manual_seed(seed)
    with torch.no_grad():
        dist = agent.distribution(batch)
        actions = dist.sample()
        logp = dist.log_prob(actions)
        values = agent.value(batch)
    first = actions[:, 0].float()
    adv = torch.where(first > first.median(), 1.0, -1.0)
    return Rollout(agent.batch_store(prepared), None, actions, logp, values, adv, adv.clone())


@pytest.mark.parametrize("space", [BOX, MULTI], ids=["box", "multi_discrete"])
@pytest.mark.parametrize("algo", [PPO, A2C])
def test_update_improves_objective_on_fixed_batch(space, algo):
    torch.manual_seed(0)
    agent = build_agent(OBS, space, CFG)
    rollout = fixed_rollout(agent)
    learner = algo(agent, TrainConfig(update_epochs=4, minibatches=2, actor_lr=3e-3, critic_lr=3e-3))

    def objective():
        with torch.no_grad():
            b = agent.select(rollout.observations, torch.arange(len(rollout)))
            lp = agent.distribution(b).log_prob(rollout.actions)
            v = agent.value(b)
        return float((lp * rollout.advantages).mean()), float(((v - rollout.returns) ** 2).mean())

    pg0, vl0 = objective()
    for _ in range(10 if algo is PPO else 40):
        stats = learner.update(rollout)
    pg1, vl1 = objective()
    assert stats["skipped"] == 0 and np.isfinite(stats["entropy"])
    assert pg1 > pg0 + 0.05 and vl1 < vl0


def test_the_update_trains_log_std():
    agent = build_agent(OBS, BOX, CFG)
    rollout = fixed_rollout(agent)
    learner = PPO(agent, TrainConfig(update_epochs=4, minibatches=1, actor_lr=1e-2))
    before = agent.actor.log_std.detach().clone()
    learner.update(rollout)
    assert not torch.equal(agent.actor.log_std.detach(), before)  # the optimizer owns log_std
