"""Benchmark `export`: an exported policy on onnxruntime vs the torch agent, per decision.

For GraphDeploy at 20 and 320 nodes and CartPole (default agent widths, random weights; the
cost does not depend on the values): the latency of one greedy decision at batch 1 on one
thread, from the observation as gymnasium returns it to the action:

- onnxruntime: ``rlpipe.inference.Policy.act(obs)`` (input checks and conversion included);
- torch, dense path: the agent's collate + ``padded_logits`` + argmax with the dense kernels
  forced at every size (what the export traces); torch, default path: the agent as training
  runs it (CSR kernels above 32 nodes). Flat policies: collate + actor + argmax.

Each path runs over the same observations (a warm-up decision, then interleaved repetitions;
median of the repetitions' mean latency), timed as this process's CPU time (the machine is
shared; CPU time is what other jobs disturb least) and as wall time. Also: the export's time (trace + serialize, median)
and the file's size.

    python bench/run.py --only export [--quick]
"""
from __future__ import annotations

import time

import numpy as np
from bench_common import Check, Result, median, say

NAME = "export"
TITLE = "export: ONNX policy on onnxruntime vs torch, latency per decision at batch 1"
CASES = (("rlpipe/GraphDeploy-v0", {"num_nodes": 20}, "GraphDeploy, 20 nodes"),
         ("rlpipe/GraphDeploy-v0", {"num_nodes": 320}, "GraphDeploy, 320 nodes"),
         ("CartPole-v1", {}, "CartPole-v1"))


def _per_decision(fn, observations) -> tuple[float, float]:
    """(CPU, wall) seconds per decision over ``observations``."""
    fn(observations[0])
    cpu, wall = time.process_time(), time.perf_counter()
    for o in observations:
        fn(o)
    return ((time.process_time() - cpu) / len(observations),
            (time.perf_counter() - wall) / len(observations))


def measure(env_id: str, kwargs: dict, decisions: int, reps: int) -> dict:
    import gymnasium as gym
    import onnxruntime as ort
    import torch
    from bench_common import params_from_dict, project_params_dict

    from rlpipe.agents.policy import build_agent
    from rlpipe.deploy.onnx_export import to_onnx
    from rlpipe.deploy.parity import collect_observations
    from rlpipe.deploy.space_codec import space_to_json
    from rlpipe.envs import register
    from rlpipe.inference import Policy

    torch.set_num_threads(1)
    register()
    env = gym.make(env_id, **kwargs)
    agent = build_agent(env.observation_space, env.action_space,
                        params_from_dict(project_params_dict()).agent)
    agent.actor.eval()
    exports = []
    for _ in range(3):
        t = time.perf_counter()
        model = to_onnx(agent)
        exports.append(time.perf_counter() - t)
    options = ort.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    policy = Policy(ort.InferenceSession(model, options, providers=["CPUExecutionProvider"]),
                    {"observation_space": space_to_json(env.observation_space),
                     "action_space": space_to_json(env.action_space), "policy": {"kind": agent.kind}})
    observations = collect_observations(env, decisions, seed=0)

    def torch_act(dense: bool):
        if agent.kind == "graph":
            agent.dense_max_nodes = 1 << 20 if dense else default_max

            def act(o):
                with torch.no_grad():
                    return int(agent.actor.padded_logits(agent.collate([o]), -1e30).argmax())
            return act

        def act(o):
            with torch.no_grad():
                return int(agent.actor(agent.collate([agent.observations.encode(o)])).argmax())
        return act

    default_max = getattr(agent, "dense_max_nodes", 0)
    paths = {"onnxruntime": policy.act, "torch dense": torch_act(True)}
    if agent.kind == "graph":
        paths["torch default"] = torch_act(False)
    times = {name: [] for name in paths}
    walls = {name: [] for name in paths}
    for rep in range(reps):   # interleaved: the machine's load hits every path alike
        for name, fn in (paths.items() if rep % 2 == 0 else reversed(paths.items())):
            if name == "torch default":
                agent.dense_max_nodes = default_max
            elif name == "torch dense":
                agent.dense_max_nodes = 1 << 20
            cpu, wall = _per_decision(fn, observations)
            times[name].append(cpu)
            walls[name].append(wall)
    env.close()
    nodes = observations[0].nodes.shape[0] if agent.kind == "graph" else None
    edges = float(np.mean([len(o.edge_links) for o in observations])) if nodes else None
    return {"latency_us": {k: median(v) * 1e6 for k, v in times.items()},
            "wall_us": {k: median(v) * 1e6 for k, v in walls.items()}, "export_s": median(exports),
            "size_kib": len(model) / 1024, "nodes": nodes, "edges": edges}


def run(res: Result, quick: bool) -> None:
    import os

    decisions, reps = (20, 2) if quick else (200, 5)
    rows = []
    for env_id, kwargs, label in CASES:
        if quick and kwargs.get("num_nodes") == 320:
            kwargs = {"num_nodes": 40}
            label = "GraphDeploy, 40 nodes (quick)"
        n = decisions // 4 if kwargs.get("num_nodes", 0) > 100 else decisions
        row = measure(env_id, kwargs, n, reps)
        row["label"], row["decisions"] = label, n
        lat = row["latency_us"]
        say(f"  [export] {label}: " + ", ".join(f"{k} {v:.0f} us CPU" for k, v in lat.items())
            + f"; export {row['export_s']:.2f} s, {row['size_kib']:.0f} KiB")
        rows.append(row)
        ratio = lat["torch dense"] / lat["onnxruntime"]
        res.checks.append(Check(f"{label}: torch dense / onnxruntime CPU per decision", ratio, ">= 1.0x",
                                ratio >= 1.0, "{:.2f}x"))
    res.body += [
        ("Default agent widths (GAT 2 layers x 4 heads x 32; MLP 64-64), random weights; one "
         "decision = observation as gymnasium returns it -> greedy action, batch 1, one thread "
         "(`torch.set_num_threads(1)`, onnxruntime `intra_op_num_threads=1`); "
         f"{reps} interleaved repetitions over the same observations, median of each repetition's "
         f"mean (load average at the start {os.getloadavg()[0]:.2f})."),
        "",
        ("| case | decisions | onnxruntime CPU (wall) us | torch dense CPU (wall) us | torch default "
         "path CPU (wall) us | torch dense / onnxruntime (CPU) | export time (s) | file size (KiB) |"),
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lat = r["latency_us"]

        def cell(k: str, r=r) -> str:
            return f"{r['latency_us'][k]:.0f} ({r['wall_us'][k]:.0f})" if k in r["latency_us"] else "(same as dense)"
        shape = f" ({r['edges']:.0f} edges)" if r["edges"] else ""
        res.body.append(f"| {r['label']}{shape} | {r['decisions']} | {cell('onnxruntime')} | "
                        f"{cell('torch dense')} | {cell('torch default')} | "
                        f"{lat['torch dense'] / lat['onnxruntime']:.2f}x | {r['export_s']:.2f} | "
                        f"{r['size_kib']:.0f} |")
