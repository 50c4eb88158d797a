#!/usr/bin/env bash
# Start (or resume) the cpu-profile evidence runs in the background: $LCBOOK_LANES processes
# (default 2) of $LCBOOK_LANE_THREADS threads each (default: the cores divided among the lanes),
# niced, so interactive work on the same machine keeps priority. Measured here
# (benchmarks/cpu_training.py, ResNet-20): one lane of 2 threads 380 img/s, two lanes of 1 thread
# 2 × 210 img/s. One lane finishes each run in half the time (LCBOOK_LANES=1: best on a quiet
# machine, where a session's end would otherwise throw away more of the run in progress), but a
# 2-thread run slowed 2.5× when other work shared the cores; single-threaded lanes degrade gently.
# Every lane works through both grids (python -m lcbook evidence ...), lane 0 starting with
# ResNet-20 and lane 1 with VGG-16/4; a lock per job keeps two lanes off the same run, so a lane
# whose grid is done helps with the other. Each run resumes from its checkpoint under
# $LCBOOK_RUNS_DIR (default: ~/lcbook-runs, outside the checkout, so a new checkout on the same
# machine resumes them). Finished results land in data/results/cpu/ and references in
# data/references/: commit them. Logs: $LCBOOK_RUNS_DIR/logs/. Safe to run again: a lane that
# is still running is left alone.
set -euo pipefail
cd "$(dirname "$0")/.."
export LCBOOK_RUNS_DIR=${LCBOOK_RUNS_DIR:-$HOME/lcbook-runs}
mkdir -p "$LCBOOK_RUNS_DIR/logs"
lanes=${LCBOOK_LANES:-2}
threads=${LCBOOK_LANE_THREADS:-$(( $(nproc) / lanes > 0 ? $(nproc) / lanes : 1 ))}
for ((i = 0; i < lanes; i++)); do
  pidfile="$LCBOOK_RUNS_DIR/logs/lane-$i.pid"
  if [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then
    echo "lane $i: already running (pid $(cat "$pidfile"))"
    continue
  fi
  if ((i % 2 == 0)); then order="resnet20 vgg16_quarter"; else order="vgg16_quarter resnet20"; fi
  log="$LCBOOK_RUNS_DIR/logs/lane-$i.log"
  echo "lane $i: starting $order with $threads thread(s) (log $log)"
  OMP_NUM_THREADS=$threads MKL_NUM_THREADS=$threads nohup nice -n 19 .venv/bin/python -m lcbook evidence $order >> "$log" 2>&1 &
  echo $! > "$pidfile"
done
