"""Soak test (not a unit test): SIGKILL the train stage at random moments, many times over one
small run, rerun it after every kill, and compare the end result with an uninterrupted run.

    python scripts/soak.py [--kills 20] [--episodes 400] [--seed N] [--dvc] [--keep]

1. Reference: ``python stages/train.py`` once, uninterrupted, in its own folder.
2. Victim: the same command (``dvc repro train`` in a temporary git + DVC repository with
   ``--dvc``) in another folder, killed ``--kills`` times with SIGKILL (the whole process group,
   so ``dvc`` and its stage die together). Each kill lands at a random moment, half of them
   "early" (uniform in the first seconds after launch: interpreter start-up, imports, resume,
   log trimming) and half "late" (a random 0-0.3 s after the run has made a new checkpoint,
   so that a rollout, its log appends or a checkpoint write is in flight). After the last kill
   the command runs to completion.
3. Compared with the reference: episodes.csv, updates.csv, steps.csv and captures/index.json
   byte for byte; every capture array; the newest checkpoint and best.pt tensor for tensor
   (actor, critic, both optimizers); and no temporary file left anywhere.

A kill is "survived" when the launch after it does not fail on what the kill left behind: it
is killed in turn, or it runs to completion with exit 0. Prints one line per kill, then
``kills survived: N/K, identical: yes/no``. Results: RELIABILITY.md.
"""
from __future__ import annotations

import argparse
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "src"))

import numpy as np  # noqa: E402
import torch  # noqa: E402
import yaml  # noqa: E402

from rlpipe import checkpoints as ckpt  # noqa: E402
from devkit.runs import TINY_PARAMS, deep_update, make_dvc_repo, project_params  # noqa: E402

LOGS = ("episodes.csv", "updates.csv", "steps.csv")


def soak_params(episodes: int) -> dict:
    return deep_update(TINY_PARAMS, {
        "train": {"episodes": episodes},
        "checkpoint": {"interval": 4, "keep_last": 3},   # prune runs too
        "capture": {"every": 40, "last": 1},
    })


def command(dvc_mode: bool) -> list[str]:
    if dvc_mode:
        exe = Path(sys.executable).parent / "dvc"
        return [str(exe) if exe.exists() else "dvc", "repro", "train"]
    return [sys.executable, str(ROOT / "stages" / "train.py"), "--no-progress"]


def env() -> dict:
    e = {**os.environ, "DVC_NO_ANALYTICS": "1", "PYTHONUNBUFFERED": "1"}
    e["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), e.get("PATH", "")])
    return e


def newest_episode(root: Path) -> int:
    found = ckpt.list_checkpoints(root / "checkpoints")
    return found[0][0] if found else 0


def leftovers(root: Path) -> list[str]:
    skip = {".git", ".dvc"}
    return sorted(p.relative_to(root).as_posix() for p in root.rglob(".*")
                  if not (set(p.relative_to(root).parts) & skip)
                  and (p.name.endswith(".tmp") or p.name.startswith(".ckpt_ep")))


def setup(folder: Path, params: dict, dvc_mode: bool) -> Path:
    if dvc_mode:
        return make_dvc_repo(folder, deep_update(project_params(), params))
    folder.mkdir(parents=True)
    (folder / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    return folder


def run_to_end(root: Path, dvc_mode: bool) -> subprocess.CompletedProcess:
    return subprocess.run(command(dvc_mode), cwd=root, env=env(), capture_output=True, text=True,
                          timeout=1800)


def kill_once(root: Path, dvc_mode: bool, rng: random.Random, early: bool) -> dict:
    """Launch, kill at a random moment, report what happened."""
    before = newest_episode(root)
    t0 = time.monotonic()
    proc = subprocess.Popen(command(dvc_mode), cwd=root, env=env(), stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    if early:
        deadline = t0 + rng.uniform(0.0, 4.0)
    else:
        deadline = None
    while proc.poll() is None:
        now = time.monotonic()
        if deadline is None and newest_episode(root) > before:
            deadline = now + rng.uniform(0.0, 0.3)
        if deadline is not None and now >= deadline:
            break
        if now - t0 > 600:
            break
        time.sleep(0.005)
    killed = proc.poll() is None
    if killed:
        os.killpg(proc.pid, signal.SIGKILL)
    _, stderr = proc.communicate()
    return {"killed": killed, "rc": proc.returncode, "after_s": time.monotonic() - t0,
            "before": before, "after": newest_episode(root), "stderr": stderr,
            "temps": leftovers(root)}


def _state(path: Path) -> dict:
    return ckpt.load_checkpoint(path)


def _same_tensors(a, b) -> bool:
    if isinstance(a, torch.Tensor):
        return isinstance(b, torch.Tensor) and a.dtype == b.dtype and a.shape == b.shape and \
            bool(torch.equal(a, b) or (a.is_floating_point() and torch.equal(a.isnan(), b.isnan())
                                        and torch.equal(a.nan_to_num(), b.nan_to_num())))
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(_same_tensors(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(_same_tensors(x, y) for x, y in zip(a, b))
    return a == b


def compare(ref: Path, vic: Path) -> list[str]:
    """Differences between the two runs (empty = identical)."""
    diffs = []
    for name in LOGS:
        if (ref / "training_output" / name).read_bytes() != (vic / "training_output" / name).read_bytes():
            diffs.append(f"training_output/{name} differs")
    cap_r, cap_v = ref / "training_output" / "captures", vic / "training_output" / "captures"
    if (cap_r / "index.json").read_bytes() != (cap_v / "index.json").read_bytes():
        diffs.append("captures/index.json differs")
    for p in sorted(cap_r.iterdir()):
        q = cap_v / p.name
        if not q.exists():
            diffs.append(f"captures/{p.name} missing")
        elif p.suffix == ".npz":
            with np.load(p) as a, np.load(q) as b:
                if sorted(a.files) != sorted(b.files) or not all(
                        np.array_equal(a[k], b[k], equal_nan=a[k].dtype.kind == "f") for k in a.files):
                    diffs.append(f"captures/{p.name} arrays differ")
        elif p.read_bytes() != q.read_bytes():
            diffs.append(f"captures/{p.name} differs")
    for label, a, b in (("newest checkpoint", ckpt.list_checkpoints(ref / "checkpoints")[0][1],
                         ckpt.list_checkpoints(vic / "checkpoints")[0][1]),
                        ("best.pt", ref / "checkpoints" / "best.pt", vic / "checkpoints" / "best.pt")):
        if a.name != b.name:
            diffs.append(f"{label}: {a.name} vs {b.name}")
            continue
        sa, sb = _state(a), _state(b)
        for key in ("episode", "global_step", "update", "actor", "critic", "actor_optim", "critic_optim"):
            if not _same_tensors(sa[key], sb[key]):
                diffs.append(f"{label}: {key} differs")
        sa["stats"].pop("resumed_count"), sb["stats"].pop("resumed_count")  # counts the resumes
        if not _same_tensors(sa["stats"], sb["stats"]):
            diffs.append(f"{label}: stats differ")
    if leftovers(vic):
        diffs.append(f"temporary files left: {leftovers(vic)}")
    return diffs


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--kills", type=int, default=20)
    ap.add_argument("--episodes", type=int, default=400)
    ap.add_argument("--seed", type=int, default=None, help="seed of the kill moments (default: random)")
    ap.add_argument("--dvc", action="store_true", help="run `dvc repro train` in a git + DVC repo")
    ap.add_argument("--keep", action="store_true", help="keep the temporary folders")
    args = ap.parse_args(argv)
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(2**31)
    rng = random.Random(seed)
    tmp = Path(tempfile.mkdtemp(prefix="rlpipe_soak_"))
    params = soak_params(args.episodes)
    print(f"soak: {args.kills} SIGKILLs, {args.episodes} episodes, "
          f"{'dvc repro train' if args.dvc else 'python stages/train.py'}, seed {seed}, in {tmp}")
    try:
        t0 = time.monotonic()
        ref = setup(tmp / "reference", params, args.dvc)
        p = run_to_end(ref, args.dvc)
        if p.returncode != 0:
            print(p.stdout, p.stderr)
            raise SystemExit("soak: the reference run failed")
        print(f"reference: {time.monotonic() - t0:.1f} s")
        vic = setup(tmp / "victim", params, args.dvc)
        killed = survived = temps_seen = 0
        failed = False
        for k in range(1, args.kills + 1):
            early = k % 2 == 1
            r = kill_once(vic, args.dvc, rng, early)
            if not r["killed"]:        # this launch ended by itself before its kill
                failed = r["rc"] != 0
                survived += killed > 0 and not failed
                print(f"kill {k:2d}: none, the run {'FAILED rc=' + str(r['rc']) if failed else 'finished'}"
                      f" first (checkpoint {r['before']} -> {r['after']})")
                if failed:
                    print(r["stderr"][-3000:])
                break
            # this launch did not fail on what the previous kill left behind
            survived += killed > 0
            killed += 1
            temps_seen += bool(r["temps"])
            print(f"kill {k:2d}: {'early' if early else 'late '} at {r['after_s']:5.2f} s, "
                  f"checkpoint {r['before']:3d} -> {r['after']:3d}"
                  + (f", left {', '.join(r['temps'])}" if r["temps"] else ""))
        final = run_to_end(vic, args.dvc)
        if final.returncode == 0 and not failed and r["killed"]:
            survived += 1              # the last kill: the final rerun recovered from it
        elif final.returncode != 0:
            print(f"final rerun FAILED (rc {final.returncode}):\n{final.stdout[-2000:]}\n"
                  f"{final.stderr[-3000:]}")
        diffs = compare(ref, vic) if final.returncode == 0 else ["the final rerun failed"]
        for d in diffs:
            print(f"  difference: {d}")
        print(f"kills that left temporary files: {temps_seen} (removed by the next run: "
              f"{'yes' if not leftovers(vic) else 'no'})")
        print(f"wall time: {time.monotonic() - t0:.0f} s")
        if killed < args.kills:
            print(f"only {killed} of {args.kills} kills landed before the run finished: "
                  f"raise --episodes")
        print(f"kills survived: {survived}/{killed}, identical: {'yes' if not diffs else 'no'}")
        return 0 if survived == killed == args.kills and not diffs else 1
    finally:
        if args.keep:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
