"""The training environments as one group: seeded, reset and stepped by index.

:class:`LocalEnvs` steps them in the training process (``train.env_workers: 0``);
:class:`rlpipe.train.env_workers.WorkerEnvs` steps them in worker processes with the same
interface and the same results. An environment that raises is reported as :class:`EnvError`
naming its index; the collector adds the episode.
"""
from __future__ import annotations

from typing import Any, Sequence

from rlpipe.errors import RlpipeError
from rlpipe.train import rng_state

#: (observation, reward, terminated, truncated, info), as gymnasium's ``step`` returns them
StepResult = tuple


class EnvError(RlpipeError):
    """An environment raised (``phase``: "reset", "step"...), or its worker process died."""

    def __init__(self, index: int, phase: str, detail: str, worker_died: bool = False):
        super().__init__(f"environment {index}{' (its worker process)' if worker_died else ''}, "
                         f"{phase}: {detail}")
        self.index, self.phase, self.detail, self.worker_died = index, phase, detail, worker_died


def describe_exception(e: BaseException) -> str:
    return f"{type(e).__name__}: {e}"


def declared_limit(env) -> int | None:
    """The episode step limit an environment declares (gymnasium's ``spec.max_episode_steps``,
    set by its registration or by ``env.max_episode_steps``), or None."""
    spec = getattr(env, "spec", None)
    limit = getattr(spec, "max_episode_steps", None)
    return int(limit) if limit else None


class LocalEnvs:
    """Environments stepped one after the other in this process."""

    def __init__(self, envs: Sequence):
        self.envs = list(envs)
        self.template = self.envs[0]   # read for its declarations and spaces, like any of them
        self.pending: list[tuple[int, Any]] = []

    def __len__(self) -> int:
        return len(self.envs)

    def __iter__(self):                # a list of environments, too (benchmarks, tests)
        return iter(self.envs)

    def __getitem__(self, i: int):
        return self.envs[i]

    def seed(self, seed: int) -> None:
        for i, env in enumerate(self.envs):
            env.reset(seed=rng_state.env_seed(seed, i))
            env.action_space.seed(rng_state.env_seed(seed, i))

    def reset(self, indices: Sequence[int]) -> list[tuple[Any, dict]]:
        out = []
        for i in indices:
            try:
                out.append(self.envs[i].reset())
            except Exception as e:  # noqa: BLE001 - reported with its episode number
                raise EnvError(i, "reset", describe_exception(e)) from e
        return out

    def send(self, pairs: Sequence[tuple[int, Any]]) -> None:
        """Start a step of environment ``i`` with ``action`` for each ``(i, action)``;
        :meth:`receive` returns the results (in process, it steps them then)."""
        self.pending = list(pairs)

    def receive(self) -> list[StepResult]:
        pairs, self.pending = self.pending, []
        return self.step(pairs)

    def step(self, pairs: Sequence[tuple[int, Any]]) -> list[StepResult]:
        """Step environment ``i`` with ``action`` for each ``(i, action)``; results in order."""
        out = []
        for i, action in pairs:
            try:
                out.append(self.envs[i].step(action))
            except Exception as e:  # noqa: BLE001 - reported with its episode number
                raise EnvError(i, "step", describe_exception(e)) from e
        return out

    def generator_states(self) -> list[str]:
        return [rng_state.env_generator_state(env) for env in self.envs]

    def set_generator_states(self, states: Sequence[str]) -> None:
        for env, blob in zip(self.envs, states):
            rng_state.set_env_generator_state(env, blob)

    def close(self) -> None:
        for env in self.envs:
            try:
                env.close()
            except Exception:  # noqa: BLE001 - closing must not hide the run's own error
                pass
