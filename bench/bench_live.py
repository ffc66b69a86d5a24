"""Benchmark `live`: the cost of the live progress files and the rollout export.

The same training (default params.yaml, ``--episodes`` episodes, seed 0) in three variants,
side by side, interleaved (the order rotates every repetition), each in a fresh folder:

- off: ``train()`` with the live hook and the export hook replaced by hooks that do nothing;
- default: ``train()`` as shipped: live/ rewritten after every rollout, export off (the default);
- export: the default plus ``experiment.export_rollouts: 1`` (every update's rollout to a file:
  the most the export can cost).

Medians of wall time; the target (issue 16): live files + exports at default settings cost
<= 2 % of train time. The machine is shared, so besides the wall ratios every run also times the
two hooks' own calls (time inside them / the run's wall time), which the load hardly blurs. At
the end, the live files' rewrite at their cap (1000 rows per series, a run of 1000+ episodes)
is timed against one rollout of the default run.

    python bench/run.py --only live [--quick]
"""
from __future__ import annotations

import json
import tempfile
import time
from collections import defaultdict
from pathlib import Path

from bench_common import (QUICK_AGENT, QUICK_ENV, Result, fmt_runs, median, params_from_dict,
                          project_params_dict, say)

NAME = "live"
TITLE = "live: live/ files and rollout exports vs neither"
TARGET = 1.02
VARIANTS = ("off", "default", "export")
EVENTS = ("on_train_start", "on_episode_end", "on_update", "on_rollout_end")


def make_params(episodes: int, quick: bool, export: int = 0):
    over = {"train": {"episodes": episodes, "seed": 0, "progress_bar": False},
            "experiment": {"export_rollouts": export}}
    if quick:
        over.update(env=QUICK_ENV, agent=QUICK_AGENT)
    return params_from_dict(project_params_dict(over))


class _Timed:
    """Wraps the event methods of the live and export hook classes with timers (seconds per
    class), and can swap both for hooks that do nothing."""

    def __init__(self):
        import rlpipe.train.run as run_module
        from rlpipe.hooks.export import RolloutExportHook
        from rlpipe.hooks.live import LiveHook

        self.run_module = run_module
        self.classes = {"LiveHook": LiveHook, "RolloutExportHook": RolloutExportHook}
        self.spent: dict[str, float] = defaultdict(float)
        self.originals = {(c, e): getattr(cls, e) for c, cls in self.classes.items() for e in EVENTS}
        for (c, e), fn in self.originals.items():
            setattr(self.classes[c], e, self._wrap(c, fn))

    def _wrap(self, name, fn):
        spent = self.spent

        def timed(*args, **kw):
            t = time.perf_counter()
            try:
                return fn(*args, **kw)
            finally:
                spent[name] += time.perf_counter() - t

        return timed

    def switch(self, on: bool) -> None:
        from rlpipe.hooks import Hook

        class Nothing(Hook):
            def __init__(self, *args, **kw):
                pass

        self.run_module.LiveHook = self.classes["LiveHook"] if on else Nothing
        self.run_module.RolloutExportHook = self.classes["RolloutExportHook"] if on else Nothing

    def restore(self) -> None:
        for (c, e), fn in self.originals.items():
            setattr(self.classes[c], e, fn)
        self.switch(True)


def one_run(timed: _Timed, params, workdir: Path, on: bool) -> tuple[float, float, dict]:
    from rlpipe.train.run import train

    timed.switch(on)
    timed.spent.clear()
    t0 = time.perf_counter()
    if train(params, workdir, console=False) != 0:
        raise RuntimeError("train() failed")
    wall = time.perf_counter() - t0
    info = json.loads((workdir / params.experiment.directory / "run.json").read_text())
    return wall, sum(timed.spent.values()), info


def rewrite_at_cap(reps: int = 30) -> float:
    """Median seconds of one live rewrite with both series at their cap (1000 rows)."""
    from rlpipe.hooks.live import MAX_POINTS, LiveHook

    with tempfile.TemporaryDirectory(prefix="bench_live_cap_") as tmp:
        hook = LiveHook(Path(tmp))
        for i in range(1, MAX_POINTS + 1):
            hook.reward.add((i, -1.2345678901234567 * i, 0.123456789012345 * i))
            hook.losses.add((i, 8 * i, -0.0123456789012, 0.2903008833527565, 2.0673382878))
        metrics = {"episode": 8000, "reward": {"last": 1.0, "mean": 1.0}, "loss": {"actor": 0.1}}
        times = []
        for _ in range(reps):
            t = time.perf_counter()
            hook._write(metrics)
            times.append(time.perf_counter() - t)
    return median(times)


def run(res: Result, quick: bool) -> None:
    episodes = 8 if quick else 48
    reps = 1 if quick else 3
    params = {"off": make_params(episodes, quick), "default": make_params(episodes, quick),
              "export": make_params(episodes, quick, export=1)}
    walls = {v: [] for v in VARIANTS}
    inside = {v: [] for v in VARIANTS}
    infos = {v: [] for v in VARIANTS}
    timed = _Timed()
    try:
        with tempfile.TemporaryDirectory(prefix="bench_live_") as tmp:
            tmp = Path(tmp)
            one_run(timed, make_params(8, quick), tmp / "warm", True)  # imports, kernels: untimed
            for r in range(reps):
                order = VARIANTS[r % 3:] + VARIANTS[:r % 3]
                for v in order:
                    w, spent, info = one_run(timed, params[v], tmp / f"{v}{r}", v != "off")
                    walls[v].append(w), inside[v].append(spent), infos[v].append(info)
                    say(f"  [live] rep {r + 1} {v}: {w:.2f} s wall, {spent * 1000:.0f} ms in the "
                        "live/export hooks")
            export_dir = tmp / f"export{reps - 1}" / "training_output" / "rollouts"
            export_bytes = sum(p.stat().st_size for p in export_dir.iterdir())
            export_files = len(list(export_dir.iterdir()))
            live_bytes = sum(p.stat().st_size for p in (tmp / f"default{reps - 1}" / "live").iterdir())
    finally:
        timed.restore()
    cap = rewrite_at_cap(5 if quick else 30)
    same = len({(i["global_step"], i["episodes"]) for v in VARIANTS for i in infos[v]}) == 1
    ratio = {v: median(walls[v]) / median(walls["off"]) for v in ("default", "export")}
    share = {v: median([s / w for s, w in zip(inside[v], walls[v])]) for v in ("default", "export")}
    updates = infos["default"][0]["updates"]
    per_rollout = median(walls["default"]) / max(updates, 1)
    say(f"live: default / off wall ratio = {ratio['default']:.3f}x, export / off = "
        f"{ratio['export']:.3f}x (medians of {reps}); time inside the hooks: default "
        f"{100 * share['default']:.2f}%, export {100 * share['export']:.2f}% of the run; "
        f"rewrite at the cap {cap * 1000:.1f} ms = {100 * cap / per_rollout:.2f}% of a rollout")

    p = params["default"]
    res.body += [
        f"Training: default params.yaml ({p.env.id}, {p.train.algo.upper()}, {p.train.num_envs} envs), "
        f"{episodes} episodes ({updates} rollouts), seed 0, `torch_threads` {p.train.torch_threads}, every "
        "other hook as shipped (CSVs, TensorBoard, captures, checkpoints). off = the live and export "
        "hooks replaced by hooks that do nothing; default = as shipped (live/ after every rollout, "
        "`export_rollouts: 0`); export = default + `export_rollouts: 1` (every rollout to a file, "
        f"{export_files} files, {export_bytes / 1e3:.0f} KB). {reps} interleaved repetitions "
        "(order rotating), after one untimed warm-up.",
        "",
        *(f"- {v}: {fmt_runs(walls[v])} s wall (median {median(walls[v]):.2f} s); inside the live "
          f"and export hooks {fmt_runs([1000 * s for s in inside[v]], '{:.0f}')} ms" for v in VARIANTS),
        f"- live/ after the run: {live_bytes / 1e3:.1f} KB (three files)",
        f"- one live rewrite with both series at their cap of 1000 rows (a run of 1000+ episodes): "
        f"{cap * 1000:.1f} ms (median of {5 if quick else 30}), against {per_rollout:.2f} s per "
        "rollout of the default run",
        f"- same computation in every variant (global step, episodes): {'yes' if same else '**NO**'}",
    ]
    res.check("default (live on, export off) / off, median wall-time ratio", ratio["default"],
              f"<= {TARGET}x", ratio["default"] <= TARGET, "{:.3f}x")
    res.check("time inside the live and export hooks / run wall time, default settings",
              100 * share["default"], "<= 2%", share["default"] <= 0.02, "{:.2f}%")
    res.check("live rewrite at its 1000-row cap / one default rollout", 100 * cap / per_rollout,
              "<= 2%", cap / per_rollout <= 0.02, "{:.2f}%")
    res.check("export every update / off, median wall-time ratio", ratio["export"], "", None, "{:.3f}x")
    res.check("time inside the live and export hooks / run wall time, export every update",
              100 * share["export"], "", None, "{:.2f}%")
    res.check("same computation in every variant", "yes" if same else "NO", "equal", same, "{}")
