"""Benchmark `logging`: the cost of every hook at default settings.

The same training (default params.yaml, ``--episodes`` episodes, seed 0) twice, side by side:

- hooks on: :func:`rlpipe.train.run.train` (MetricsHook with CSVs, steps.csv and TensorBoard,
  TextLogHook with the console off, CaptureHook, CheckpointHook; no progress bar), each in a fresh
  folder;
- hooks off: ``build_components`` + a ``Trainer`` with an empty ``HookList``, same seeds.

Interleaved repetitions (the order alternates), medians of wall time; target: on / off <= 1.03.
Both runs must compute the same thing (same global step and best mean reward), checked here.
Then one more hooks-on run with every hook event timed, to say where the time goes.

    python bench/run.py --only logging [--quick]
"""
from __future__ import annotations

import json
import tempfile
import time
from collections import defaultdict
from pathlib import Path

from bench_common import (QUICK_AGENT, QUICK_ENV, Result, fmt_runs, median, params_from_dict,
                          project_params_dict, say)

NAME = "logging"
TITLE = "logging: training with every hook on vs hooks off"
TARGET = 1.03


def make_params(episodes: int, quick: bool):
    over = {"train": {"episodes": episodes, "seed": 0, "progress_bar": False}}
    if quick:
        over.update(env=QUICK_ENV, agent=QUICK_AGENT)
    return params_from_dict(project_params_dict(over))


def run_with_hooks(params, workdir: Path) -> tuple[float, float, dict]:
    from rlpipe.train.run import train

    t0, c0 = time.perf_counter(), time.process_time()
    code = train(params, workdir, console=False)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    if code != 0:
        raise RuntimeError(f"train() returned {code}")
    info = json.loads((workdir / params.experiment.directory / "run.json").read_text())
    return wall, cpu, info


def run_without_hooks(params) -> tuple[float, float, dict]:
    import torch

    from rlpipe.config import fingerprint, params_digest
    from rlpipe.events import RunInfo
    from rlpipe.hooks.base import HookList
    from rlpipe.train.run import build_components
    from rlpipe.train.trainer import Trainer

    seed = params.train.seed
    t0, c0 = time.perf_counter(), time.process_time()
    if params.train.torch_threads:
        torch.set_num_threads(params.train.torch_threads)
    torch.manual_seed(seed)
    envs, agent, algorithm = build_components(params)
    trainer = Trainer(params, envs, agent, algorithm, HookList())
    trainer.seed(seed)
    run = RunInfo(
        params=params, root=Path("."), fingerprint=fingerprint(params),
        params_digest=params_digest(params), start_episode=0,
        target_episodes=params.train.episodes, resumed_from=None, restart_reason=None,
        env=trainer.env_description, agent_kind=agent.kind)
    result = trainer.run(run)
    for env in envs:
        env.close()
    return time.perf_counter() - t0, time.process_time() - c0, result


def hook_profile(params, workdir: Path) -> tuple[float, dict[str, float]]:
    """One hooks-on run with every (hook, event) call timed: (wall, {hook.event: seconds})."""
    from rlpipe.hooks import base

    spent: dict[str, float] = defaultdict(float)
    original = base.HookList._call

    def timed_call(self, hook, name, *args):
        t = time.perf_counter()
        try:
            return original(self, hook, name, *args)
        finally:
            spent[f"{type(hook).__name__}.{name}"] += time.perf_counter() - t

    base.HookList._call = timed_call
    try:
        wall, _, _ = run_with_hooks(params, workdir)
    finally:
        base.HookList._call = original
    return wall, dict(spent)


def run(res: Result, quick: bool) -> None:
    episodes = 8 if quick else 48
    reps = 1 if quick else 5
    params = make_params(episodes, quick)
    warm = make_params(8, quick)
    on_w, on_c, off_w, off_c = [], [], [], []
    with tempfile.TemporaryDirectory(prefix="bench_logging_") as tmp:
        tmp = Path(tmp)
        # warm-up (imports: TensorBoard, torch_geometric kernels), not timed
        run_with_hooks(warm, tmp / "warm")
        run_without_hooks(warm)
        infos, results = [], []
        for r in range(reps):
            order = ("on", "off") if r % 2 == 0 else ("off", "on")
            for which in order:
                if which == "on":
                    w, c, info = run_with_hooks(params, tmp / f"on{r}")
                    on_w.append(w), on_c.append(c), infos.append(info)
                else:
                    w, c, result = run_without_hooks(params)
                    off_w.append(w), off_c.append(c), results.append(result)
                say(f"  [logging] rep {r + 1} hooks {which}: {w:.2f} s wall, {c:.2f} s CPU")
        same = all(i["global_step"] == results[0].global_step for i in infos) and \
            all(r.global_step == results[0].global_step and
                r.best_mean_reward == results[0].best_mean_reward for r in results)
        profile_wall, spent = (None, {}) if quick else hook_profile(params, tmp / "profile")
    ratio = median(on_w) / median(off_w)
    cpu_ratio = median(on_c) / median(off_c)
    paired = [a / b for a, b in zip(on_w, off_w)]   # each repetition's on/off pair, side by side
    say(f"logging: hooks on / off train time ratio = {ratio:.3f}x "
        f"(target <= {TARGET}x: {'PASS' if ratio <= TARGET else 'MISSED'}); "
        f"on {median(on_w):.2f} s, off {median(off_w):.2f} s (medians of {reps}); CPU ratio {cpu_ratio:.3f}x")

    p = params
    res.body += [
        f"Training: default params.yaml ({p.env.id}, {p.env.kwargs.get('num_nodes')} nodes, "
        f"{p.env.kwargs.get('requests_per_episode')} requests/episode, {p.train.algo.upper()}, {p.train.num_envs} envs), "
        f"{episodes} episodes, seed 0, `torch_threads` {p.train.torch_threads}. Hooks on = "
        "`rlpipe.train.run.train(params, dir, console=False)`: MetricsHook (episodes/updates/steps CSVs "
        f"with an fsync per rollout, TensorBoard every {max(1, episodes // 100)} episode(s)), TextLogHook "
        f"(file only), CaptureHook (episode {episodes}), CheckpointHook (every {max(1, episodes // 10)} "
        "episodes = every rollout, plus best.pt). Hooks off = `build_components` + `Trainer(..., HookList())`. "
        f"{reps} interleaved repetitions each (order alternating), after one untimed warm-up of each.",
        "",
        f"- hooks on: {fmt_runs(on_w)} s wall (median {median(on_w):.2f} s), CPU {fmt_runs(on_c)} s",
        f"- hooks off: {fmt_runs(off_w)} s wall (median {median(off_w):.2f} s), CPU {fmt_runs(off_c)} s",
        f"- per-repetition ratios on / off (wall): {fmt_runs(paired, '{:.3f}')} (median {median(paired):.3f})",
        f"- same computation in both (global step and best mean reward equal): {'yes' if same else '**NO**'}",
    ]
    if spent:
        total = sum(spent.values())
        top = sorted(spent.items(), key=lambda kv: -kv[1])
        res.body.append(f"- where hook time goes (one extra profiled run, {profile_wall:.2f} s wall; "
                        f"all hook calls {total:.3f} s = {100 * total / profile_wall:.1f}% of it): " +
                        ", ".join(f"{k} {v * 1000:.0f} ms" for k, v in top if v >= 0.005))
        say(f"  [logging] hook time {total:.3f} s of {profile_wall:.2f} s: " +
            ", ".join(f"{k} {v * 1000:.0f} ms" for k, v in top[:6]))
        res.check("time inside hook calls / train wall time (one profiled run)", 100 * total / profile_wall,
                  "", None, "{:.1f}%")
    res.check("hooks on / off, median wall-time ratio", ratio, f"<= {TARGET}x", ratio <= TARGET, "{:.3f}x")
    res.check("hooks on / off, median of per-repetition wall ratios", median(paired), "", None, "{:.3f}x")
    res.check("hooks on / off, median CPU-time ratio", cpu_ratio, "", None, "{:.3f}x")
    res.check("same global step and best reward with and without hooks", "yes" if same else "NO", "equal", same, "{}")
