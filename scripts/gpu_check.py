"""On a machine with a CUDA GPU: train a tiny run on CUDA, resume it on the CPU, report both.

Run through ``scripts/gpu_check.sh`` (about 1-2 minutes; every run is a real
``python stages/train.py`` in a temporary folder). Steps, for Pendulum-v1 (Box actions,
observation normalization on) and the built-in graph environment (GAT):

1. ``cuda``: 16 episodes on ``train.device: cuda`` (checkpoint every 8 episodes).
2. ``cuda-again``: the same, a second time (is CUDA run-to-run deterministic here?).
3. ``cuda->cpu``: the first 8 episodes on CUDA, stopped, then resumed to 16 on ``cpu``.
4. ``cpu``: all 16 episodes on the CPU.

It prints which device each run logged, whether the CUDA checkpoints load on the CPU, and how
close the runs are (episodes.csv identical? largest weight difference). Exit 0 when every run
finished and the CUDA checkpoint resumed on the CPU; 1 otherwise; 77 when there is no GPU.
"""
from __future__ import annotations

import csv
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT))

from devkit.runs import TINY_PARAMS, deep_update, with_env  # noqa: E402

CASES = {
    "Pendulum-v1": {"env": {"id": "Pendulum-v1"}, "agent": {"mlp_hidden": [32, 32]},
                    "train": {"normalize_observations": True, "num_envs": 4, "episodes": 16}},
    "GraphDeploy": {"train": {"episodes": 16}},
}
COMMON = {"train": {"progress_bar": False}, "checkpoint": {"interval": 8, "keep_last": 10},
          "capture": {"every": 0, "last": 1}, "experiment": {"write_interval": 0}}


def train(folder: Path, params: dict) -> tuple[int, float, str]:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, str(ROOT / "stages" / "train.py"), "--no-progress"],
                          cwd=folder, capture_output=True, text=True, timeout=600)
    if proc.returncode != 0:
        print(proc.stderr[-2000:])
    return proc.returncode, time.perf_counter() - t0, proc.stderr


def device_line(folder: Path) -> str:
    log = folder / "training_output" / "agent_training.log"
    lines = [ln for ln in log.read_text().splitlines() if "device" in ln] if log.exists() else []
    return lines[-1].split("rlpipe: ", 1)[-1] if lines else "(no device line)"


def newest(folder: Path) -> dict:
    import torch

    ckpts = sorted((folder / "checkpoints").glob("ckpt_ep*.pt"))
    return torch.load(ckpts[-1], map_location="cpu", weights_only=True)


def weight_gap(a: dict, b: dict) -> float:
    gap = 0.0
    for net in ("actor", "critic"):
        for k, v in a[net].items():
            gap = max(gap, float((v.double() - b[net][k].double()).abs().max()))
    return gap


def episodes(folder: Path) -> list[list[str]]:
    with open(folder / "training_output" / "episodes.csv", newline="") as f:
        return list(csv.reader(f))


# The device under test; GPU_CHECK_DEVICE=cpu runs the same steps without a GPU (a dry run of
# this script itself: every comparison then reads "identical").
DEVICE = os.environ.get("GPU_CHECK_DEVICE", "cuda")


def main() -> int:
    import torch

    if DEVICE != "cpu" and not torch.cuda.is_available():
        print(f"gpu_check: torch {torch.__version__} sees no CUDA device; nothing to check")
        return 77
    name = torch.cuda.get_device_name(0) if DEVICE != "cpu" else "dry run on the CPU"
    print(f"gpu_check: torch {torch.__version__}, {name}")
    ok = True
    summary = []
    with tempfile.TemporaryDirectory(prefix="gpu_check_") as tmp:
        for name, case in CASES.items():
            base = deep_update(deep_update(TINY_PARAMS, COMMON), case)
            if "env" in case:  # another environment: not the tiny graph settings
                base = with_env(base, case["env"])
            on = lambda dev, base=base, **t: deep_update(base, {"train": {"device": dev, **t}})  # noqa: E731
            d = {k: Path(tmp) / name / k for k in ("cuda", "cuda-again", "cuda-cpu", "cpu")}
            runs = {
                "cuda": train(d["cuda"], on(DEVICE)),
                "cuda-again": train(d["cuda-again"], on(DEVICE)),
                "cuda (8 episodes)": train(d["cuda-cpu"], on(DEVICE, episodes=8)),
                "resume on cpu": train(d["cuda-cpu"], on("cpu")),
                "cpu": train(d["cpu"], on("cpu")),
            }
            for label, (code, secs, _) in runs.items():
                summary.append(f"{name:12s} {label:18s} exit {code}  {secs:6.1f} s")
                ok &= code == 0
            if not ok:
                break
            log = (d["cuda-cpu"] / "training_output" / "agent_training.log").read_text()
            resumed = "resumed from" in log
            ok &= resumed
            summary.append(f"{name:12s} device logged: cuda run '{device_line(d['cuda'])}'; "
                           f"resumed run '{device_line(d['cuda-cpu'])}'")
            summary.append(f"{name:12s} CUDA checkpoint resumed on CPU: {'yes' if resumed else 'NO'}")
            c1, c2, mixed, cpu = (newest(d[k]) for k in ("cuda", "cuda-again", "cuda-cpu", "cpu"))
            devices = {t.device.type for net in ("actor", "critic") for t in c1[net].values()}
            summary.append(f"{name:12s} checkpoint tensors saved on: {', '.join(sorted(devices))}")
            summary.append(f"{name:12s} cuda vs cuda-again: episodes.csv "
                           f"{'identical' if episodes(d['cuda']) == episodes(d['cuda-again']) else 'DIFFER'}, "
                           f"max |weight diff| {weight_gap(c1, c2):.3g}")
            summary.append(f"{name:12s} cuda vs cpu:        episodes.csv "
                           f"{'identical' if episodes(d['cuda']) == episodes(d['cpu']) else 'differ'}, "
                           f"max |weight diff| {weight_gap(c1, cpu):.3g}")
            summary.append(f"{name:12s} cuda->cpu vs cpu:   max |weight diff| {weight_gap(mixed, cpu):.3g}")
        shutil.rmtree(tmp, ignore_errors=True)
    print("\n=== gpu_check summary ===")
    print("\n".join(summary))
    print(f"=== {'PASS' if ok else 'FAIL'}: CUDA runs finished and resumed on the CPU ===")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
