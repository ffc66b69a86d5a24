"""Benchmark `resume`: how long a resumed run takes to produce its first new episode, and what
checkpointing costs.

1. A base run (``python stages/train.py --no-progress``, default params.yaml, 400 episodes) is
   stopped with SIGTERM once it has logged ``--base-episodes`` (80) episodes: it finishes the
   rollout in flight, checkpoints and exits 143, like a Ctrl-C'd ``dvc repro``.
2. Then, interleaved, ``--reps`` (5) times each, every time in a fresh copy of the folder:
   - resume: ``python stages/train.py --no-progress`` on a copy of the base run; time from
     ``Popen`` to the first episodes.csv row past the checkpoint's episode;
   - fresh: the same command in an empty folder with the same params.yaml; time to its first
     episodes.csv row.
   The child is killed as soon as the row is seen. Ratio of medians; target <= 1.2x. Rows reach
   the file at the end of the first rollout (after its update), in both cases.
3. Checkpoint cost: ``save_checkpoint`` (atomic write with fsync) of the base run's real last
   checkpoint, median of 10, against the base run's train wall time per checkpoint interval;
   and all saves the base run made (periodic + best.pt, counted in agent_training.log) as a
   share of its train wall time.

    python bench/run.py --only resume [--quick]
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

from bench_common import (PYTHON, QUICK_AGENT, QUICK_ENV, ROOT, Result, fmt_runs, median,
                          poll_until, project_params_dict, say, tool_env, write_yaml)

NAME = "resume"
TITLE = "resume: start-up to the first resumed episode vs a fresh start; checkpoint cost"
TARGET = 1.2
STAGE = str(ROOT / "stages" / "train.py")


def params_dict(quick: bool) -> dict:
    """The project's params, except that every episode lasts ``requests_per_episode`` steps
    (``max_rejections`` = ``requests_per_episode``): otherwise an untrained policy's rejections end
    its episodes early, and a fresh run's first rollout does a fraction of a resumed one's work."""
    over = {"train": {"progress_bar": False}}
    if quick:
        over = {"train": {"progress_bar": False, "episodes": 64, "num_envs": 4},
                "env": QUICK_ENV, "agent": QUICK_AGENT}
    params = project_params_dict(over)
    params["env"]["kwargs"]["max_rejections"] = params["env"]["kwargs"]["requests_per_episode"]
    return params


def new_rows_length(csv: Path, past: int) -> float:
    """Mean Episode Length of the episodes.csv rows past episode ``past``."""
    import csv as _csv

    with open(csv, newline="") as f:
        rows = [r for r in _csv.DictReader(f) if r["Episode"].isdigit() and int(r["Episode"]) > past]
    return sum(int(r["Episode Length"]) for r in rows) / max(len(rows), 1)


def last_episode(csv: Path) -> int:
    """Episode number of the last complete row of episodes.csv (0 if none)."""
    try:
        with open(csv, "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - 4096))
            tail = f.read().decode(errors="replace")
    except OSError:
        return 0
    lines = tail.split("\n")
    complete = lines[:-1]           # the text after the last newline may be torn
    for line in reversed(complete):
        cell = line.split(",", 1)[0]
        if cell.isdigit():
            return int(cell)
    return 0


#: ``python stages/train.py --no-progress`` with ``torch.set_flush_denormal(True)`` first
FTZ_CODE = ("import runpy, sys, torch; torch.set_flush_denormal(True); "
            f"sys.argv = [{STAGE!r}, '--no-progress']; runpy.run_path({STAGE!r}, run_name='__main__')")


def start(folder: Path, ftz: bool = False) -> subprocess.Popen:
    args = [PYTHON, "-c", FTZ_CODE] if ftz else [PYTHON, STAGE, "--no-progress"]
    return subprocess.Popen(args, cwd=folder, env=tool_env(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def time_to_row(folder: Path, past: int, timeout: float = 600, ftz: bool = False) -> dict:
    """Start ``stages/train.py`` in ``folder``; kill it at the first episodes.csv row with
    Episode > ``past``. Returns seconds from Popen to that row (``row``), to the run's first new
    line in agent_training.log (``start``: imports, params, resume restore, networks built), and
    the child's CPU seconds (``cpu``, user + system, at the kill)."""
    csv = folder / "training_output" / "episodes.csv"
    log = folder / "training_output" / "agent_training.log"
    log_size = log.stat().st_size if log.exists() else 0
    marks: dict[str, float] = {}
    t0 = time.perf_counter()
    proc = start(folder, ftz)

    def progressed() -> bool:
        if "start" not in marks and log.exists() and log.stat().st_size > log_size:
            marks["start"] = time.perf_counter() - t0
        return last_episode(csv) > past or proc.poll() is not None

    try:
        seen = poll_until(progressed, timeout)
        marks["row"] = time.perf_counter() - t0
        if proc.poll() is not None and last_episode(csv) <= past:
            raise RuntimeError(f"train exited {proc.returncode} before a row past {past}:\n"
                               f"{proc.stderr.read()}")
        if not seen:
            raise RuntimeError(f"no row past episode {past} after {timeout} s")
    finally:
        cpu = float("nan")
        if proc.poll() is None:
            proc.kill()
            try:
                _, _, usage = os.wait4(proc.pid, 0)
                cpu = usage.ru_utime + usage.ru_stime
            except ChildProcessError:
                pass
        proc.wait()
        proc.stderr.close()
    marks.setdefault("start", float("nan"))
    marks["cpu"] = cpu
    marks["length"] = new_rows_length(csv, past)
    return marks


def make_base(folder: Path, params: dict, stop_after: int) -> dict:
    folder.mkdir(parents=True)
    write_yaml(folder / "params.yaml", params)
    csv = folder / "training_output" / "episodes.csv"
    t0 = time.perf_counter()
    proc = start(folder)
    if not poll_until(lambda: last_episode(csv) >= stop_after or proc.poll() is not None, 1800, 0.2):
        proc.kill()
        raise RuntimeError("base run too slow")
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=600)
    if proc.returncode not in (143, 0):
        raise RuntimeError(f"base run exited {proc.returncode}:\n{err}")
    run = json.loads((folder / "training_output" / "run.json").read_text())
    run["process_seconds"] = time.perf_counter() - t0
    return run


def copy_run(src: Path, dst: Path) -> None:
    shutil.copytree(src, dst)


def checkpoint_cost(base: Path, reps: int) -> dict:
    from rlpipe import checkpoints as ckpt

    newest = ckpt.list_checkpoints(base / "checkpoints")[0][1]
    state = ckpt.load_checkpoint(newest)
    size = newest.stat().st_size
    times = []
    with tempfile.TemporaryDirectory(dir=base) as tmp:
        for i in range(reps):
            t = time.perf_counter()
            ckpt.save_checkpoint(state, Path(tmp) / f"ckpt_{i}.pt")
            times.append(time.perf_counter() - t)
    log = (base / "training_output" / "agent_training.log").read_text()
    return {"save_s": median(times), "saves_runs": times, "bytes": size,
            "periodic": log.count("checkpoint saved"), "best": log.count("new best mean")}


def run(res: Result, quick: bool) -> None:
    from rlpipe.config import resolve_interval

    reps = 1 if quick else 7
    params = params_dict(quick)
    stop_after = 16 if quick else 80
    with tempfile.TemporaryDirectory(prefix="bench_resume_") as tmp:
        tmp = Path(tmp)
        base = tmp / "base"
        info = make_base(base, params, stop_after)
        ck_episode = info["episodes"]
        say(f"  [resume] base run stopped at episode {ck_episode} ({info['status']}), "
            f"train wall {info['wall_seconds']:.1f} s")
        # warm-up (page cache of the interpreter and libraries), not timed
        warm = tmp / "warm"
        copy_run(base, warm)
        time_to_row(warm, ck_episode)
        resumed, fresh = [], []
        for r in range(reps):
            for which in (("resume", "fresh") if r % 2 == 0 else ("fresh", "resume")):
                folder = tmp / f"{which}{r}"
                if which == "resume":
                    copy_run(base, folder)
                    m = time_to_row(folder, ck_episode)
                    resumed.append(m)
                else:
                    folder.mkdir()
                    write_yaml(folder / "params.yaml", params)
                    m = time_to_row(folder, 0)
                    fresh.append(m)
                say(f"  [resume] rep {r + 1} {which}: train start after {m['start']:.2f} s, first new "
                    f"row after {m['row']:.2f} s (child CPU {m['cpu']:.2f} s; episode length "
                    f"{m['length']:.0f})")
                shutil.rmtree(folder, ignore_errors=True)
        # the same pairs with denormal floats flushed to zero in the child (see the section text)
        ftz_resumed, ftz_fresh = [], []
        for r in range(1 if quick else 3):
            for which in (("resume", "fresh") if r % 2 == 0 else ("fresh", "resume")):
                folder = tmp / f"ftz-{which}{r}"
                if which == "resume":
                    copy_run(base, folder)
                    m = time_to_row(folder, ck_episode, ftz=True)
                    ftz_resumed.append(m)
                else:
                    folder.mkdir()
                    write_yaml(folder / "params.yaml", params)
                    m = time_to_row(folder, 0, ftz=True)
                    ftz_fresh.append(m)
                say(f"  [resume] flush-denormal rep {r + 1} {which}: first new row after {m['row']:.2f} s "
                    f"(child CPU {m['cpu']:.2f} s)")
                shutil.rmtree(folder, ignore_errors=True)
        cost = checkpoint_cost(base, 3 if quick else 10)
    col = lambda runs, k: [m[k] for m in runs]  # noqa: E731
    ratio = median(col(resumed, "row")) / median(col(fresh, "row"))
    cpu_ratio = median(col(resumed, "cpu")) / median(col(fresh, "cpu"))
    start_ratio = median(col(resumed, "start")) / median(col(fresh, "start"))
    ftz_ratio = median(col(ftz_resumed, "row")) / median(col(ftz_fresh, "row"))
    episodes = params["train"]["episodes"]
    interval = resolve_interval(params.get("checkpoint", {}).get("interval", "auto"), episodes, 10)
    per_episode = info["wall_seconds"] / ck_episode
    share_interval = cost["save_s"] / (interval * per_episode)
    saves = cost["periodic"] + cost["best"]
    share_run = saves * cost["save_s"] / info["wall_seconds"]
    say(f"resume: time to first resumed row / fresh first row = {ratio:.2f}x (target <= {TARGET}x: "
        f"{'PASS' if ratio <= TARGET else 'MISSED'}); resume {median(col(resumed, 'row')):.2f} s, fresh "
        f"{median(col(fresh, 'row')):.2f} s; child CPU ratio {cpu_ratio:.2f}x; checkpoint save {1e3 * cost['save_s']:.1f} ms = "
        f"{100 * share_interval:.2f}% of a {interval}-episode interval")
    res.body += [
        f"Default params.yaml ({episodes} episodes, {params['train'].get('num_envs', 8)} envs, step "
        f"logging every step, TensorBoard and captures on) except `env.max_rejections` = "
        f"`requests_per_episode` = {params['env']['kwargs']['requests_per_episode']}, so that every episode has "
        "the same length whatever the policy (with the default 10, an untrained policy's rejections "
        "end its episodes after ~20 steps, so a fresh run's first rollout would do ~40% of the work "
        "of a resumed one and the ratio would measure episode length, not resuming). Base run: `python stages/train.py "
        f"--no-progress`, SIGTERM once {stop_after} episodes were logged: stopped at episode "
        f"{ck_episode} ({info['status']}), {info['wall_seconds']:.1f} s of training "
        f"({per_episode:.2f} s per episode). Then {reps} interleaved pairs, each in a fresh copy: "
        "resume (copy of the base run) vs fresh start (empty folder, same params.yaml); time from "
        "`Popen` to the first new row of episodes.csv (rows are flushed at the end of the first "
        "rollout, after its update, in both cases); the child is killed there.",
        "",
        f"- resume to first row past episode {ck_episode}: {fmt_runs(col(resumed, 'row'))} s "
        f"(median {median(col(resumed, 'row')):.2f} s); of which to train start (first new log line: "
        f"imports, params, checkpoint found and loaded, networks built): median "
        f"{median(col(resumed, 'start')):.2f} s; child CPU {fmt_runs(col(resumed, 'cpu'))} s",
        f"- fresh start to first row: {fmt_runs(col(fresh, 'row'))} s (median {median(col(fresh, 'row')):.2f} s); "
        f"to train start: median {median(col(fresh, 'start')):.2f} s; child CPU {fmt_runs(col(fresh, 'cpu'))} s",
        f"- first rollout's mean episode length: resume {median(col(resumed, 'length')):.0f}, "
        f"fresh {median(col(fresh, 'length')):.0f} steps",
        f"- ratios resume / fresh: to first row {ratio:.2f}x, to train start {start_ratio:.2f}x, "
        f"child CPU to first row {cpu_ratio:.2f}x",
        "",
        "The rest of the gap is the first update, not resuming: with a trained network the PPO "
        "update's backward pass runs into subnormal (denormal) floats and is slower on this CPU "
        "(see the throughput section and the notes at the end), so any trained state, resumed or "
        "not, makes slower rollouts than a fresh network. The same pairs with `torch.set_flush_denormal(True)` set in the child before `stages/train.py` "
        "runs (via `runpy`) measure the resume overhead proper:",
        "",
        f"- flush-denormal: resume {fmt_runs(col(ftz_resumed, 'row'))} s, fresh {fmt_runs(col(ftz_fresh, 'row'))} s "
        f"to the first new row: ratio of medians **{ftz_ratio:.2f}x**",
        "",
        f"- checkpoint: {cost['bytes'] / 1024:.0f} KiB, `save_checkpoint` (atomic, fsync) median "
        f"{1e3 * cost['save_s']:.1f} ms (runs {fmt_runs([1e3 * t for t in cost['saves_runs']], '{:.1f}')} ms); "
        f"checkpoint interval `auto` = {interval} episodes = {interval * per_episode:.1f} s of training: "
        f"one save = {100 * share_interval:.2f}% of an interval",
        f"- the base run saved {cost['periodic']} periodic checkpoints and {cost['best']} best.pt in "
        f"{info['wall_seconds']:.1f} s: {100 * share_run:.2f}% of its train time",
    ]
    res.check("time to first resumed row / fresh first row, medians", ratio, f"<= {TARGET}x",
              ratio <= TARGET, "{:.2f}x")
    res.check("same, with denormals flushed to zero in the child (resume overhead proper)", ftz_ratio,
              "", None, "{:.2f}x")
    res.check("child CPU time to that row, resume / fresh", cpu_ratio, "", None, "{:.2f}x")
    res.check("checkpoint save / train time per interval", 100 * share_interval, "", None, "{:.2f}%")
    res.check("all checkpoint saves (periodic + best.pt) / train time", 100 * share_run, "", None, "{:.2f}%")
