#!/usr/bin/env bash
# C-step benchmark (issue 3): lcbook's torch C steps against the older LC toolkit's recipe
# (scikit-learn k-means, numpy SVD and top-κ). Sets up the project (scripts/setup.sh), installs
# scikit-learn for the old recipe only, runs benchmarks/c_steps.py and writes
# data/results/c_step_benchmark.json. Extra arguments go to c_steps.py (see --help).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/python -c "import sklearn" 2>/dev/null || .venv/bin/pip install --quiet -r benchmarks/requirements.txt
exec .venv/bin/python benchmarks/c_steps.py "$@"
