#!/usr/bin/env bash
# All tests: set up (scripts/setup.sh), then unit tests, a strict book build (executes every
# chapter; any failing cell or Sphinx warning fails it), nbval on every executed chapter (runs
# each again and compares the cells tagged nbval-check-output with the build's outputs), and the
# site test in headless Chromium (figures, typeset math, rendered widgets).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export LCBOOK_PROFILE=${LCBOOK_PROFILE:-quick}
t0=$(date +%s)
echo "== unit tests"
.venv/bin/python -m pytest tests
t1=$(date +%s)
echo "== strict book build (profile: $LCBOOK_PROFILE)"
source scripts/cache_guard.sh
if ! .venv/bin/jupyter-book build . --all -W -n --keep-going; then
  # A notebook whose kernel stalls on widget messages (nbclient issue #312) fails by the per-cell
  # timeout of _config.yml; chapters that passed are cached, so a second build re-runs only the
  # failed ones. A chapter that really fails fails again.
  echo "== the build failed; building once more (only the chapters that failed execute again)"
  .venv/bin/jupyter-book build . --all -W -n --keep-going
fi
t2=$(date +%s)
echo "== nbval: executing every chapter again, checking deterministic outputs against the build's"
if ! .venv/bin/python -m pytest --nbval-lax --nbval-cell-timeout=600 -p no:cacheprovider _build/jupyter_execute/chapters; then
  # As for the build: a kernel that stalls (seen once: chapter 1's LC cell passed the 600 s limit on
  # a loaded machine, then ran in 33 s) fails by timeout; a chapter that really fails fails again.
  echo "== nbval failed; running it once more"
  .venv/bin/python -m pytest --nbval-lax --nbval-cell-timeout=600 -p no:cacheprovider _build/jupyter_execute/chapters
fi
t3=$(date +%s)
echo "== site test: chapter pages in headless Chromium"
if [ "${LCBOOK_SKIP_BROWSER:-0}" = 1 ]; then
  echo "   skipped (LCBOOK_SKIP_BROWSER=1)"
else
  .venv/bin/python scripts/check_site.py
fi
t4=$(date +%s)
echo "== all tests passed (unit $((t1 - t0)) s, build $((t2 - t1)) s, nbval $((t3 - t2)) s, site $((t4 - t3)) s)"
