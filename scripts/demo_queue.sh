#!/usr/bin/env bash
# Parallel experiments with DVC's queue, scripted end to end (a demo, not a test; the same flow is
# tested with tiny params in tests/dvc/test_dvc_queue.py).
#
#   source .venv/bin/activate && scripts/demo_queue.sh
#
# Builds a throwaway git + DVC repository from this checkout's pipeline files (dvc.yaml,
# params.yaml, stages/, src/, .dvc/config) in a temporary folder, trains a short baseline with
# `dvc repro`, queues one experiment per learning rate, runs them JOBS at a time with
# `dvc queue start -j JOBS`, waits for `dvc queue status`, and prints `dvc exp show`.
# Your own repository is not touched.
#
# Environment: EPISODES (default 40) episodes per run, LRS (default "0.0003 0.001 0.01") one
# queued experiment per value of train.actor_lr, JOBS (default 2) parallel workers,
# KEEP=1 keeps the demo repository (its path is printed), SEED (default 0).
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
EPISODES="${EPISODES:-40}" LRS="${LRS:-0.0003 0.001 0.01}" JOBS="${JOBS:-2}" SEED="${SEED:-0}"
command -v dvc >/dev/null || { echo "dvc not on PATH: source .venv/bin/activate" >&2; exit 2; }

demo="$(mktemp -d "${TMPDIR:-/tmp}/rlpipe-queue-demo.XXXXXX")"
cleanup() {
  (cd "$demo/repo" 2>/dev/null && dvc queue stop >/dev/null 2>&1) || true
  if [[ "${KEEP:-0}" == 1 ]]; then echo "kept: $demo/repo"; else rm -rf "$demo"; fi
}
trap cleanup EXIT
repo="$demo/repo"
mkdir -p "$repo"
cp "$here"/{dvc.yaml,params.yaml,.gitignore,.dvcignore} "$repo"/
cp -r "$here/stages" "$here/src" "$repo"/
[[ -d "$here/dvc_plots_template" ]] && cp -r "$here/dvc_plots_template" "$repo"/
find "$repo" \( -name __pycache__ -o -name '*.egg-info' \) -prune -exec rm -rf {} +
cd "$repo"
git init -q && git config user.email demo@rlpipe.local && git config user.name "rlpipe demo"
dvc init -q && cp "$here/.dvc/config" .dvc/config && dvc config core.analytics false
# each stage imports this repository's src/ (queued runs: their own copy of it)
export PYTHONPATH="src${PYTHONPATH:+:$PYTHONPATH}"
python - "$EPISODES" "$SEED" <<'EOF'
import sys, yaml
p = yaml.safe_load(open("params.yaml"))
p["train"].update(episodes=int(sys.argv[1]), seed=int(sys.argv[2]), progress_bar=False)
yaml.safe_dump(p, open("params.yaml", "w"), sort_keys=False)
EOF
git add -A && git commit -qm "demo baseline params"

echo "== baseline: dvc repro ($EPISODES episodes)"
t0=$(date +%s)
dvc repro -q
base_s=$(( $(date +%s) - t0 ))
git add -A && git commit -qm "baseline run"
echo "   baseline took ${base_s} s"

echo "== dvc exp run --queue (one per train.actor_lr in: $LRS)"
n=0
for lr in $LRS; do
  dvc exp run --queue -n "lr-$lr" -S "train.actor_lr=$lr"
  n=$((n + 1))
done
dvc queue status

echo "== dvc queue start -j $JOBS"
t0=$(date +%s)
dvc queue start -j "$JOBS" > "$demo/queue_start.log" 2>&1   # workers keep the fds: not a pipe
cat "$demo/queue_start.log"
count() { grep -cE "[[:space:]]$1[[:space:]]*\$" <<<"$status" || true; }
while status="$(dvc queue status)"; (( $(count Queued) + $(count Running) > 0 )); do
  echo "   $(( $(date +%s) - t0 )) s: $(count Running) running, $(count Queued) queued"
  sleep 5
done
wall_s=$(( $(date +%s) - t0 ))
echo "$status"
echo "== $n experiments in ${wall_s} s with $JOBS workers (one baseline-sized run took ${base_s} s)"

echo "== dvc exp show"
COLUMNS="${COLUMNS:-200}" dvc exp show --no-pager --drop '.*' \
  --keep 'Experiment|Created|train\.actor_lr|reward\.final_mean|reward\.best_mean|deployment\.accuracy_final|run\.episodes|run\.wall_seconds'
if (( $(count Failed) > 0 )); then
  echo "some experiments failed: dvc queue logs <name>" >&2; exit 1
fi
