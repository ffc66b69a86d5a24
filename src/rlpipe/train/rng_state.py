"""Every random generator of a run, saved and restored in one place.

A run draws from four kinds of generators: Python's ``random``, numpy's legacy global generator,
torch's CPU generator (action sampling, minibatch order) and each environment's own
``np_random``. :func:`capture` turns them into tensors and plain containers (checkpoints load with
``torch.load(weights_only=True)``) and :func:`restore` puts them back. An environment's generator
travels as a JSON string, so environment worker processes can report and accept it too.
"""
from __future__ import annotations

import json
import random
from typing import Any, Sequence

import numpy as np
import torch

from rlpipe.evaluation.seeds import train_env_seed


def seed_globals(seed: int) -> None:
    """Seed Python's, numpy's and torch's global generators for a fresh run."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def env_seed(seed: int, index: int) -> int:
    """The seed of training environment ``index`` (its one definition, which the evaluation's
    held-out seeds are derived around: :func:`rlpipe.evaluation.seeds.train_env_seed`)."""
    return train_env_seed(seed, index)


def env_generator_state(env) -> str:
    """An environment's ``np_random`` state as a JSON string."""
    state = env.unwrapped.np_random.bit_generator.state
    return json.dumps(state, default=lambda o: o.tolist() if hasattr(o, "tolist") else str(o))


def set_env_generator_state(env, blob: str) -> None:
    """Restore a state made by :func:`env_generator_state`."""
    state = json.loads(blob)
    bitgen = env.unwrapped.np_random.bit_generator
    if "key" in state.get("state", {}):          # MT19937 keeps its key as an array
        state["state"]["key"] = np.asarray(state["state"]["key"], dtype=np.uint32)
    bitgen.state = state


def capture(env_states: Sequence[str]) -> dict[str, Any]:
    """The global generators' states and the environments' (as :func:`env_generator_state`
    made them), as a checkpoint's ``rng`` entry."""
    py_state = random.getstate()
    np_state = np.random.get_state()
    return {
        "python": [py_state[0], list(py_state[1]), py_state[2]],
        "numpy": [np_state[0], torch.from_numpy(np_state[1].astype(np.int64)),
                  int(np_state[2]), int(np_state[3]), float(np_state[4])],
        "torch": torch.get_rng_state(),
        "envs": list(env_states),
    }


def restore(rng: dict[str, Any]) -> list[str]:
    """Restore the global generators from a checkpoint's ``rng`` entry; returns the
    environments' states for the caller to hand to its environments."""
    py = rng["python"]
    random.setstate((py[0], tuple(py[1]), py[2]))
    npst = rng["numpy"]
    np.random.set_state((npst[0], npst[1].numpy().astype(np.uint32), npst[2], npst[3], npst[4]))
    torch.set_rng_state(rng["torch"])
    return list(rng["envs"])
