#!/usr/bin/env bash
# C-step benchmark (issue 3): lcbook's torch C steps against the older LC toolkit's recipe
# (scikit-learn k-means, numpy SVD and top-κ). Sets up the project (scripts/setup.sh), installs
# scikit-learn for the old recipe only, runs benchmarks/c_steps.py and writes
# data/results/c_step_benchmark.json. Extra arguments go to c_steps.py (see --help).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
if ! .venv/bin/python -c "import sklearn" 2>/dev/null; then
  # pip's warnings about absent local index folders are noise; errors still fail the script.
  if ! .venv/bin/pip install -q --disable-pip-version-check -r benchmarks/requirements.txt > .venv/pip-bench.log 2>&1; then
    grep -v "is ignored: it is neither" .venv/pip-bench.log >&2 || true
    echo "benchmarks/run.sh: pip install -r benchmarks/requirements.txt failed" >&2
    exit 1
  fi
fi
exec .venv/bin/python benchmarks/c_steps.py "$@"
