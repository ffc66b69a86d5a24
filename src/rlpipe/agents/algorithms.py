"""A2C and PPO updates over a rollout of whole episodes (CleanRL-style, no logging, no files).

GAE lives with the rollout buffer (:mod:`rlpipe.train.buffer`).
:class:`PPO` and :class:`A2C` take a :class:`Rollout` and return a dict of plain floats.

The statistics an update returns are the rows of :data:`rlpipe.statistics.STATISTICS` with
``algorithm=True`` (their meanings are there); a statistic an algorithm cannot measure is None
(A2C's approximate KL: its one step leaves no updated policy to compare before the update ends).

An update is transactional: if a loss or a gradient turns NaN/inf, the networks and optimizers
are restored to their state before the update and the result says ``skipped=1``; the trainer
decides whether to stop or continue (``train.on_nan``).
"""
from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from rlpipe.config import TrainConfig
from rlpipe.statistics import ALGORITHM_KEYS


@dataclass
class Rollout:
    """Transitions of one or more finished episodes, flattened.

    ``observations`` is what ``agent.batch_store`` made of the prepared observations (a list of
    graph instances, or one tensor [T, D] on the agent's device); ``agent.select`` takes a
    minibatch of it. A plain list of prepared observations works too.

    Shapes:
        - observations: T observations
        - masks: list of T boolean action masks, or None
        - actions: [T] int64 (Discrete), [T, K] int64 (MultiDiscrete), [T, D] float32 (Box)
        - log_probs, values, advantages, returns: [T]
    """

    observations: list[Any]
    masks: list[np.ndarray] | None
    actions: torch.Tensor
    log_probs: torch.Tensor
    values: torch.Tensor
    advantages: torch.Tensor
    returns: torch.Tensor

    def __len__(self) -> int:
        return len(self.observations)

    def to(self, device: torch.device) -> "Rollout":
        """The same rollout with its tensors on ``device`` (observations are the agent's)."""
        move = {name: getattr(self, name).to(device)
                for name in ("actions", "log_probs", "values", "advantages", "returns")}
        return Rollout(self.observations, self.masks, **move)


def explained_variance(values: torch.Tensor, returns: torch.Tensor) -> float:
    var = returns.var(unbiased=False)
    if var.item() == 0:
        return float("nan")
    return float(1.0 - (returns - values).var(unbiased=False) / var)


class _ActorCriticAlgorithm:
    """Shared machinery: separate actor and critic optimizers, clipping, transactional update.

    The actor and critic share no parameter, so each minimises its own loss: the actor the
    policy loss minus the entropy bonus, the critic the value loss, unweighted. A weight on the
    value loss (``vf_coef`` elsewhere) would change nothing here: Adam's step does not depend on
    a constant scale of the gradient (up to its eps), with two optimizers or one; only the
    critic's gradient-norm clip would see it. Each network's gradient is clipped on its own:
    the actor's at ``train.max_grad_norm``, the critic's at ``train.critic_max_grad_norm``.
    """

    epochs: int = 1
    minibatches: int = 1

    def __init__(self, agent, cfg: TrainConfig):
        self.agent = agent
        self.cfg = cfg
        self.actor_optim = torch.optim.Adam(agent.actor.parameters(), lr=cfg.actor_lr, eps=1e-5)
        self.critic_optim = torch.optim.Adam(agent.critic.parameters(), lr=cfg.critic_lr, eps=1e-5)

    # -- state (for checkpoints)
    def state_dict(self) -> dict[str, Any]:
        return {"actor_optim": self.actor_optim.state_dict(), "critic_optim": self.critic_optim.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.actor_optim.load_state_dict(state["actor_optim"])
        self.critic_optim.load_state_dict(state["critic_optim"])

    def _snapshot(self) -> dict[str, Any]:
        return copy.deepcopy({
            "actor": self.agent.actor.state_dict(), "critic": self.agent.critic.state_dict(),
            **self.state_dict(),
        })

    def _restore(self, snap: dict[str, Any]) -> None:
        self.agent.actor.load_state_dict(snap["actor"])
        self.agent.critic.load_state_dict(snap["critic"])
        self.load_state_dict(snap)

    def policy_loss(self, new_log_probs, old_log_probs, advantages) -> tuple[torch.Tensor, dict]:
        raise NotImplementedError

    def minibatches_of(self, n: int):
        """Index tensors of the update's minibatches, every epoch (draws from torch's RNG)."""
        mb_size = max(1, math.ceil(n / self.minibatches))
        for _ in range(self.epochs):
            order = torch.randperm(n) if self.minibatches > 1 else torch.arange(n)
            for start in range(0, n, mb_size):
                yield order[start:start + mb_size]

    def losses(self, rollout: Rollout, idx: torch.Tensor):
        """Forward pass and losses of one minibatch: (policy loss, value loss, entropy, extras)."""
        agent, cfg = self.agent, self.cfg
        batch = agent.select(rollout.observations, idx)
        masks = None if rollout.masks is None else [rollout.masks[i] for i in idx.tolist()]
        idx = idx.to(rollout.advantages.device)
        dist = agent.distribution(batch, masks)
        new_log_probs = dist.log_prob(rollout.actions[idx])
        entropy = dist.entropy().mean()
        adv = rollout.advantages[idx]
        if cfg.normalize_advantages and idx.numel() > 1:
            adv = (adv - adv.mean()) / (adv.std() + 1e-8)
        pg_loss, extra = self.policy_loss(new_log_probs, rollout.log_probs[idx], adv)
        value_loss = 0.5 * (agent.value(batch) - rollout.returns[idx]).pow(2).mean()
        return pg_loss, value_loss, entropy, extra

    def update(self, rollout: Rollout) -> dict[str, float | None]:
        """Run the update; return its statistics (:data:`~rlpipe.statistics.ALGORITHM_KEYS`:
        plain floats, ``skipped`` an int, None for what this algorithm does not measure)."""
        snapshot = self._snapshot()
        agent, cfg = self.agent, self.cfg
        agent.actor.train()
        agent.critic.train()
        sums: dict[str, float] = {}  # statistic -> sum over the minibatches
        count = 0
        for idx in self.minibatches_of(len(rollout)):
            pg_loss, value_loss, entropy, extra = self.losses(rollout, idx)
            actor_loss = pg_loss - cfg.ent_coef * entropy
            if not (torch.isfinite(actor_loss) and torch.isfinite(value_loss)):
                return self._skip(snapshot, rollout)
            self.actor_optim.zero_grad(set_to_none=True)
            self.critic_optim.zero_grad(set_to_none=True)
            # no parameter is shared, so one backward gives each network its own loss's gradient
            # (the critic's is the unscaled value loss's: a weight would change only its clip)
            (actor_loss + value_loss).backward()
            a_norm = nn.utils.clip_grad_norm_(agent.actor.parameters(), cfg.max_grad_norm)
            c_norm = nn.utils.clip_grad_norm_(agent.critic.parameters(), cfg.critic_max_grad_norm)
            if not (torch.isfinite(a_norm) and torch.isfinite(c_norm)):
                return self._skip(snapshot, rollout)
            self.actor_optim.step()
            self.critic_optim.step()
            count += 1
            minibatch = {"actor_loss": pg_loss.item(), "critic_loss": value_loss.item(),
                         "entropy": entropy.item(), **extra,
                         "actor_grad_norm": float(a_norm), "critic_grad_norm": float(c_norm)}
            for key, value in minibatch.items():
                sums[key] = sums.get(key, 0.0) + value
        stats: dict[str, Any] = dict.fromkeys(ALGORITHM_KEYS)  # None: not measured here
        stats.update({k: v / max(count, 1) for k, v in sums.items()})
        stats["explained_variance"] = explained_variance(rollout.values, rollout.returns)
        stats["learning_rate"] = float(self.actor_optim.param_groups[0]["lr"])
        stats["skipped"] = 0
        return stats

    def _skip(self, snapshot: dict[str, Any], rollout: Rollout) -> dict[str, float]:
        self._restore(snapshot)
        stats: dict[str, Any] = dict.fromkeys(ALGORITHM_KEYS, float("nan"))
        stats["explained_variance"] = explained_variance(rollout.values, rollout.returns)
        stats["learning_rate"] = float(self.actor_optim.param_groups[0]["lr"])
        stats["skipped"] = 1
        return stats


class PPO(_ActorCriticAlgorithm):
    """Proximal policy optimisation: clipped surrogate, minibatch epochs, entropy bonus."""

    def __init__(self, agent, cfg: TrainConfig):
        super().__init__(agent, cfg)
        self.epochs = cfg.update_epochs
        self.minibatches = cfg.minibatches

    def policy_loss(self, new_log_probs, old_log_probs, advantages):
        log_ratio = new_log_probs - old_log_probs
        ratio = log_ratio.exp()
        clip = self.cfg.clip_coef
        loss = torch.max(-advantages * ratio, -advantages * ratio.clamp(1 - clip, 1 + clip)).mean()
        with torch.no_grad():
            approx_kl = float(((ratio - 1) - log_ratio).mean())
            clip_fraction = float(((ratio - 1).abs() > clip).float().mean())
        return loss, {"approx_kl": approx_kl, "clip_fraction": clip_fraction}


class A2C(_ActorCriticAlgorithm):
    """Advantage actor-critic: one gradient step on the whole rollout. It reports no approximate
    KL: measured before its one step, the policy is still the rollout's (KL about 0)."""

    def policy_loss(self, new_log_probs, old_log_probs, advantages):
        loss = -(advantages * new_log_probs).mean()
        return loss, {"clip_fraction": 0.0}


ALGORITHMS = {"ppo": PPO, "a2c": A2C}


def build_algorithm(agent, cfg: TrainConfig) -> _ActorCriticAlgorithm:
    return ALGORITHMS[cfg.algo](agent, cfg)
