#!/usr/bin/env bash
# Build the book: set up (scripts/setup.sh), execute every chapter and write the HTML to
# _build/html/. Fails if any notebook cell fails. Profile: LCBOOK_PROFILE=quick (default) or full.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
source scripts/cache_guard.sh
echo "== building the book (profile: ${LCBOOK_PROFILE:-quick})"
.venv/bin/jupyter-book build . --all -W -n --keep-going
echo "== done: open _build/html/index.html, or serve it: .venv/bin/python -m http.server -d _build/html (http://localhost:8000)"
