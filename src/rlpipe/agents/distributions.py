"""Action distributions behind one interface, so the algorithms and the trainer never branch on
the action space.

Every distribution has ``sample(generator=None)``, ``mode()``, ``log_prob(actions)`` and
``entropy()`` (both per sample, summed over action dimensions) and ``to(device)``.

- :class:`CategoricalActions`: ``Discrete`` (and the graph agent's choice of a node).
- :class:`MultiCategoricalActions`: ``MultiDiscrete``, independent categoricals per component.
- :class:`DiagGaussianActions`: ``Box``, a diagonal Gaussian whose mean comes from the network and
  whose log-std is a learned, state-independent vector.

**Clipped, not squashed.** A ``Box`` action is sampled from the Gaussian, stored and scored
(``log_prob``) *unclipped*; only the copy sent to the environment is clipped to the bounds
(:meth:`rlpipe.agents.spaces.ActionSpec.to_env`). This is what Stable-Baselines3 and CleanRL do
for PPO: the log-probability stays exact for the sample the update scores, the entropy stays the
closed-form Gaussian one (the entropy figure keeps its meaning), and the mean can sit at a bound.
A tanh-squashed Gaussian would need a change-of-variables correction, an entropy estimate instead
of a closed form, and ``atanh`` of actions near the bounds, which is numerically fragile; its
gain (no mass wasted beyond the bounds) matters little for on-policy PPO/A2C.

Sampling happens wherever the distribution's tensors are; the trainer moves a distribution to the
CPU before sampling (``to("cpu")``), so every random draw comes from the CPU generator whatever
``train.device`` is (see docs/DEVICES.md).
"""
from __future__ import annotations

import math
from typing import Sequence

import torch
from torch.distributions import Categorical

_LOG_SQRT_2PI = 0.5 * math.log(2 * math.pi)


class CategoricalActions:
    """One categorical per sample.

    Shapes:
        - logits: [B, n]; actions: int64 [B]; log_prob, entropy: [B]
    """

    def __init__(self, logits: torch.Tensor):
        self._dist = Categorical(logits=logits)

    @property
    def probs(self) -> torch.Tensor:
        return self._dist.probs

    @property
    def logits(self) -> torch.Tensor:
        return self._dist.logits

    def sample(self, generator: torch.Generator | None = None) -> torch.Tensor:
        if generator is None:
            return self._dist.sample()
        return torch.multinomial(self._dist.probs, 1, generator=generator).squeeze(-1)

    def mode(self) -> torch.Tensor:
        return self._dist.probs.argmax(-1)

    def log_prob(self, actions: torch.Tensor) -> torch.Tensor:
        return self._dist.log_prob(actions)

    def entropy(self) -> torch.Tensor:
        return self._dist.entropy()

    def to(self, device: torch.device | str) -> "CategoricalActions":
        logits = self._dist.logits
        return self if logits.device == torch.device(device) else CategoricalActions(logits.to(device))


class MultiCategoricalActions:
    """Independent categoricals, one per component of a ``MultiDiscrete`` space.

    Shapes:
        - logits: [B, sum(nvec)], split by ``nvec``; actions: int64 [B, K]; log_prob, entropy: [B]
    """

    def __init__(self, logits: torch.Tensor, nvec: Sequence[int]):
        self.nvec = tuple(int(n) for n in nvec)
        self._logits = logits
        self._parts = [Categorical(logits=part) for part in torch.split(logits, self.nvec, dim=-1)]

    def sample(self, generator: torch.Generator | None = None) -> torch.Tensor:
        if generator is None:
            return torch.stack([d.sample() for d in self._parts], dim=-1)
        return torch.stack([torch.multinomial(d.probs, 1, generator=generator).squeeze(-1)
                            for d in self._parts], dim=-1)

    def mode(self) -> torch.Tensor:
        return torch.stack([d.probs.argmax(-1) for d in self._parts], dim=-1)

    def log_prob(self, actions: torch.Tensor) -> torch.Tensor:
        return torch.stack([d.log_prob(actions[..., k]) for k, d in enumerate(self._parts)],
                           dim=-1).sum(-1)

    def entropy(self) -> torch.Tensor:
        return torch.stack([d.entropy() for d in self._parts], dim=-1).sum(-1)

    def to(self, device: torch.device | str) -> "MultiCategoricalActions":
        if self._logits.device == torch.device(device):
            return self
        return MultiCategoricalActions(self._logits.to(device), self.nvec)


class DiagGaussianActions:
    """A diagonal Gaussian with a state-independent standard deviation.

    Shapes:
        - mean: [B, D]; log_std: [D]; actions: float32 [B, D]; log_prob, entropy: [B]
    """

    def __init__(self, mean: torch.Tensor, log_std: torch.Tensor):
        self.mean = mean
        self._log_std = log_std
        self.log_std = log_std.expand_as(mean)

    @property
    def std(self) -> torch.Tensor:
        return self.log_std.exp()

    def sample(self, generator: torch.Generator | None = None) -> torch.Tensor:
        noise = torch.randn(self.mean.shape, generator=generator, dtype=self.mean.dtype,
                            device=self.mean.device)
        return self.mean + self.std * noise

    def mode(self) -> torch.Tensor:
        return self.mean

    def log_prob(self, actions: torch.Tensor) -> torch.Tensor:
        z = (actions - self.mean) / self.std
        return (-0.5 * z.pow(2) - self.log_std - _LOG_SQRT_2PI).sum(-1)

    def entropy(self) -> torch.Tensor:
        return (0.5 + _LOG_SQRT_2PI + self.log_std).sum(-1)

    def to(self, device: torch.device | str) -> "DiagGaussianActions":
        if self.mean.device == torch.device(device):
            return self
        return DiagGaussianActions(self.mean.to(device), self._log_std.to(device))
