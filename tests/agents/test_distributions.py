"""Action distributions: exact log-probabilities and entropies, shapes, reproducible sampling."""
from __future__ import annotations

import math

import torch
from torch.distributions import Categorical, Normal

from rlpipe.agents.distributions import CategoricalActions, DiagGaussianActions, MultiCategoricalActions


def test_gaussian_matches_torch_normal_summed_over_dimensions():
    torch.manual_seed(0)
    mean = torch.randn(5, 3)
    log_std = torch.tensor([-0.5, 0.0, 0.7])
    d = DiagGaussianActions(mean, log_std)
    a = torch.randn(5, 3) * 3
    ref = Normal(mean, log_std.exp())
    torch.testing.assert_close(d.log_prob(a), ref.log_prob(a).sum(-1))
    torch.testing.assert_close(d.entropy(), ref.entropy().sum(-1))
    assert d.sample().shape == (5, 3) and torch.equal(d.mode(), mean)


def test_gaussian_entropy_depends_only_on_log_std():
    d = DiagGaussianActions(torch.zeros(2, 1), torch.zeros(1))
    torch.testing.assert_close(d.entropy(), torch.full((2,), 0.5 + 0.5 * math.log(2 * math.pi)))


def test_gaussian_samples_have_its_mean_and_std_and_follow_the_generator():
    d = DiagGaussianActions(torch.full((20000, 2), 1.5), torch.log(torch.tensor([0.5, 2.0])))
    g1, g2 = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    s = d.sample(g1)
    assert torch.equal(s, d.sample(g2))
    torch.testing.assert_close(s.mean(0), torch.tensor([1.5, 1.5]), atol=0.05, rtol=0)
    torch.testing.assert_close(s.std(0), torch.tensor([0.5, 2.0]), atol=0.05, rtol=0)


def test_gaussian_log_prob_is_differentiable_in_mean_and_log_std():
    mean = torch.zeros(4, 2, requires_grad=True)
    log_std = torch.zeros(2, requires_grad=True)
    DiagGaussianActions(mean, log_std).log_prob(torch.ones(4, 2)).sum().backward()
    assert mean.grad is not None and log_std.grad is not None
    assert torch.all(mean.grad > 0)  # moving the mean toward the actions raises their density


def test_multi_categorical_sums_independent_components():
    torch.manual_seed(1)
    logits = torch.randn(6, 3 + 4)
    d = MultiCategoricalActions(logits, (3, 4))
    a = d.sample()
    assert a.shape == (6, 2) and a.dtype == torch.int64
    assert bool((a[:, 0] < 3).all() and (a[:, 1] < 4).all())
    c0, c1 = Categorical(logits=logits[:, :3]), Categorical(logits=logits[:, 3:])
    torch.testing.assert_close(d.log_prob(a), c0.log_prob(a[:, 0]) + c1.log_prob(a[:, 1]))
    torch.testing.assert_close(d.entropy(), c0.entropy() + c1.entropy())
    assert torch.equal(d.mode(), torch.stack([logits[:, :3].argmax(-1), logits[:, 3:].argmax(-1)], -1))
    g1, g2 = torch.Generator().manual_seed(5), torch.Generator().manual_seed(5)
    assert torch.equal(d.sample(g1), d.sample(g2))


def test_categorical_is_torch_categorical_and_samples_the_same_stream():
    logits = torch.randn(4, 5)
    torch.manual_seed(7)
    ours = CategoricalActions(logits).sample()
    torch.manual_seed(7)
    theirs = Categorical(logits=logits).sample()
    assert torch.equal(ours, theirs)  # the default (graph) run's draws are unchanged
    d = CategoricalActions(logits)
    assert torch.equal(d.mode(), logits.argmax(-1))
    assert d.to("cpu") is d
