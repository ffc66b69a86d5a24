"""Settings of the logging, checkpoint and capture hooks that change what is written, never what
is computed: `auto` intervals, keep_last pruning, the <= 0 'off' settings, best.pt, explicit
capture lists, and training bit-identical with every hook on or none at all."""
from __future__ import annotations

import json
import re
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from rlpipe import checkpoints as ckpt
from rlpipe.config import Params, fingerprint, params_digest
from rlpipe.events import RunInfo
from rlpipe.hooks import HookList
from rlpipe.train.run import build_components, train
from rlpipe.train.trainer import Trainer
from tests.helpers import TINY_PARAMS, deep_update, log_text, same_weights, tiny, with_env


class FastEnv(gym.Env):
    """Three steps per episode, two actions: hundreds of episodes in seconds."""

    observation_space = gym.spaces.Box(-1.0, 1.0, (2,), np.float32)
    action_space = gym.spaces.Discrete(2)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        return self.np_random.uniform(-1, 1, 2).astype(np.float32), {}

    def step(self, action):
        self.t += 1
        obs = self.np_random.uniform(-1, 1, 2).astype(np.float32)
        return obs, float(action == int(obs[0] > 0)), self.t >= 3, False, {}


gym.register("RlpipeTest/Fast-v0", entry_point=FastEnv)


def fast(**over) -> Params:
    base = with_env(deep_update(TINY_PARAMS, {
        "agent": {"mlp_hidden": [8]}, "train": {"num_envs": 8, "update_epochs": 1, "minibatches": 1},
        "capture": {"every": 0, "last": 0}}), {"id": "RlpipeTest/Fast-v0"})
    return Params.from_dict(deep_update(base, over))


def checkpoint_episodes(root: Path) -> list[int]:
    return sorted(e for e, _ in ckpt.list_checkpoints(root / "checkpoints"))


def test_auto_intervals_and_keep_last(tmp_path):
    """auto: TensorBoard every episodes // 100 = 2 episodes, a checkpoint every episodes // 10 = 20
    (first rollout end at or past each multiple); keep_last 3 prunes to the newest three."""
    p = fast(train={"episodes": 200}, experiment={"write_interval": "auto"},
             checkpoint={"interval": "auto", "keep_last": 3})
    assert train(p, tmp_path, console=False) == 0
    acc = EventAccumulator(str(tmp_path / "training_output" / "tensorboard"), size_guidance={"scalars": 0})
    acc.Reload()
    assert [e.step for e in acc.Scalars("Reward / Total reward")] == list(range(2, 201, 2))
    assert checkpoint_episodes(tmp_path) == [160, 184, 200]
    saved = re.findall(r"checkpoint saved: checkpoints/ckpt_ep(\d+)\.pt", log_text(tmp_path))
    assert [int(e) for e in saved] == [24, 40, 64, 80, 104, 120, 144, 160, 184, 200]


def test_keep_last_one_keeps_only_the_newest(tmp_path):
    assert train(fast(train={"episodes": 32}, checkpoint={"interval": 8, "keep_last": 1}),
                 tmp_path, console=False) == 0
    assert checkpoint_episodes(tmp_path) == [32]
    assert (tmp_path / "checkpoints" / "best.pt").is_file()


def test_checkpoint_interval_off_keeps_only_best_and_says_so(tmp_path):
    p = tiny(train={"episodes": 8}, checkpoint={"interval": 0})
    assert train(p, tmp_path, console=False) == 0
    assert checkpoint_episodes(tmp_path) == []
    assert sorted(x.name for x in (tmp_path / "checkpoints").iterdir()) == ["best.pt"]
    log = log_text(tmp_path)
    assert log.count("checkpoint.interval 0 <= 0: no periodic, final or stop checkpoints, only "
                     "best.pt") == 1
    # nothing to resume from: raising the budget starts afresh
    assert train(tiny(checkpoint={"interval": -5}), tmp_path, console=False) == 0
    assert log_text(tmp_path).count("run start") == 2 and "resumed from" not in log_text(tmp_path)


def test_step_log_and_write_interval_off(tmp_path):
    assert train(tiny(train={"episodes": 4}, experiment={"step_log_interval": 0, "write_interval": -1}),
                 tmp_path, console=False) == 0
    out = tmp_path / "training_output"
    assert not (out / "steps.csv").exists()
    assert not list((out / "tensorboard").glob("events.out.tfevents.*"))
    assert (out / "episodes.csv").read_text().count("\n") == 5


def test_step_log_interval_samples_steps(reference, tmp_path):
    assert train(tiny(train={"episodes": 4}, experiment={"step_log_interval": 3}), tmp_path,
                 console=False) == 0
    every = (reference / "training_output" / "steps.csv").read_text().splitlines()
    sampled = (tmp_path / "training_output" / "steps.csv").read_text().splitlines()
    assert sampled[0] == every[0]
    expected = [r for r in every[1:] if int(r.split(",")[0]) <= 4 and (int(r.split(",")[1]) - 1) % 3 == 0]
    assert sampled[1:] == expected


def test_best_pt_holds_the_weights_of_the_best_mean_reward(reference):
    """The reference run checkpoints every rollout (interval 4 = num_envs, keep_last 10): best.pt
    must equal the checkpoint of the rollout end with the highest mean episode reward."""
    rows = (reference / "training_output" / "episodes.csv").read_text().splitlines()
    header = rows[0].split(",")
    mean = {int(r.split(",")[0]): float(r.split(",")[header.index("Mean Episode Reward")])
            for r in rows[1:]}
    rollout_ends = [4, 8, 12, 16]
    best_episode = max(rollout_ends, key=lambda e: (mean[e], -e))  # the first of equal maxima
    best = ckpt.load_checkpoint(reference / "checkpoints" / "best.pt")
    assert best["episode"] == best_episode
    assert best["stats"]["best_mean_reward"] == mean[best_episode]
    same = ckpt.load_checkpoint(reference / "checkpoints" / f"ckpt_ep{best_episode:06d}.pt")
    assert same_weights(best, same)
    others = [e for e in rollout_ends if e != best_episode]
    assert not any(same_weights(best, ckpt.load_checkpoint(
        reference / "checkpoints" / f"ckpt_ep{e:06d}.pt")) for e in others)


def test_best_follows_store_separately_and_is_archived(tmp_path):
    p = tiny(train={"episodes": 8}, checkpoint={"store_separately": True})
    assert train(p, tmp_path, console=False) == 0
    best = tmp_path / "checkpoints" / "best"
    assert best.is_dir() and not (tmp_path / "checkpoints" / "best.pt").exists()
    assert {x.name for x in best.iterdir()} == {"actor.pt", "critic.pt", "actor_optim.pt",
                                                "critic_optim.pt", "state.pt"}
    assert ckpt.load_checkpoint(best)["stats"]["best_mean_reward"] > -float("inf")
    # other params: the run restarts and moves the old checkpoints, best/ included, aside
    assert train(tiny(train={"episodes": 4, "actor_lr": 0.01}), tmp_path, console=False) == 0
    (archived,) = (tmp_path / "checkpoints" / "archive").iterdir()
    assert (archived / "best").is_dir() and (tmp_path / "checkpoints" / "best.pt").is_file()


def test_explicit_capture_episodes(tmp_path):
    p = tiny(train={"episodes": 12}, capture={"episodes": [3, 9, 12, 40], "every": 0, "last": 0})
    assert train(p, tmp_path, console=False) == 0
    cap = tmp_path / "training_output" / "captures"
    index = json.loads((cap / "index.json").read_text())["captures"]
    assert [e["episode"] for e in index] == [3, 9, 12]  # 40 is past the run
    assert sorted(x.name for x in cap.iterdir()) == sorted(
        ["index.json"] + [f"ep{e:06d}_{k}" for e in (3, 9, 12)
                          for k in ("embeddings.npz", "attention.npz", "trace.json")])
    assert json.loads((cap / "ep000009_trace.json").read_text())["episode"] == 9


def bare_trainer_state(p: Params) -> dict:
    """Train with no hook at all; the trainer's final state."""
    torch.manual_seed(p.train.seed)
    envs, agent, algorithm = build_components(p)
    trainer = Trainer(p, envs, agent, algorithm, HookList())
    trainer.seed(p.train.seed)
    trainer.run(RunInfo(params=p, root=Path("."), fingerprint=fingerprint(p),
                        params_digest=params_digest(p), start_episode=0,
                        target_episodes=p.train.episodes, resumed_from=None, restart_reason=None,
                        env=trainer.env_description, agent_kind=agent.kind))
    return trainer.state_dict()


def test_training_is_bit_identical_with_every_hook_on_or_none(tmp_path):
    pytest.importorskip("wandb", reason="the W&B mirror is an optional extra (rlpipe[wandb])")
    on = tiny(train={"episodes": 8}, experiment={
        "write_interval": 1, "step_log_interval": 1, "export_rollouts": 1,
        "wandb": {"mode": "offline", "interval": 1}},
        capture={"every": 1, "last": 1}, checkpoint={"interval": 4, "store_separately": True})
    off = tiny(train={"episodes": 8}, experiment={"write_interval": 0, "step_log_interval": 0},
               capture={"every": 0, "last": 0}, checkpoint={"interval": 4})
    assert fingerprint(on) == fingerprint(off)
    assert train(on, tmp_path / "on", console=False) == 0
    assert train(off, tmp_path / "off", console=False) == 0
    a = ckpt.load_checkpoint(tmp_path / "on" / "checkpoints" / "ckpt_ep000008")
    b = ckpt.load_checkpoint(tmp_path / "off" / "checkpoints" / "ckpt_ep000008.pt")
    bare = bare_trainer_state(off)
    for other in (b, bare):
        assert same_weights(a, other)
        assert a["rng"]["python"] == other["rng"]["python"]  # no hook draws from the run's RNGs
        assert torch.equal(a["rng"]["numpy"][1], other["rng"]["numpy"][1])
        assert torch.equal(a["rng"]["torch"], other["rng"]["torch"])
        assert a["rng"]["envs"] == other["rng"]["envs"]
    assert (tmp_path / "on" / "training_output" / "episodes.csv").read_bytes() == \
        (tmp_path / "off" / "training_output" / "episodes.csv").read_bytes()
