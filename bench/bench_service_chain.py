"""Benchmarks `service_chain` and `ablation_graph_deploy`: does message passing matter?

``service_chain`` (rlpipe/ServiceChain-v0, ``bench/params_service_chain.yaml``):

1. GAT-PPO (the params file: GATConv, 2 layers) and the no-message-passing ablation
   (``agent.gat_layers: 0``: a per-node MLP, same head and critic pooling) over seeds 0, 1, 2:
   ``python stages/train.py --no-progress`` in temporary folders, 2 processes at a time
   (``train.torch_threads`` 1). Final accuracy = mean *Deployment Accuracy* of the last 50 rows
   of episodes.csv (the sampled training policy); greedy accuracy of the final checkpoint on the
   training size and zero-shot on graphs twice as large (``evaluate_checkpoint``, 50 episodes,
   seed 10000). Targets: GAT >= 0.80 within 10 minutes per run, zero-shot >= 0.70, ablation at
   least 0.15 below the GAT.
2. Baselines on the same seeds: ``random``, ``reference`` (``rlpipe.evaluation.runner.evaluate``) and
   a *local greedy* heuristic that sees each node's own features only (:func:`local_greedy`).
3. Encoder choice, seed 0 only: ``agent.conv`` gatv2 and transformer, and GATConv with 3 layers,
   against the GAT run of seed 0 (same episode budget).

``ablation_graph_deploy``: the same GAT / ablation pair on rlpipe/GraphDeploy-v0 with the
project's params.yaml, seeds 0, 1, 2.

    python bench/run.py --only service_chain ablation_graph_deploy [--quick]
"""
from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
from bench_common import (BENCH, QUICK_AGENT, QUICK_ENV, Result, deep_update, load_yaml,
                          params_from_dict, project_params_dict, say)
from bench_learning import Job, pm, read_episodes, run_jobs

NAME = "service_chain"
TITLE = "service_chain: GAT-PPO vs no message passing on rlpipe/ServiceChain-v0, zero-shot 2x"
PARAMS = BENCH / "params_service_chain.yaml"
ACCURACY_TARGET, ZERO_SHOT_TARGET, GAP_TARGET, MINUTES = 0.80, 0.70, 0.15, 10.0
ABLATION = {"agent": {"gat_layers": 0}}
ENCODERS = {"gatv2": {"agent": {"conv": "gatv2"}},
            "transformer": {"agent": {"conv": "transformer"}},
            "gat-3-layers": {"agent": {"gat_layers": 3}}}
EVAL_SEED = 10_000


def local_greedy(obs) -> int:
    """A policy that judges every node by its own features only (ServiceChain columns): the
    anchor if it can host the service, else the feasible node with the most free slots (lowest
    index on ties), else node 0."""
    from rlpipe.envs.service_chain.env import COL_ANCHOR, COL_FEASIBLE, COL_FREE

    x = np.asarray(obs.nodes)
    feasible = x[:, COL_FEASIBLE] > 0.5
    anchor = int(np.argmax(x[:, COL_ANCHOR]))
    if feasible[anchor]:
        return anchor
    return int(np.argmax(np.where(feasible, x[:, COL_FREE], -1.0)))


def evaluate_local_greedy(params, episodes: int, seed: int, num_nodes: int | None = None) -> float:
    """Reference accuracy of :func:`local_greedy` (mean over episodes, as ``evaluate``)."""
    from dataclasses import replace

    from rlpipe.envs import contract
    from rlpipe.evaluation.seeds import episode_seed
    from rlpipe.train.environment import make_env

    kwargs = dict(params.env.kwargs, **({"num_nodes": num_nodes} if num_nodes else {}))
    env = make_env(replace(params.env, kwargs=kwargs))
    accs = []
    for ep in range(episodes):
        obs, _ = env.reset(seed=episode_seed(seed, ep))  # the evaluate stage's seeds
        hits, done = [], False
        while not done:
            obs, _, term, trunc, info = env.step(local_greedy(obs))
            hits.append(bool(info[contract.REFERENCE_HIT]))
            done = term or trunc
        accs.append(float(np.mean(hits)))
    env.close()
    return float(np.mean(accs))


def _one_thread() -> None:
    """Evaluate in this process on one torch thread, as the training runs do (a second thread
    beside other busy processes makes small forwards many times slower)."""
    import torch

    torch.set_num_threads(1)


def _train(jobs: list[Job]) -> float:
    t0 = time.perf_counter()
    run_jobs(jobs)
    return time.perf_counter() - t0


def _outcome(job: Job, n: int, eval_episodes: int) -> dict[str, float]:
    from rlpipe.checkpoints import list_checkpoints
    from rlpipe.evaluation.runner import evaluate_checkpoint

    rows = read_episodes(job.folder)[-50:]
    ck = list_checkpoints(job.folder / "checkpoints")[0][1]
    return {
        "final": statistics.mean(float(r["Deployment Accuracy"]) for r in rows),
        "return": statistics.mean(float(r["Cumulative Reward"]) for r in rows),
        "greedy": evaluate_checkpoint(ck, eval_episodes, EVAL_SEED, "greedy")["reference_accuracy"]["mean"],
        "zero_shot": evaluate_checkpoint(ck, eval_episodes, EVAL_SEED, "greedy",
                                         {"num_nodes": 2 * n})["reference_accuracy"]["mean"],
        "seconds": job.seconds,
    }


def _table(res: Result, n: int, rows: dict[str, list[dict[str, float]]]) -> None:
    res.body += [
        f"| policy | final accuracy (last 50 ep., sampled) | final return | greedy accuracy, {n} "
        f"nodes | zero-shot greedy accuracy, {2 * n} nodes | train time per run |",
        "|---|---|---|---|---|---|",
    ]
    for name, outs in rows.items():
        if "final" in outs[0]:
            res.body.append(
                f"| {name} | {pm([o['final'] for o in outs])} | "
                f"{pm([o['return'] for o in outs], '{:.2f}')} | {pm([o['greedy'] for o in outs])} | "
                f"{pm([o['zero_shot'] for o in outs])} | "
                f"{statistics.mean(o['seconds'] for o in outs):.0f} s |")
        else:  # a baseline: no training
            res.body.append(f"| {name} | - | - | {pm([o['greedy'] for o in outs])} | "
                            f"{pm([o['zero_shot'] for o in outs])} | - |")


def _pair_runs(tmp: Path, base: dict, seeds, prefix: str) -> list[Job]:
    jobs = []
    for seed in seeds:
        for kind, over in (("gat", {}), ("ablation", ABLATION)):
            p = deep_update(deep_update(base, over), {"train": {"seed": seed}})
            jobs.append(Job(f"{prefix}-{kind}-s{seed}", tmp / f"{prefix}-{kind}-s{seed}", p))
    return jobs


def run(res: Result, quick: bool) -> None:
    from rlpipe.evaluation.report import summarize
    from rlpipe.evaluation.runner import evaluate as play

    def evaluate(params, state, episodes, seed, policy, overrides=None):
        return summarize(play(params, state, policy, episodes, seed, overrides))

    _one_thread()
    seeds = (0,) if quick else (0, 1, 2)
    eval_episodes = 5 if quick else 50
    base = deep_update(load_yaml(PARAMS), {"train": {"progress_bar": False}})
    if quick:
        base = deep_update(base, {"train": {"episodes": 16, "num_envs": 4}, "agent": QUICK_AGENT,
                                  "env": {"kwargs": {"num_nodes": 8, "chains_per_episode": 3}}})
    params = params_from_dict(base)
    n = params.env.kwargs.get("num_nodes", 20)
    with tempfile.TemporaryDirectory(prefix="bench_service_chain_") as tmp:
        tmp = Path(tmp)
        jobs = _pair_runs(tmp, base, seeds, "sc")
        encoder_jobs = [] if quick else [
            Job(f"sc-{k}-s0", tmp / f"sc-{k}-s0", deep_update(deep_update(base, over),
                                                              {"train": {"seed": 0}}))
            for k, over in ENCODERS.items()]
        wall = _train(jobs + encoder_jobs)
        by = {j.name: j for j in jobs + encoder_jobs}
        out = {k: [_outcome(by[f"sc-{k}-s{s}"], n, eval_episodes) for s in seeds]
               for k in ("gat", "ablation")}
        enc = {k: _outcome(by[f"sc-{k}-s0"], n, eval_episodes) for k in ENCODERS if not quick}
    for k, outs in out.items():
        for s, o in zip(seeds, outs):
            say(f"  [service_chain] {k} seed {s}: final {o['final']:.3f}, greedy {o['greedy']:.3f}, "
                f"zero-shot {o['zero_shot']:.3f}, {o['seconds']:.0f} s")
    base_rows: dict[str, list[dict[str, float]]] = {"random": [], "local greedy": [], "reference": []}
    for s in seeds:
        for pol in ("random", "reference"):
            base_rows[pol].append({
                "greedy": evaluate(params, None, eval_episodes, s, pol)["reference_accuracy"]["mean"],
                "zero_shot": evaluate(params, None, eval_episodes, s, pol,
                                      {"num_nodes": 2 * n})["reference_accuracy"]["mean"]})
        base_rows["local greedy"].append({
            "greedy": evaluate_local_greedy(params, eval_episodes, s),
            "zero_shot": evaluate_local_greedy(params, eval_episodes, s, 2 * n)})

    gat_final = [o["final"] for o in out["gat"]]
    gat_greedy = [o["greedy"] for o in out["gat"]]
    abl_greedy = [o["greedy"] for o in out["ablation"]]
    zs = [o["zero_shot"] for o in out["gat"]]
    slowest = max(o["seconds"] for o in out["gat"])
    kw = params.env.kwargs
    res.body += [
        f"`bench/params_service_chain.yaml`: rlpipe/ServiceChain-v0 ({n} nodes, "
        f"{kw.get('neighbours', 3)} nearest neighbours + spanning tree, "
        f"{kw.get('chains_per_episode', 12)} chains of 3-5 services per episode), PPO, "
        f"{params.train.episodes} episodes, {params.train.num_envs} envs, lr {params.train.actor_lr:g}, "
        f"gamma {params.train.gamma:g}, agent {params.agent.gat_layers} x {params.agent.conv} layers "
        f"x {params.agent.heads} heads x {params.agent.hidden_dim}. Ablation: the same with "
        f"`agent.gat_layers: 0`. Seeds {', '.join(map(str, seeds))}; `python stages/train.py "
        f"--no-progress`, 2 at a time, `train.torch_threads` 1 (all training {wall / 60:.1f} min "
        "wall, encoder runs included). Accuracy = share of decisions in the reference set. "
        f"Greedy: the final checkpoint, {eval_episodes} episodes from seed {EVAL_SEED}, on "
        f"{n}-node graphs and zero-shot on {2 * n}-node graphs. Baselines: the same evaluation "
        "episodes per seed (`evaluate(params, None, 50, seed, ...)`); *local greedy* picks the "
        "anchor when it can host the service, else the feasible node with the most free slots: "
        "the best a policy can do from each node's own features is to pick some feasible node. "
        "Mean ± sd over seeds.",
        "",
    ]
    _table(res, n, {"GAT-PPO": out["gat"], "ablation (gat_layers 0)": out["ablation"],
                    **base_rows})
    res.body += ["", "Per seed, greedy accuracy: GAT " + ", ".join(f"{x:.3f}" for x in gat_greedy)
                 + "; ablation " + ", ".join(f"{x:.3f}" for x in abl_greedy) + "; zero-shot GAT "
                 + ", ".join(f"{x:.3f}" for x in zs) + "."]
    if enc:
        g0 = out["gat"][0]
        res.body += [
            "", f"Encoder choice (seed 0, the same {params.train.episodes} episodes):", "",
            f"| encoder | final accuracy | greedy, {n} nodes | zero-shot, {2 * n} nodes | "
            "actor parameters | train time |", "|---|---|---|---|---|---|",
            f"| gat, 2 layers (default) | {g0['final']:.3f} | {g0['greedy']:.3f} | "
            f"{g0['zero_shot']:.3f} | {_actor_size(base)} | {g0['seconds']:.0f} s |"]
        for k, o in enc.items():
            res.body.append(f"| {k} | {o['final']:.3f} | {o['greedy']:.3f} | {o['zero_shot']:.3f} "
                            f"| {_actor_size(deep_update(base, ENCODERS[k]))} | {o['seconds']:.0f} s |")
    gap = statistics.mean(gat_greedy) - statistics.mean(abl_greedy)
    m_final = statistics.mean(gat_final)
    res.check("GAT-PPO final reference accuracy (mean of seeds)", m_final,
              f">= {ACCURACY_TARGET:.2f}", None if quick else m_final >= ACCURACY_TARGET)
    res.check("slowest GAT-PPO run (minutes)", slowest / 60, f"<= {MINUTES:.0f}",
              None if quick else slowest / 60 <= MINUTES, "{:.1f}")
    res.check(f"GAT-PPO zero-shot greedy accuracy on {2 * n}-node graphs (mean of seeds)",
              statistics.mean(zs), f">= {ZERO_SHOT_TARGET:.2f}",
              None if quick else statistics.mean(zs) >= ZERO_SHOT_TARGET)
    res.check("greedy accuracy GAT minus ablation (means of seeds)", gap, f">= {GAP_TARGET:.2f}",
              None if quick else gap >= GAP_TARGET)
    res.check("ablation greedy accuracy (local greedy "
              f"{statistics.mean(o['greedy'] for o in base_rows['local greedy']):.3f})",
              pm(abl_greedy), "", None, "{}")


def _actor_size(params_dict: dict) -> int:
    from rlpipe.agents.policy import build_agent
    from rlpipe.train.environment import make_env

    params = params_from_dict(params_dict)
    env = make_env(params.env)
    agent = build_agent(env.observation_space, env.action_space, params.agent)
    return sum(p.numel() for p in agent.actor.parameters())


def run_graph_deploy(res: Result, quick: bool) -> None:
    _one_thread()
    seeds = (0,) if quick else (0, 1, 2)
    eval_episodes = 5 if quick else 50
    over = {"train": {"progress_bar": False}}
    if quick:
        over = {"train": {"progress_bar": False, "episodes": 16, "num_envs": 4},
                "env": QUICK_ENV, "agent": QUICK_AGENT}
    base = project_params_dict(over)
    params = params_from_dict(base)
    n = params.env.kwargs.get("num_nodes", 20)
    with tempfile.TemporaryDirectory(prefix="bench_ablation_gd_") as tmp:
        jobs = _pair_runs(Path(tmp), base, seeds, "gd")
        wall = _train(jobs)
        by = {j.name: j for j in jobs}
        out = {k: [_outcome(by[f"gd-{k}-s{s}"], n, eval_episodes) for s in seeds]
               for k in ("gat", "ablation")}
    res.body += [
        f"The project's params.yaml ({params.env.id}, {n} nodes, {params.train.episodes} "
        f"episodes, PPO), GAT as configured and the same with `agent.gat_layers: 0`, seeds "
        f"{', '.join(map(str, seeds))}, 2 runs at a time (all training {wall / 60:.1f} min wall); "
        f"evaluation as in `service_chain`.", ""]
    _table(res, n, {"GAT-PPO": out["gat"], "ablation (gat_layers 0)": out["ablation"]})
    gap = statistics.mean(o["greedy"] for o in out["gat"]) - \
        statistics.mean(o["greedy"] for o in out["ablation"])
    res.body += ["", f"Greedy accuracy, GAT minus ablation: {gap:+.3f}. Every GraphDeploy node's "
                 "features already hold its latency ratio, utilisation after placement and "
                 "feasibility, the terms of the oracle's cost: the best node is decidable node by "
                 "node, without message passing."]
    res.check("greedy accuracy GAT minus ablation (means of seeds)", gap, "", None)
    res.check("ablation greedy accuracy", pm([o["greedy"] for o in out["ablation"]]), "", None,
              "{}")
