"""Benchmark `scaling`: train time per environment step from 20 to 320 nodes, and a 320-node run.

1. For each node count N in 20, 40, 80, 160, 320 a fresh child process builds the default
   params with ``env.kwargs.num_nodes = N`` (everything else as params.yaml: 8 envs, PPO 8 x 4, GAT
   2 x 4 x 32), runs one untimed iteration (8 episodes), then times 2 iterations (16 episodes:
   collection, GAE, update) of a hook-less ``Trainer``. Time per env step = loop time / env
   steps (CPU time of the child, and wall). Also: directed edges per graph (mean over 20
   resets), which kernels the batches take (dense or CSR), the child's peak RSS. Target: per-step
   time grows at most linearly with N (t(320) / t(20) <= 320 / 20), on CPU time.
2. The 16-episode run at 320 nodes: ``python stages/train.py --no-progress`` (hooks, logs,
   captures, checkpoints, imports: the whole stage) with ``env.kwargs.num_nodes: 320`` and
   ``train.episodes: 16`` in a temporary folder; wall time; target <= 120 s.

    python bench/run.py --only scaling [--quick]
"""
from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench_common import (PYTHON, QUICK_AGENT, ROOT, Result, project_params_dict, say, tool_env,
                          write_yaml)

NAME = "scaling"
TITLE = "scaling: train time per env step from 20 to 320 nodes; a 16-episode 320-node run"
SIZES = (20, 40, 80, 160, 320)
RUN_TARGET_S = 120.0


def child(num_nodes: int, quick: bool) -> dict:
    """One size, in this process: a hook-less trainer, 1 untimed + 2 timed iterations."""
    import resource

    import torch

    from bench_common import params_from_dict
    from rlpipe.hooks.base import HookList
    from rlpipe.train.run import build_components
    from rlpipe.train.trainer import Trainer

    over = {"env": {"kwargs": {"num_nodes": num_nodes}},
            "train": {"episodes": 10 ** 6, "progress_bar": False}}
    if quick:
        over.update(agent=QUICK_AGENT,
                    env={"kwargs": {"num_nodes": num_nodes, "requests_per_episode": 12}})
    params = params_from_dict(project_params_dict(over))
    torch.set_num_threads(params.train.torch_threads or torch.get_num_threads())
    torch.set_flush_denormal(True)
    torch.manual_seed(0)
    envs, agent, algorithm = build_components(params)
    trainer = Trainer(params, envs, agent, algorithm, HookList())
    trainer.seed(0)
    trainer.target_episodes = params.train.episodes
    paths = set()
    collate = agent.collate

    def spy(observations):
        batch = collate(observations)
        paths.add(agent.actor.encoder.path(batch))
        return batch

    trainer._iteration()
    agent.collate = spy
    step0, w0, c0 = trainer.global_step, time.perf_counter(), time.process_time()
    for _ in range(2):
        trainer._iteration()
    wall, cpu = time.perf_counter() - w0, time.process_time() - c0
    steps = trainer.global_step - step0
    edges = []
    for seed in range(20):
        obs, _ = envs[0].reset(seed=10_000 + seed)
        edges.append(len(obs.edge_links))
    return {"nodes": num_nodes, "steps": steps, "wall": wall, "cpu": cpu,
            "ms_per_step": 1e3 * wall / steps, "cpu_ms_per_step": 1e3 * cpu / steps,
            "edges": sum(edges) / len(edges), "paths": sorted(paths),
            "peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def run_child(num_nodes: int, quick: bool) -> dict:
    code = (f"import sys; sys.path.insert(0, {str(ROOT / 'bench')!r}); import json, bench_scaling; "
            f"print('RESULT ' + json.dumps(bench_scaling.child({num_nodes}, {quick})))")
    p = subprocess.run([PYTHON, "-c", code], cwd=ROOT, capture_output=True, text=True,
                       timeout=3600, env=tool_env())
    if p.returncode != 0:
        raise RuntimeError(f"scaling child N={num_nodes} failed:\n{p.stdout}\n{p.stderr[-3000:]}")
    line = next(l for l in p.stdout.splitlines() if l.startswith("RESULT "))
    return json.loads(line[len("RESULT "):])


def stage_run(num_nodes: int, episodes: int, quick: bool) -> float:
    over = {"env": {"kwargs": {"num_nodes": num_nodes}},
            "train": {"episodes": episodes, "progress_bar": False}}
    if quick:
        over["agent"] = QUICK_AGENT
    with tempfile.TemporaryDirectory(prefix="bench_scaling_") as tmp:
        write_yaml(Path(tmp) / "params.yaml", project_params_dict(over))
        t0 = time.perf_counter()
        p = subprocess.run([PYTHON, str(ROOT / "stages" / "train.py"), "--no-progress"], cwd=tmp,
                           capture_output=True, text=True, timeout=3600, env=tool_env())
        wall = time.perf_counter() - t0
        if p.returncode != 0:
            raise RuntimeError(f"train stage failed ({p.returncode}):\n{p.stderr[-3000:]}")
    return wall


def run(res: Result, quick: bool) -> None:
    sizes = (8, 16, 32) if quick else SIZES
    rows = []
    for n in sizes:
        r = run_child(n, quick)
        rows.append(r)
        say(f"  [scaling] N={n}: {r['ms_per_step']:.2f} ms per step ({r['steps']} steps, "
            f"{r['edges']:.0f} edges per graph, {'/'.join(r['paths'])}), peak {r['peak_mib']:.0f} MiB")
    big = sizes[-1]
    stage_s = stage_run(big, 16, quick)
    say(f"  [scaling] 16-episode stage run at {big} nodes: {stage_s:.1f} s")
    base = rows[0]
    growth = rows[-1]["cpu_ms_per_step"] / base["cpu_ms_per_step"]
    growth_wall = rows[-1]["ms_per_step"] / base["ms_per_step"]
    allowed = rows[-1]["nodes"] / base["nodes"]
    say(f"scaling: time per step x{growth:.1f} CPU, x{growth_wall:.1f} wall from {base['nodes']} to "
        f"{rows[-1]['nodes']} nodes (linear: x{allowed:.0f}); 16-episode {big}-node stage run "
        f"{stage_s:.0f} s")

    res.body += [
        "Default params except `env.kwargs.num_nodes` (8 envs, PPO 8 epochs x 4 minibatches, GAT 2 layers x 4 "
        "heads x 32), a hook-less `Trainer` in a fresh process per size: 1 untimed iteration, then 2 timed "
        "(16 episodes: collection, GAE, update); denormals flushed as training does. Edges: directed "
        "`edge_links` per graph, mean of 20 resets (bounded-degree generator: radius "
        "`edge_radius * sqrt(20 / N)` above 20 nodes). Kernels: which path the batches took (dense "
        "kernels, CSR kernels). The machine is shared: CPU time per step (this process's) is the "
        "steadier figure and the one checked; wall time is shown beside it.",
        "",
        "| nodes | CPU per env step | x vs first | wall per env step | x vs first | edges per graph | kernels | peak RSS |",
        "|---|---|---|---|---|---|---|---|",
    ]
    names = {"dense": "dense", "sparse": "CSR", "pyg": "PyG"}
    for r in rows:
        res.body.append(
            f"| {r['nodes']} | {r['cpu_ms_per_step']:.2f} ms | {r['cpu_ms_per_step'] / base['cpu_ms_per_step']:.1f} | "
            f"{r['ms_per_step']:.2f} ms | {r['ms_per_step'] / base['ms_per_step']:.1f} | {r['edges']:.0f} | "
            f"{'/'.join(names.get(p, p) for p in r['paths'])} | {r['peak_mib']:.0f} MiB |")
    res.body += [
        "",
        f"16-episode run at {big} nodes, the whole train stage (`python stages/train.py --no-progress`: "
        f"imports, probes, captures, logs, checkpoints): **{stage_s:.1f} s** wall.",
    ]
    res.check(f"CPU time per env step, {rows[-1]['nodes']} / {base['nodes']} nodes", growth,
              f"<= {allowed:.0f}x (linear)", growth <= allowed if not quick else None, "{:.1f}x")
    res.check(f"wall time per env step, {rows[-1]['nodes']} / {base['nodes']} nodes", growth_wall,
              "", None, "{:.1f}x")
    res.check(f"16-episode train stage at {big} nodes", stage_s, f"<= {RUN_TARGET_S:.0f} s",
              stage_s <= RUN_TARGET_S if not quick else None, "{:.1f} s")


if __name__ == "__main__":  # pragma: no cover - manual use: one size
    print(json.dumps(child(int(sys.argv[1]), False)))
