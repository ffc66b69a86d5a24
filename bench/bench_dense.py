"""Benchmark `dense`: the GAT kernels against PyG's layers, where each pays off, and the floor.

1. Equivalence: the default encoder's weights, PyG's ``GATConv`` path vs the dense and CSR
   kernels on a batch of graphs of mixed sizes (padding included): largest output and
   attention difference.
2. Update forward+backward, side by side: a ``Trainer`` on the default params (no hooks, denormals
   flushed as training does) runs warm-up iterations, then for each of several measured
   iterations its rollout is replayed twice with the same minibatches (torch RNG restored):
   today's path (PyG layers, each minibatch collated from the observations) and the new one
   (the rollout collated once, minibatches selected; dense kernels at this size), alternating
   which goes first. Ratio = today / new (CPU time and wall time, medians); target >= 2.5x.
   The CSR kernels on the same rollouts are shown too.
3. Crossover: actor + critic forward+backward (the update's unit: 100 graphs) and forward at 8
   graphs (collection), dense vs CSR, on bounded-degree GraphDeploy graphs of N nodes,
   interleaved repetitions; the threshold is the largest N where dense is as fast as CSR on the
   update (within 2%).
4. Arithmetic floor: FLOPs of the two encoders' GAT layers for one default minibatch (forward
   counted from the layer's algebra, forward+backward = 3x), at the single-core sgemm rate
   measured on the minibatch's largest matmul; ratio of the measured path to it.

CPU times are this process's (``time.process_time``): the machine is shared, and CPU time is what
the other processes disturb least.

    python bench/run.py --only dense [--quick]
"""
from __future__ import annotations

import dataclasses
import time

from bench_common import Result, fmt_runs, median, say

NAME = "dense"
TITLE = "dense: GAT kernels (dense for small graphs, CSR for large) vs PyG's layers"
TARGET = 2.5


def _cpu(fn, reps: int = 1) -> float:
    t = time.process_time()
    for _ in range(reps):
        fn()
    return (time.process_time() - t) / reps


def _graphs(num_nodes: int, count: int, seed: int = 0):
    import gymnasium as gym

    import rlpipe.envs

    rlpipe.envs.register()
    env = gym.make("rlpipe/GraphDeploy-v0", num_nodes=num_nodes, num_cloud=min(2, num_nodes - 1))
    return env, [env.reset(seed=seed + k)[0] for k in range(count)]


def _set_path(agent, path: str) -> None:
    """``pyg``: PyG layers; ``csr``: CSR kernels; ``auto``: dense up to the threshold, else CSR."""
    from rlpipe.agents.dense_gat import DENSE_MAX_NODES

    agent.dense_max_nodes = DENSE_MAX_NODES if path == "auto" else (10 ** 6 if path == "dense" else 0)
    for net in (agent.actor, agent.critic):
        net.encoder.use_kernels = path != "pyg"


# --------------------------------------------------------------------------- 1. equivalence
def equivalence() -> dict[str, float]:
    import torch

    from rlpipe.agents.policy import build_agent
    from rlpipe.config import AgentConfig

    torch.manual_seed(0)
    env, _ = _graphs(20, 0)
    obs = [_graphs(n, 1, seed=n)[1][0] for n in (7, 20, 13, 31, 20, 3)]
    agent = build_agent(env.observation_space, env.action_space, AgentConfig())
    agent.actor.eval()
    out = {}
    with torch.no_grad():
        _set_path(agent, "pyg")
        ref_h, ref_att = agent.actor.embed(agent.collate(obs), return_attention=True)
        ref_v = agent.value(agent.collate(obs))
        for path in ("dense", "csr"):
            _set_path(agent, path)
            b = agent.collate(obs)
            h, att = agent.actor.embed(b, return_attention=True)
            out[f"{path} embeddings"] = float((h - ref_h).abs().max())
            out[f"{path} attention"] = max(float((a - r).abs().max()) for (_, a), (_, r) in zip(att, ref_att))
            out[f"{path} values"] = float((agent.value(b) - ref_v).abs().max())
    return out


# --------------------------------------------------------------------------- 2. update ratio
def record_rollouts(quick: bool, iters: int, warm: int):
    import torch

    from bench_throughput import make_trainer

    torch.set_flush_denormal(True)   # as rlpipe.train.run does
    params, trainer = make_trainer(quick)
    for _ in range(warm):
        trainer._iteration()
    rollouts, stored = [], []
    agent = trainer.agent
    orig, orig_store = trainer.algorithm.update, agent.batch_store

    def batch_store(observations):   # keep the observation list the rollout's batch is made of
        stored.append(list(observations))
        return orig_store(observations)

    def update(rollout):
        rollouts.append((dataclasses.replace(rollout, observations=stored[-1]),
                         torch.get_rng_state()))
        return orig(rollout)

    agent.batch_store, trainer.algorithm.update = batch_store, update
    for _ in range(iters):
        trainer._iteration()
    agent.batch_store, trainer.algorithm.update = orig_store, orig
    return params, trainer, rollouts


def replay(agent, algorithm, rollout, rng_state, path: str) -> tuple[float, float]:
    """(CPU s, wall s) of the update's forward+backward over its minibatches, by ``path``:
    ``today`` collates every minibatch and runs PyG's layers; the others collate the rollout once
    (``agent.batch_store``, timed) and select. ``rollout.observations`` is the list."""
    import torch

    _set_path(agent, "pyg" if path == "today" else path)
    saved = torch.get_rng_state()
    torch.set_rng_state(rng_state)
    agent.actor.train()
    agent.critic.train()
    cfg = algorithm.cfg
    c0, w0 = time.process_time(), time.perf_counter()
    if path != "today":
        rollout = dataclasses.replace(rollout, observations=agent.batch_store(rollout.observations))
    for idx in algorithm.minibatches_of(len(rollout)):
        pg, v, ent, _ = algorithm.losses(rollout, idx)
        (pg - cfg.ent_coef * ent + v).backward()  # the update's losses, as in algorithms.py
    cpu, wall = time.process_time() - c0, time.perf_counter() - w0
    algorithm.actor_optim.zero_grad(set_to_none=True)
    algorithm.critic_optim.zero_grad(set_to_none=True)
    torch.set_rng_state(saved)
    _set_path(agent, "auto")
    return cpu, wall


# --------------------------------------------------------------------------- 3. crossover
def crossover(sizes, reps: int, batch: int = 100) -> list[dict]:
    import torch

    from rlpipe.agents.policy import build_agent
    from rlpipe.config import AgentConfig

    rows = []
    for n in sizes:
        env, obs = _graphs(n, batch)
        torch.manual_seed(0)
        agent = build_agent(env.observation_space, env.action_space, AgentConfig())
        actions = torch.zeros(batch, dtype=torch.int64)
        batches = {}
        for path in ("dense", "csr"):
            _set_path(agent, path)
            batches[path] = agent.collate(obs)

        def fb(path, agent=agent, batches=batches, actions=actions):
            _set_path(agent, path)
            b = agent.select(batches[path], torch.arange(batch))   # fresh per-batch caches
            d = agent.distribution(b)
            (d.log_prob(actions).mean() + agent.value(b).pow(2).mean()).backward()

        def fw8(path, agent=agent, batches=batches):
            _set_path(agent, path)
            b = agent.select(batches[path], torch.arange(8))
            with torch.no_grad():
                agent.distribution(b).sample()
                agent.value(b)

        t = {("fb", p): [] for p in batches} | {("fw", p): [] for p in batches}
        for p in batches:
            fb(p), fw8(p)
        for r in range(reps):
            for p in (("dense", "csr") if r % 2 == 0 else ("csr", "dense")):
                t[("fb", p)].append(_cpu(lambda p=p: fb(p)))
                t[("fw", p)].append(_cpu(lambda p=p: fw8(p), 5))
        row = {"n": n, "edges": sum(len(o.edge_links) for o in obs) / batch}
        row.update({f"{k}_{p}": 1e3 * median(v) for (k, p), v in t.items()})
        rows.append(row)
        say(f"  [dense] crossover N={n}: update unit dense {row['fb_dense']:.1f} ms, CSR "
            f"{row['fb_csr']:.1f} ms; collection forward dense {row['fw_dense']:.2f} ms, CSR "
            f"{row['fw_csr']:.2f} ms")
    return rows


# --------------------------------------------------------------------------- 4. floor
def layer_flops(n_total: int, e_total: int, in_dim: int, heads: int, channels: int, concat: bool,
                edge_dim: int = 1) -> float:
    """Forward FLOPs of one GATConv (self-loops included in ``e_total``) from its algebra:
    projection, node and edge attention terms, softmax, aggregation, head mean, bias."""
    hc = heads * channels
    f = 2.0 * n_total * in_dim * hc             # W x
    f += 2.0 * 2 * n_total * hc                 # a_src . Wx, a_dst . Wx
    f += 2.0 * e_total * edge_dim * heads       # edge term (e . v)
    f += 6.0 * e_total * heads                  # add, leaky_relu, exp, sum, divide
    f += 2.0 * e_total * hc                     # aggregation
    f += n_total * hc * (0 if concat else 1) + n_total * (hc if concat else channels)  # mean, bias
    return f


def sgemm_rate(m: int, k: int, n: int, reps: int = 30) -> float:
    import torch

    a, b = torch.randn(m, k), torch.randn(k, n)
    for _ in range(3):
        a @ b
    best = min(_cpu(lambda: a @ b) for _ in range(reps))
    return 2.0 * m * k * n / best


def floor(params, agent, rollout, rng_state, algorithm, reps: int) -> dict:

    p = params.agent
    batch = agent.batch_store(rollout.observations)
    rollout = dataclasses.replace(rollout, observations=batch)
    idx = next(iter(algorithm.minibatches_of(len(rollout))))
    mb = agent.select(batch, idx)
    n_tot, e_plain = mb.x.shape[0], int((mb.edge_index[0] != mb.edge_index[1]).sum())
    e_tot = e_plain + n_tot
    flops, dim = 0.0, mb.x.shape[1]
    for i in range(p.gat_layers):
        last = i == p.gat_layers - 1
        flops += layer_flops(n_tot, e_tot, dim, p.heads, p.hidden_dim, not last)
        dim = p.hidden_dim if last else p.hidden_dim * p.heads
    flops_fb = 2 * 3 * flops                      # two encoders, forward + backward
    rate = sgemm_rate(n_tot, p.hidden_dim * p.heads, p.hidden_dim * p.heads)

    def encoders():
        b = agent.select(batch, idx)
        for net in (agent.actor, agent.critic):
            net.encoder.forward_dense(b.dense).sum().backward()

    def whole():
        pg, v, ent, _ = algorithm.losses(rollout, idx)
        (pg + v).backward()

    encoders(), whole()
    t_enc = median(_cpu(encoders) for _ in range(reps))
    t_all = median(_cpu(whole) for _ in range(reps))
    algorithm.actor_optim.zero_grad(set_to_none=True)
    algorithm.critic_optim.zero_grad(set_to_none=True)
    return {"nodes": n_tot, "edges": e_tot, "graphs": len(idx), "flops": flops_fb, "rate": rate,
            "floor": flops_fb / rate, "encoders": t_enc, "minibatch": t_all}


# --------------------------------------------------------------------------- run
def run(res: Result, quick: bool) -> None:
    import os

    from rlpipe.agents.dense_gat import DENSE_MAX_NODES

    eq = equivalence()
    say("  [dense] equivalence: " + ", ".join(f"{k} {v:.1e}" for k, v in eq.items()))

    warm, iters = (1, 1) if quick else (10, 5)
    params, trainer, rollouts = record_rollouts(quick, iters, warm)
    agent, algo = trainer.agent, trainer.algorithm
    paths = ("today", "auto", "csr")
    cpu = {p: [] for p in paths}
    wall = {p: [] for p in paths}
    ratios = []
    for i, (rollout, rng) in enumerate(rollouts):
        for rep in range(1 if quick else 2):
            order = paths if (i + rep) % 2 == 0 else paths[::-1]
            got = {p: replay(agent, algo, rollout, rng, p) for p in order}
            for p in paths:
                cpu[p].append(got[p][0])
                wall[p].append(got[p][1])
            ratios.append(got["today"][0] / got["auto"][0])
        say(f"  [dense] rollout {i + 1} ({len(rollout)} samples): today {cpu['today'][-1]:.3f} s, "
            f"new {cpu['auto'][-1]:.3f} s, CSR {cpu['csr'][-1]:.3f} s CPU")
    ratio = median(cpu["today"]) / median(cpu["auto"])
    ratio_wall = median(wall["today"]) / median(wall["auto"])

    sizes = (8, 12) if quick else (12, 16, 20, 24, 28, 32, 40, 48, 64)
    rows = crossover(sizes, 2 if quick else 5)
    tie = 1.02   # within 2%: as fast
    dense_wins = [r["n"] for r in rows if r["fb_dense"] <= tie * r["fb_csr"]]
    measured = max(dense_wins) if dense_wins else 0
    first_loss = next((r["n"] for r in rows if r["fb_dense"] > tie * r["fb_csr"]), None)

    fl = floor(params, agent, *rollouts[-1], algo, 3 if quick else 9)
    say(f"dense: update forward+backward today / new = {ratio:.2f}x CPU, {ratio_wall:.2f}x wall "
        f"(target >= {TARGET}x: {'PASS' if ratio >= TARGET else 'MISSED'}); dense as fast as CSR on the update "
        f"up to N = {measured} (threshold in code {DENSE_MAX_NODES}); encoders {fl['encoders'] / fl['floor']:.1f}x "
        f"their arithmetic floor")

    p = params
    res.body += [
        f"Default params ({p.env.kwargs['num_nodes']}-node graphs, {p.train.num_envs} envs, PPO {p.train.update_epochs} "
        f"epochs x {p.train.minibatches} minibatches, GAT {p.agent.gat_layers} layers x {p.agent.heads} heads "
        f"x {p.agent.hidden_dim}), `torch_threads` 1, denormals flushed (as training runs). Times are this "
        "process's CPU time (`time.process_time`) unless said; the machine is shared "
        f"(load average at the start {os.getloadavg()[0]:.2f}).",
        "",
        "**Equivalence** (default encoder, random weights, 6 graphs of 2-31 nodes padded in one batch; "
        "largest absolute difference to PyG's `GATConv` path): "
        + ", ".join(f"{k} {v:.1e}" for k, v in eq.items()) + ".",
        "",
        f"**Update forward+backward per iteration** ({warm} warm-up iterations, then {iters} rollouts, "
        "each replayed with the same minibatches by every path, alternating order):",
        "",
        f"- today (PyG `GATConv`, every minibatch collated from the observations): "
        f"{fmt_runs(cpu['today'], '{:.3f}')} s (median {median(cpu['today']):.3f} s; wall median "
        f"{median(wall['today']):.3f} s)",
        f"- new (rollout collated once, minibatches selected; dense kernels at {p.env.kwargs['num_nodes']} nodes): "
        f"{fmt_runs(cpu['auto'], '{:.3f}')} s (median {median(cpu['auto']):.3f} s; wall median "
        f"{median(wall['auto']):.3f} s)",
        f"- CSR kernels on the same rollouts (for scale): median {median(cpu['csr']):.3f} s",
        f"- today / new: **{ratio:.2f}x** CPU (per-replay ratios {fmt_runs(ratios, '{:.2f}')}), "
        f"{ratio_wall:.2f}x wall",
        "",
        "**Crossover** (bounded-degree GraphDeploy graphs; update unit = actor + critic forward+backward "
        "on 100 graphs, collection = forward on 8 graphs; medians, ms CPU):",
        "",
        "| nodes | edges per graph | update unit dense | update unit CSR | dense / CSR | collection dense | collection CSR |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        res.body.append(f"| {r['n']} | {r['edges']:.0f} | {r['fb_dense']:.1f} | {r['fb_csr']:.1f} | "
                        f"{r['fb_dense'] / r['fb_csr']:.2f} | {r['fw_dense']:.2f} | {r['fw_csr']:.2f} |")
    res.body += [
        "",
        f"Dense is at least as fast as CSR (within 2%) on the update up to {measured} nodes"
        + (f" and slower from {first_loss}" if first_loss else "")
        + "; the update is ~90% of training, so the threshold follows it (the collection forward "
        f"favours dense a little further): `DENSE_MAX_NODES = {DENSE_MAX_NODES}` "
        "(src/rlpipe/agents/dense_gat.py). Larger graphs take the CSR kernels.",
        "",
        f"**Arithmetic floor** (one default minibatch: {fl['graphs']} graphs, {fl['nodes']} nodes, "
        f"{fl['edges']} attention edges with self-loops): the two encoders' GAT layers need "
        f"{fl['flops'] / 1e6:.0f} MFLOP forward+backward (forward from the layer's algebra, x3); "
        f"single-core sgemm measured at {fl['rate'] / 1e9:.1f} GFLOP/s on [{fl['nodes']}, 128] x [128, 128] "
        f"gives a floor of {1e3 * fl['floor']:.2f} ms. Measured: the two encoders' forward+backward "
        f"{1e3 * fl['encoders']:.2f} ms (**{fl['encoders'] / fl['floor']:.1f}x** the floor); the whole "
        f"minibatch (heads, distribution, losses, select) {1e3 * fl['minibatch']:.2f} ms "
        f"({fl['minibatch'] / fl['floor']:.1f}x).",
    ]
    res.check("update fwd+bwd per iteration, today / new (CPU, median)", ratio, f">= {TARGET}x",
              ratio >= TARGET if not quick else None, "{:.2f}x")
    res.check("same, wall time", ratio_wall, "", None, "{:.2f}x")
    res.check("largest N where dense is as fast as CSR on the update, within 2% (code threshold "
              f"{DENSE_MAX_NODES})", measured, "", None, "{:d}")
    res.check("encoders fwd+bwd / arithmetic floor", fl["encoders"] / fl["floor"], "", None, "{:.1f}x")
    res.check("max |dense - PyG| (embeddings, attention, values)",
              max(v for k, v in eq.items() if k.startswith("dense")), "<= 1e-5",
              max(v for k, v in eq.items() if k.startswith("dense")) <= 1e-5, "{:.1e}")
    res.check("max |CSR - PyG| (embeddings, attention, values)",
              max(v for k, v in eq.items() if k.startswith("csr")), "<= 1e-5",
              max(v for k, v in eq.items() if k.startswith("csr")) <= 1e-5, "{:.1e}")
