"""The environment contract: what an environment may offer rlpipe beyond the gymnasium API.

Every part is optional and has a stated fallback, so any gymnasium environment trains; the
trainer, the hooks, summarize, the plots and ``rlpipe evaluate`` read environments only through
this module. The full text, with examples, is ``docs/ENVIRONMENTS.md``.

Read from ``env.unwrapped``:

=========================  ==================================================  ====================
attribute / info key       what                                                fallback
=========================  ==================================================  ====================
``metric_names``           episode performance metrics (tuple of names); the   no metric columns
                           episode's values in ``info["metrics"]`` (name ->
                           float) on its last step
``step_summary_names``     per-step numbers for ``steps.csv`` (tuple of        no summary columns
                           names); values in ``info["step_summary"]``
``has_reference``          True when every step's info holds                   empty *Deployment
                           ``info["reference_hit"]`` (bool: the action was in  Accuracy*, empty
                           the reference decision set),                        ``Oracle Action`` /
                           ``info["reference_action"]`` (int: one action of    ``Feasible``
                           that set, the lowest) and optionally
                           ``info["valid"]`` (bool: the action was feasible)
``info["reference_next"]``  after reset and every step: bool [n_actions], the    ``--policy reference``
                           reference set of the *next* decision                 of ``rlpipe evaluate``
                                                                                is refused
``probe_states(n, seed)``  fixed states for captures: a list of                the states of the
                           :class:`ProbeState`                                 captured episode
``node_kind_names``        names of node kinds (graph environments), with      one kind, "node"
``node_kinds(obs)``        an int array [N] of kind indices for an observation
``info["episode_trace"]``  on an episode's last step: a trace document          a placeholder
                           (docs/ENVIRONMENTS.md) for the animation             figure saying why
=========================  ==================================================  ====================

Environment-specific settings come from ``env.kwargs`` in params.yaml. An environment that
declares ``config_class`` (a frozen dataclass declared with :mod:`rlpipe.envs.settings`) gets
them validated before anything is written, every error naming ``env.kwargs.<key>``.

This module imports no torch: summarize and visualize use it too.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

import numpy as np

DEFAULT_NODE_KIND = "node"
REFERENCE_HIT = "reference_hit"
REFERENCE_ACTION = "reference_action"
VALID = "valid"
REFERENCE_NEXT = "reference_next"
METRICS = "metrics"
STEP_SUMMARY = "step_summary"
EPISODE_TRACE = "episode_trace"


@dataclass(frozen=True)
class ProbeState:
    """One fixed state that captures run the agent on.

    Attributes:
        obs: the observation, as the environment returns it.
        reference: bool [N] (graph) marking the reference decision set, or None.
        node_kinds: int [N] kind index of every node (graph), or None for one kind.
        node_values: named float arrays [N] to colour nodes by (e.g. {"utilization": ...}).
    """

    obs: Any
    reference: np.ndarray | None = None
    node_kinds: np.ndarray | None = None
    node_values: Mapping[str, np.ndarray] = field(default_factory=dict)


@dataclass(frozen=True)
class EnvDescription:
    """What an environment declares, read once at the start of a run (plain values only)."""

    metric_names: tuple[str, ...] = ()
    step_summary_names: tuple[str, ...] = ()
    has_reference: bool = False
    node_kind_names: tuple[str, ...] = (DEFAULT_NODE_KIND,)
    has_probes: bool = False


def describe(env) -> EnvDescription:
    """Read the declarations of ``env`` (a gymnasium env, wrapped or not)."""
    u = getattr(env, "unwrapped", env)
    kinds = tuple(getattr(u, "node_kind_names", ()) or ()) or (DEFAULT_NODE_KIND,)
    return EnvDescription(
        metric_names=tuple(getattr(u, "metric_names", ()) or ()),
        step_summary_names=tuple(getattr(u, "step_summary_names", ()) or ()),
        has_reference=bool(getattr(u, "has_reference", False)),
        node_kind_names=tuple(str(k) for k in kinds),
        has_probes=callable(getattr(u, "probe_states", None)),
    )


def node_kinds(env, obs, num_nodes: int) -> np.ndarray:
    """Kind index of every node of ``obs`` (int64 [N]); zeros when the env declares no kinds."""
    u = getattr(env, "unwrapped", env)
    fn = getattr(u, "node_kinds", None)
    if callable(fn):
        kinds = np.asarray(fn(obs), dtype=np.int64).reshape(-1)
        if kinds.size == num_nodes:
            return kinds
    return np.zeros(num_nodes, dtype=np.int64)


def probe_states(env, n: int, seed: int) -> list[ProbeState] | None:
    """The environment's probe states, or None when it offers none (use the fallback)."""
    u = getattr(env, "unwrapped", env)
    fn = getattr(u, "probe_states", None)
    if not callable(fn):
        return None
    states = list(fn(n, seed))
    for i, s in enumerate(states):
        if not isinstance(s, ProbeState):
            raise TypeError(f"probe_states() item {i} is a {type(s).__name__}, "
                            "expected rlpipe.envs.contract.ProbeState")
    return states


def reference_walk(env, n: int, seed: int, warmup_steps: int,
                   snapshot: Callable[[Any, dict], ProbeState]) -> list[ProbeState]:
    """Probe states for an environment with ``info["reference_next"]``: ``env`` reset with
    ``seed + i`` for ``i < n``, then ``warmup_steps`` reference decisions (the lowest action of
    the set); each probe is ``snapshot(obs, info)`` of the last state before the episode would
    end (after the reset, if it ends at once)."""
    probes = []
    for i in range(n):
        obs, info = env.reset(seed=int(seed) + i)
        state = snapshot(obs, info)
        for _ in range(warmup_steps):
            obs, _, terminated, _, info = env.step(int(np.argmax(info[REFERENCE_NEXT])))
            if terminated:  # keep the last state that still has a decision to take
                break
            state = snapshot(obs, info)
        probes.append(state)
    return probes


@dataclass
class StepReport:
    """What one step's info says under the contract (trainer side)."""

    reference_action: int = -1
    reference_hit: bool | None = None
    valid: bool | None = None
    summary: Mapping[str, float] | None = None


def read_step(info: Mapping[str, Any], has_reference: bool) -> StepReport:
    if not has_reference:
        return StepReport(summary=info.get(STEP_SUMMARY))
    valid = info.get(VALID)
    return StepReport(
        reference_action=int(info.get(REFERENCE_ACTION, -1)),
        reference_hit=bool(info.get(REFERENCE_HIT, False)),
        valid=None if valid is None else bool(valid),
        summary=info.get(STEP_SUMMARY),
    )


def episode_metrics(info: Mapping[str, Any]) -> dict[str, float]:
    return {str(k): float(v) for k, v in (info.get(METRICS) or {}).items()}


def reference_accuracy(hits: Sequence[bool]) -> float | None:
    """Share of decisions in the reference set (None when there were no reports)."""
    if not hits:
        return None
    return sum(1 for h in hits if h) / len(hits)
