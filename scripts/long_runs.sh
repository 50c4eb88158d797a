#!/usr/bin/env bash
# Start (or resume) the cpu-profile evidence runs in the background, one lane per network, each
# single-threaded (measured fastest with two jobs on two cores: benchmarks/cpu_training.py) and
# niced, so interactive work on the same machine keeps priority. Each lane trains its reference if
# missing, then runs its grid (python -m lcbook evidence MODEL); every run resumes from its
# checkpoint under $LCBOOK_RUNS_DIR (default: ~/lcbook-runs, outside the checkout, so a new
# checkout resumes them too). Finished results land in data/results/cpu/ and references in
# data/references/: commit them. Logs: $LCBOOK_RUNS_DIR/logs/. Safe to run again: a lane that
# is still running is left alone.
set -euo pipefail
cd "$(dirname "$0")/.."
export LCBOOK_RUNS_DIR=${LCBOOK_RUNS_DIR:-$HOME/lcbook-runs}
mkdir -p "$LCBOOK_RUNS_DIR/logs"
for model in ${LCBOOK_LANES:-resnet20 vgg16_quarter}; do
  if pgrep -f "lcbook evidence $model" >/dev/null; then
    echo "lane $model: already running"
    continue
  fi
  log="$LCBOOK_RUNS_DIR/logs/evidence-$model.log"
  echo "lane $model: starting (log $log)"
  OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 nohup nice -n 19 .venv/bin/python -m lcbook evidence "$model" >> "$log" 2>&1 &
done
