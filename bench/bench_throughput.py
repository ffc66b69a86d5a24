"""Benchmark `throughput`: the training loop against its network floor, and batched forwards.

1. Loop vs floor. A ``Trainer`` without hooks on the default params (graph env, 8 envs, PPO);
   after warm-up iterations, each measured iteration (collect one episode on every env, GAE,
   one PPO update) records what the networks saw: every collated observation list of the
   collection and the update's rollout plus the torch RNG state (so the replay draws the same
   minibatch order). Right after the iteration the network work alone is replayed on those same
   batches: collate + actor/critic forward (+ sample, log-prob, entropy) for collection, and for
   the update the same minibatches' collate + forward + loss + backward (no optimizer step, no
   clipping). Ratio = loop time / floor time, median over iterations; target <= 1.5x.
   Environment stepping time inside the loop is measured too (it is part of the loop, not of
   the floor).
2. Batched vs per-graph forward at num_envs = 8: one ``collate`` of 8 graphs and one actor +
   critic forward, against 8 single-graph collates and forwards (no_grad, as in collection).

    python bench/run.py --only throughput [--quick]
"""
from __future__ import annotations

import time

from bench_common import (QUICK_AGENT, QUICK_ENV, Result, fmt_runs, median, params_from_dict,
                          project_params_dict, say)

NAME = "throughput"
TITLE = "throughput: train-loop time per env step vs the GAT forward+backward floor"
TARGET = 1.5


def make_trainer(quick: bool):
    import torch

    from rlpipe.hooks.base import HookList
    from rlpipe.train.run import build_components
    from rlpipe.train.trainer import Trainer

    over = {"train": {"episodes": 10**6, "seed": 0, "progress_bar": False}}
    if quick:
        over.update(env=QUICK_ENV, agent=QUICK_AGENT)
    params = params_from_dict(project_params_dict(over))
    torch.set_num_threads(params.train.torch_threads or torch.get_num_threads())
    torch.manual_seed(0)
    envs, agent, algorithm = build_components(params)
    trainer = Trainer(params, envs, agent, algorithm, HookList())
    trainer.seed(0)
    trainer.target_episodes = params.train.episodes
    return params, trainer


class Recorder:
    """Wraps agent.collate, algorithm.update and env.step of a trainer to record one iteration."""

    def __init__(self, trainer):
        self.trainer = trainer
        self.collect_batches: list[list] = []
        self.collect_masks: list = []
        self.rollout = None
        self.rng_state = None
        self.env_seconds = 0.0
        self.phase = "collect"
        agent, algo = trainer.agent, trainer.algorithm
        orig_collate, orig_update, orig_store = agent.collate, algo.update, agent.batch_store
        self.stored: list | None = None

        def collate(observations):
            if self.phase == "collect":
                self.collect_batches.append(list(observations))
            return orig_collate(observations)

        def batch_store(observations):   # the rollout kept for the update (collated once)
            self.phase = "update"
            self.stored = list(observations)
            return orig_store(observations)

        def update(rollout):
            self.phase = "update"
            self.rollout = rollout
            import torch

            self.rng_state = torch.get_rng_state()
            return orig_update(rollout)

        agent.collate = collate
        agent.batch_store = batch_store
        algo.update = update
        for env in trainer.envs:
            orig_step = env.step

            def step(action, _orig=orig_step):
                t = time.perf_counter()
                out = _orig(action)
                self.env_seconds += time.perf_counter() - t
                return out

            env.step = step

    def reset(self) -> None:
        self.collect_batches, self.rollout, self.rng_state, self.stored = [], None, None, None
        self.env_seconds = 0.0
        self.phase = "collect"


def replay_collect(agent, batches) -> tuple[float, float]:
    """(seconds of collate + forward over the collection's batches, of which collate)."""
    import torch

    from rlpipe.agents.policy import GraphActorCritic

    collate = GraphActorCritic.collate if agent.kind == "graph" else type(agent).collate
    agent.actor.eval()
    agent.critic.eval()
    t_col = 0.0
    t0 = time.perf_counter()
    for obs in batches:
        tc = time.perf_counter()
        batch = collate(agent, obs)
        t_col += time.perf_counter() - tc
        with torch.no_grad():
            dist = agent.distribution(batch, None)
            a = dist.sample()
            dist.log_prob(a)
            dist.entropy()
            agent.value(batch)
    return time.perf_counter() - t0, t_col


def replay_update(agent, algorithm, rollout, rng_state, observations=None) -> float:
    """Seconds of the update's collate + forward + loss + backward on the same minibatches
    (``observations``: the list the rollout's store was made of; storing it is timed too)."""
    import dataclasses

    import torch

    cfg = algorithm.cfg
    saved = torch.get_rng_state()
    torch.set_rng_state(rng_state)
    agent.actor.train()
    agent.critic.train()
    t0 = time.perf_counter()
    if observations is not None:
        rollout = dataclasses.replace(rollout, observations=agent.batch_store(observations))
    for idx in algorithm.minibatches_of(len(rollout)):  # the update's own minibatches and losses
        pg, v, ent, _ = algorithm.losses(rollout, idx)
        loss = pg - cfg.ent_coef * ent + v  # the update's losses, as in algorithms.py
        algorithm.actor_optim.zero_grad(set_to_none=True)
        algorithm.critic_optim.zero_grad(set_to_none=True)
        loss.backward()
    dt = time.perf_counter() - t0
    algorithm.actor_optim.zero_grad(set_to_none=True)
    algorithm.critic_optim.zero_grad(set_to_none=True)
    torch.set_rng_state(saved)
    return dt


def batched_vs_single(trainer, blocks: int, per_block: int) -> tuple[float, float]:
    """(median seconds of one batched 8-graph forward, of 8 single-graph forwards)."""
    import torch

    agent = trainer.agent
    graphs = [env.reset()[0] for env in trainer.envs]
    agent.actor.eval()
    agent.critic.eval()

    def batched():
        with torch.no_grad():
            b = agent.collate(graphs)
            agent.distribution(b).sample()
            agent.value(b)

    def single():
        with torch.no_grad():
            for g in graphs:
                b = agent.collate([g])
                agent.distribution(b).sample()
                agent.value(b)

    for fn in (batched, single):
        for _ in range(5):
            fn()
    tb, ts = [], []
    for k in range(blocks):
        for fn, out in ((batched, tb), (single, ts)) if k % 2 == 0 else ((single, ts), (batched, tb)):
            t = time.perf_counter()
            for _ in range(per_block):
                fn()
            out.append((time.perf_counter() - t) / per_block)
    return median(tb), median(ts)


def run(res: Result, quick: bool) -> None:
    warm, iters = (1, 1) if quick else (10, 7)
    params, trainer = make_trainer(quick)
    for _ in range(warm):
        trainer._iteration()
    import torch

    rec = Recorder(trainer)
    ftz_s = []
    loops, floors, ratios, per_step, env_s, col_s, upd_s, collate_s, steps_l = [], [], [], [], [], [], [], [], []
    for i in range(iters):
        rec.reset()
        step0 = trainer.global_step
        t0 = time.perf_counter()
        trainer._iteration()
        loop = time.perf_counter() - t0
        steps = trainer.global_step - step0
        c, cc = replay_collect(trainer.agent, rec.collect_batches)
        u = replay_update(trainer.agent, trainer.algorithm, rec.rollout, rec.rng_state, rec.stored)
        torch.set_flush_denormal(True)
        u_ftz = replay_update(trainer.agent, trainer.algorithm, rec.rollout, rec.rng_state,
                              rec.stored)
        torch.set_flush_denormal(False)
        ftz_s.append(u_ftz)
        loops.append(loop), floors.append(c + u), ratios.append(loop / (c + u))
        per_step.append(loop / steps), env_s.append(rec.env_seconds), col_s.append(c), upd_s.append(u)
        collate_s.append(cc), steps_l.append(steps)
        say(f"  [throughput] iteration {i + 1}: {steps} steps, loop {loop:.3f} s, floor {c + u:.3f} s "
            f"(collect fwd {c:.3f}, update fwd+bwd {u:.3f}), env.step {rec.env_seconds:.3f} s, "
            f"ratio {loop / (c + u):.2f}x")
    ratio = median(ratios)
    tb, ts = batched_vs_single(trainer, 6 if not quick else 2, 20 if not quick else 5)
    speedup = ts / tb
    say(f"throughput: loop / network floor = {ratio:.2f}x (target <= {TARGET}x: "
        f"{'PASS' if ratio <= TARGET else 'MISSED'}); {1e3 * median(per_step):.3f} ms per env step; "
        f"batched 8-graph forward {1e3 * tb:.2f} ms vs 8 single {1e3 * ts:.2f} ms: speed-up {speedup:.2f}x")

    p = params
    other = [l - f - e for l, f, e in zip(loops, floors, env_s)]
    res.body += [
        f"Default params ({p.env.kwargs.get('num_nodes')}-node graphs, {p.env.kwargs.get('requests_per_episode')} requests/episode, "
        f"{p.train.num_envs} envs, {p.train.algo.upper()} {p.train.update_epochs} epochs x "
        f"{p.train.minibatches} minibatches, GAT {p.agent.gat_layers} layers x {p.agent.heads} heads x "
        f"{p.agent.hidden_dim}), no hooks, `torch_threads` {p.train.torch_threads}; {warm} warm-up "
        f"iterations ({warm * p.train.num_envs} episodes, so the network is partly trained), then {iters} measured iterations, each replayed right after it.",
        "",
        f"- loop per iteration: {fmt_runs(loops, '{:.3f}')} s ({median(steps_l):.0f} env steps each, median)",
        f"- floor per iteration (collect forward + update forward/backward on the same batches): "
        f"{fmt_runs(floors, '{:.3f}')} s",
        f"  - collection forward (collate included): median {median(col_s):.3f} s, of which collate "
        f"{median(collate_s):.3f} s; update forward+backward: median {median(upd_s):.3f} s",
        f"- environment `step()` inside the loop: median {median(env_s):.3f} s per iteration "
        f"({100 * median(env_s) / median(loops):.0f}% of the loop); everything else (episode "
        f"records, GAE, optimizer steps, gradient clipping, the update's snapshot, Python glue): "
        f"median {median(other):.3f} s",
        f"- the same update forward+backward replayed with `torch.set_flush_denormal(True)`: median "
        f"{median(ftz_s):.3f} s vs {median(upd_s):.3f} s as the loop runs it ({median(upd_s) / median(ftz_s):.2f}x): "
        "the difference is subnormal-float arithmetic, which appears once the network is trained "
        "(measured here after the warm-up iterations; a fresh network shows none)",
        f"- time per environment step in the loop: {1e3 * median(per_step):.3f} ms",
        f"- one forward at num_envs = 8 (no_grad, actor + critic + sample): batched (one collate of 8 "
        f"graphs) {1e3 * tb:.2f} ms vs 8 separate {1e3 * ts:.2f} ms: **{speedup:.2f}x** speed-up",
    ]
    res.check("loop / network floor, median ratio", ratio, f"<= {TARGET}x", ratio <= TARGET, "{:.2f}x")
    res.check("time per env step in the loop", 1e3 * median(per_step), "", None, "{:.3f} ms")
    res.check("env.step share of the loop", 100 * median(env_s) / median(loops), "", None, "{:.0f}%")
    res.check("update fwd+bwd, as run / with denormals flushed", median(upd_s) / median(ftz_s), "", None,
              "{:.2f}x")
    res.check("batched vs per-graph forward speed-up (8 graphs)", speedup, "", None, "{:.2f}x")
