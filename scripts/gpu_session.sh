#!/usr/bin/env bash
# One short GPU lease, used fully and failing fast (issue 16). Run on the GPU machine from the
# repository root, with the CIFAR-10 archive carried in data/archives/ (an ignored folder):
#
#   mkdir -p data/archives && cp ../shared/data/cifar10-jpeg.tar.gz data/archives/   # here, once
#   device run: bash scripts/gpu_session.sh      (carry: data/archives)
#
# In order, each step's output and files under $OUT (what comes back):
#   1. the CUDA variants of the tests (batches and generators on the device, fused SGD, bf16);
#   2. the speed benchmark (benchmarks/gpu_speed.py): s/epoch of plain training and of the L step
#      per speed setting, the C-step share, the projected full-profile time -> $OUT/gpu_speed_cuda.json;
#   3. the full-recipe ResNet-20 reference (200 epochs, python -m lcbook reference resnet20
#      --profile full), checkpointed every epoch under $OUT/runs so a cut-off run leaves its state
#      -> $OUT/resnet20-cifar10-full.{pt,json} when it finishes;
#   4. then, while the budget lasts (GPU_SESSION_SECONDS, default 780), the ResNet-20 Q/P/Q+P grid
#      of the full profile -> $OUT/results/*.json.
# GPU_SESSION_SMOKE=1 runs the same steps at toy size on any machine (how it is tested on a CPU).
set -uo pipefail
cd "$(dirname "$0")/.."
export PYTHONUNBUFFERED=1 PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
OUT=${OUT:-/tmp/gpu-session-out}
mkdir -p "$OUT"
export LCBOOK_ARCHIVE_DIR=${LCBOOK_ARCHIVE_DIR:-$PWD/data/archives}
export LCBOOK_RUNS_DIR=${LCBOOK_RUNS_DIR:-/tmp/lcbook-runs}  # checkpoints; an unfinished reference's is copied to $OUT
exec > >(tee "$OUT/session.log") 2>&1  # $OUT takes at most 8 files: one log, the benchmark, the reference, 3 results
PY=${PYTHON:-python3}
SMOKE=${GPU_SESSION_SMOKE:-0}
BUDGET=${GPU_SESSION_SECONDS:-780}
T0=$(date +%s)
left() { echo $((BUDGET - ($(date +%s) - T0))); }
step() { echo; echo "== [$(( $(date +%s) - T0 )) s] $*"; }

step "machine"
"$PY" -c "import torch, sys; print(sys.version.split()[0], 'torch', torch.__version__, 'cuda', torch.cuda.is_available(),
           torch.cuda.get_device_name() if torch.cuda.is_available() else 'no GPU')" || exit 1
if [ "$SMOKE" != 1 ] && ! "$PY" -c "import torch; raise SystemExit(not torch.cuda.is_available())"; then
  echo "no CUDA GPU here: set GPU_SESSION_SMOKE=1 to try the script at toy size" >&2
  exit 1
fi

step "data: the CIFAR-10 tensor cache from $LCBOOK_ARCHIVE_DIR"
"$PY" -c "from lcbook import data; x, y = data.load('cifar10', download=False)['train']; print('train', tuple(x.shape))" \
  || { echo "no CIFAR-10: carry data/archives" >&2; exit 1; }

step "1. CUDA tests"
"$PY" -m pytest -q -p no:cacheprovider tests/test_data.py tests/test_train.py tests/test_lc.py \
  -k "device or fused or speed or autocast or resume" 2>&1 | tail -15

step "2. speed benchmark"
if [ "$SMOKE" = 1 ]; then
  "$PY" benchmarks/gpu_speed.py --models resnet20 --settings float32 --images 256 --test-images 200 --repeats 1 \
    --out "$OUT/gpu_speed.json"
else
  "$PY" benchmarks/gpu_speed.py --models resnet20 vgg16 --settings float32 channels_last bf16 all --repeats 2 \
    --out "$OUT/gpu_speed_cuda.json"
fi

step "3. the full-recipe ResNet-20 reference ($(left) s left)"
if [ "$SMOKE" = 1 ]; then
  echo "(smoke: the 200-epoch reference is skipped)"
else
  timeout $(( $(left) > 60 ? $(left) - 30 : 30 )) "$PY" -m lcbook reference resnet20 --profile full 2>&1 | tail -3
  if cp data/references/resnet20-cifar10-full.pt data/references/resnet20-cifar10-full.json "$OUT/" 2>/dev/null; then
    echo "reference -> $OUT"
  else  # cut off: bring its checkpoint back, so the next lease resumes it
    ck=$(find "$LCBOOK_RUNS_DIR" -name 'resnet20*full*' -type f | head -1)
    [ -n "$ck" ] && cp "$ck" "$OUT/" && echo "reference not finished: its checkpoint $ck -> $OUT"
  fi
fi

step "4. the ResNet-20 grid while time lasts ($(left) s left)"
mkdir -p "$OUT/results"
if [ "$SMOKE" = 1 ]; then
  "$PY" -m lcbook run lenet300 q k=2 --profile quick --set steps=1 --set train_size=500 --set test_size=500
  cp data/results/custom/quick/*.json "$OUT/results/" 2>/dev/null
elif [ -f data/references/resnet20-cifar10-full.pt ]; then
  for job in "q k=2" "qp k=2,fraction=0.01" "p fraction=0.03485"; do
    [ "$(left)" -gt 120 ] || break
    # shellcheck disable=SC2086
    timeout $(( $(left) - 30 )) "$PY" -m lcbook run resnet20 $job --profile full 2>&1 | tail -2
  done
  cp data/results/full/*.json "$OUT/results/" 2>/dev/null
else
  echo "(no full reference: the grid needs it first)"
fi
step "done"
ls -la "$OUT" "$OUT/results"
exit 0
