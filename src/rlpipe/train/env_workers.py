"""Environments stepped in worker processes (``train.env_workers: N``).

Each worker builds its environments from the ``env`` params (environment ``i`` lives in worker
``i % N``) and answers commands over a pipe: reset, step, seed, and the generators' states (so a
checkpoint holds them exactly as in process). The trainer sends one message per worker per step
and then waits for all of them, so the workers step their environments in parallel; the results
are consumed in environment order, which makes a run identical to ``env_workers: 0``.

Each worker runs its numerical libraries on one thread (``OMP_NUM_THREADS``,
``OPENBLAS_NUM_THREADS``, ``MKL_NUM_THREADS`` = 1 unless the user set them): a worker steps its
environments one after the other, and the idle threads of a multi-threaded BLAS in every worker
busy-wait on the cores the other workers need (measured: 2 workers of a numpy environment took
10.4 ms per step of 8 environments with the default threads, 6.0 ms with one).

Own pipes rather than gymnasium's ``AsyncVectorEnv``: a rollout of whole episodes steps only the
environments still in an episode, graph observations do not batch into one array, and every
environment's generator state must travel; BENCHMARKS.md has the per-step cost.

A worker that dies (killed, out of memory) is reported as an
:class:`~rlpipe.train.env_group.EnvError` naming the environment it was stepping; workers are
daemons that also leave when their pipe closes, so none outlives the training process.
"""
from __future__ import annotations

import contextlib
import multiprocessing as mp
import os
import signal
import time
from multiprocessing.connection import wait
from typing import Any, Iterator, Sequence

from rlpipe.train import rng_state
from rlpipe.train.env_group import EnvError, StepResult, describe_exception


#: the thread counts a worker's numerical libraries read at import (one thread each)
WORKER_THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


#: seconds without an answer after which the workers still awaited are checked for death
DEATH_POLL_S = 0.25


def _join(proc, timeout: float) -> None:
    """``proc.join(timeout)`` that sees the exit even when a process the worker started holds
    the sentinel pipe open (``Process.join`` would wait the whole timeout): ``exitcode`` asks
    ``waitpid``."""
    deadline = time.monotonic() + timeout
    while proc.exitcode is None and time.monotonic() < deadline:
        time.sleep(0.005)


@contextlib.contextmanager
def one_thread_libraries() -> Iterator[None]:
    """Set :data:`WORKER_THREAD_VARIABLES` to 1 where the user did not, while workers start
    (a spawned process takes this process's environment); restore them afterwards."""
    added = [name for name in WORKER_THREAD_VARIABLES if name not in os.environ]
    for name in added:
        os.environ[name] = "1"
    try:
        yield
    finally:
        for name in added:
            os.environ.pop(name, None)


def _serve(conn, env_cfg, settings, indices: list[int]) -> None:
    """The worker's loop: build the environments, then answer commands until told to close or
    until the pipe closes (the training process is gone)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)    # the training process decides about stops
    import sys

    import rlpipe.envs
    from rlpipe.train.environment import make_env

    rlpipe.envs.register()
    try:
        envs = {i: make_env(env_cfg, settings) for i in indices}
    except Exception as e:  # noqa: BLE001 - one line; the training process reports the exit
        print(f"rlpipe env worker: cannot build environments {indices}: {describe_exception(e)}",
              file=sys.stderr)
        sys.exit(1)
    while True:
        try:
            cmd, arg = conn.recv()
        except (EOFError, OSError):
            break
        if cmd == "close":
            break
        try:
            conn.send(("ok", _answer(envs, cmd, arg)))
        except EnvError as e:
            conn.send(("error", (e.index, e.phase, e.detail)))
    for env in envs.values():
        try:
            env.close()
        except Exception:  # noqa: BLE001, S110 - leaving anyway
            pass


def _answer(envs: dict, cmd: str, arg: Any) -> Any:
    if cmd == "step":
        out = []
        for i, action in arg:
            try:
                out.append(envs[i].step(action))
            except Exception as e:  # noqa: BLE001 - reported with its episode number
                raise EnvError(i, "step", describe_exception(e)) from e
        return out
    if cmd == "reset":
        out = []
        for i in arg:
            try:
                out.append(envs[i].reset())
            except Exception as e:  # noqa: BLE001 - reported with its episode number
                raise EnvError(i, "reset", describe_exception(e)) from e
        return out
    if cmd == "seed":
        for i, env in envs.items():
            env.reset(seed=rng_state.env_seed(arg, i))
            env.action_space.seed(rng_state.env_seed(arg, i))
        return None
    if cmd == "rng_get":
        return {i: rng_state.env_generator_state(env) for i, env in envs.items()}
    if cmd == "rng_set":
        for i, blob in arg.items():
            rng_state.set_env_generator_state(envs[i], blob)
        return None
    raise ValueError(f"unknown command {cmd!r}")


class WorkerEnvs:
    """``n_envs`` environments in ``n_workers`` processes; the interface of
    :class:`~rlpipe.train.env_group.LocalEnvs`. ``template`` is an environment built in this
    process for its declarations and spaces (never stepped)."""

    def __init__(self, env_cfg, settings: dict, n_envs: int, n_workers: int, template):
        self.template = template
        self.n_envs = n_envs
        n_workers = max(1, min(n_workers, n_envs))
        self.owner = [i % n_workers for i in range(n_envs)]
        ctx = mp.get_context("spawn")   # no fork of a process that holds torch's threads
        self.conns, self.procs = [], []
        self.closed = False
        self.pending: Any = None
        with one_thread_libraries():
            for w in range(n_workers):
                parent, child = ctx.Pipe()
                indices = [i for i in range(n_envs) if self.owner[i] == w]
                proc = ctx.Process(target=_serve, args=(child, env_cfg, settings, indices),
                                   name=f"rlpipe-env-worker-{w}", daemon=True)
                proc.start()
                child.close()
                self.conns.append(parent)
                self.procs.append(proc)

    def __len__(self) -> int:
        return self.n_envs

    # ------------------------------------------------------------------ messaging
    def _call(self, per_worker: dict[int, Any], cmd: str, phase: str,
              first_env: dict[int, int]) -> dict[int, Any]:
        """Send ``cmd`` with each worker's argument, then gather every answer."""
        self._send(per_worker, cmd, phase, first_env)
        return self._gather(per_worker, phase, first_env)

    def _send(self, per_worker: dict[int, Any], cmd: str, phase: str,
              first_env: dict[int, int]) -> None:
        for w, arg in per_worker.items():
            try:
                self.conns[w].send((cmd, arg))
            except (BrokenPipeError, OSError):
                raise self._died(w, phase, first_env.get(w, w)) from None

    def _gather(self, per_worker: dict[int, Any], phase: str,
                first_env: dict[int, int]) -> dict[int, Any]:
        """Every answer to the command just sent. A worker's death is read from the process
        itself (``waitpid``, every :data:`DEATH_POLL_S` without an answer), not from its pipe or
        multiprocessing's sentinel: a process the environment started inherits both and may
        hold them open after the worker died."""
        answers, errors = {}, []
        waiting = set(per_worker)
        while waiting:
            ready = wait([self.conns[w] for w in waiting], timeout=DEATH_POLL_S)
            for w in list(waiting):
                if self.conns[w] in ready or self.conns[w].poll():
                    try:
                        status, value = self.conns[w].recv()
                    except (EOFError, OSError):
                        raise self._died(w, phase, first_env.get(w, w)) from None
                    waiting.discard(w)
                    if status == "ok":
                        answers[w] = value
                    else:
                        errors.append(EnvError(*value))
                elif not ready and self.procs[w].exitcode is not None:
                    raise self._died(w, phase, first_env.get(w, w))
        if errors:
            raise min(errors, key=lambda e: e.index)
        return answers

    def _died(self, w: int, phase: str, env_index: int) -> EnvError:
        proc = self.procs[w]
        _join(proc, 1.0)
        code = proc.exitcode
        how = (f"killed by {signal.Signals(-code).name}" if code is not None and code < 0
               else f"exit status {code}")
        return EnvError(env_index, phase, f"worker process {proc.pid} died ({how})",
                        worker_died=True)

    def _split(self, items: Sequence, key) -> tuple[dict[int, list], dict[int, int]]:
        per: dict[int, list] = {}
        first: dict[int, int] = {}
        for item in items:
            i = key(item)
            per.setdefault(self.owner[i], []).append(item)
            first.setdefault(self.owner[i], i)
        return per, first

    # ------------------------------------------------------------------ the group interface
    def seed(self, seed: int) -> None:
        self._call({w: seed for w in range(len(self.procs))}, "seed", "seed", {})

    def reset(self, indices: Sequence[int]) -> list[tuple[Any, dict]]:
        indices = list(indices)
        per, first = self._split(indices, lambda i: i)
        answers = {w: iter(a) for w, a in self._call(per, "reset", "reset", first).items()}
        return [next(answers[self.owner[i]]) for i in indices]

    def send(self, pairs: Sequence[tuple[int, Any]]) -> None:
        """Start a step of environment ``i`` with ``action`` for each ``(i, action)``: the
        workers step while this process goes on; :meth:`receive` returns the results."""
        per, first = self._split(pairs, lambda p: p[0])
        self.pending = (list(pairs), per, first)
        self._send(per, "step", "step", first)

    def receive(self) -> list[StepResult]:
        (pairs, per, first), self.pending = self.pending, None
        answers = {w: iter(a) for w, a in self._gather(per, "step", first).items()}
        return [next(answers[self.owner[i]]) for i, _ in pairs]

    def step(self, pairs: Sequence[tuple[int, Any]]) -> list[StepResult]:
        self.send(pairs)
        return self.receive()

    def generator_states(self) -> list[str]:
        merged: dict[int, str] = {}
        for states in self._call({w: None for w in range(len(self.procs))}, "rng_get",
                                 "generator state", {}).values():
            merged.update(states)
        return [merged[i] for i in range(self.n_envs)]

    def set_generator_states(self, states: Sequence[str]) -> None:
        per: dict[int, dict] = {}
        for i, blob in enumerate(states):
            per.setdefault(self.owner[i], {})[i] = blob
        self._call(per, "rng_set", "generator state", {})

    def pids(self) -> list[int]:
        return [p.pid for p in self.procs]

    def close(self) -> None:
        """Stop every worker (politely, then by force); safe to call more than once."""
        if self.closed:
            return
        self.closed = True
        for conn, proc in zip(self.conns, self.procs):
            if proc.is_alive():
                try:
                    conn.send(("close", None))
                except (BrokenPipeError, OSError):
                    pass
        for proc in self.procs:
            _join(proc, 2.0)
            if proc.exitcode is None:
                proc.terminate()
                _join(proc, 1.0)
            if proc.exitcode is None:
                proc.kill()
                _join(proc, 1.0)
        for conn in self.conns:
            conn.close()
        try:
            self.template.close()
        except Exception:  # noqa: BLE001, S110 - closing must not hide the run's own error
            pass
