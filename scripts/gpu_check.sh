#!/usr/bin/env bash
# On a machine with a CUDA GPU: a tiny training on CUDA, resumed on the CPU, both reported.
# About 1-2 minutes (2 min 10 s as a CPU dry run, GPU_CHECK_DEVICE=cpu, on a loaded 2-core machine). Usage: bash scripts/gpu_check.sh   (PYTHON=/path/to/python to pick one)
# Exit 0 = pass, 1 = a run failed or did not resume, 77 = no GPU here.
set -u
cd "$(dirname "$0")/.."
exec timeout 180 "${PYTHON:-python}" scripts/gpu_check.py "$@"
