#!/usr/bin/env bash
# All tests: set up (scripts/setup.sh), then unit tests, nbval on every chapter, and a strict
# book build (any failing cell or Sphinx warning fails it).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export LCBOOK_PROFILE=${LCBOOK_PROFILE:-quick}
echo "== unit tests"
.venv/bin/python -m pytest tests
echo "== nbval: executing every chapter (profile: $LCBOOK_PROFILE)"
.venv/bin/python -m pytest --nbval-lax -p no:cacheprovider chapters
echo "== strict book build"
source scripts/cache_guard.sh
.venv/bin/jupyter-book build . --all -W -n --keep-going
echo "== all tests passed"
