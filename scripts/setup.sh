#!/usr/bin/env bash
# Set up everything on a fresh machine (Python 3.11): a virtual environment with requirements.txt
# (torch and torchvision pinned, the book tools within major versions) and lcbook, and the datasets as tensor caches under data/datasets/.
# Idempotent: a second run only checks. Data comes from ../shared/data/*.tar.gz when present
# (offline), else from torchvision's download (needs internet).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  echo "== creating .venv with $($PYTHON --version)"
  "$PYTHON" -m venv .venv
fi
stamp=.venv/.requirements.sha256
want=$(cat requirements.txt pyproject.toml | sha256sum | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "== installing requirements: a few minutes and about 6 GB (the pinned torch is a CUDA build); pip is"
  echo "   quiet, its log is .venv/pip.log (tail -f it to watch)"
  : > .venv/pip.log
  if [ -n "${LCBOOK_TORCH_INDEX:-}" ]; then
    # e.g. LCBOOK_TORCH_INDEX=https://download.pytorch.org/whl/cpu: the same torch/torchvision
    # versions as CPU-only wheels (about 1 GB in all) before the rest of the requirements.
    echo "   torch and torchvision from $LCBOOK_TORCH_INDEX"
    .venv/bin/pip install -q --disable-pip-version-check --index-url "$LCBOOK_TORCH_INDEX" \
      "$(grep '^torch==' requirements.txt)" "$(grep '^torchvision==' requirements.txt)" >> .venv/pip.log 2>&1 \
      || { tail -20 .venv/pip.log >&2; echo "setup: installing torch from $LCBOOK_TORCH_INDEX failed" >&2; exit 1; }
  fi
  # pip's warnings about absent local index folders are noise; errors still fail the script.
  if ! .venv/bin/pip install -q --disable-pip-version-check -r requirements.txt >> .venv/pip.log 2>&1; then
    grep -v "is ignored: it is neither" .venv/pip.log >&2 || true
    echo "setup: pip install -r requirements.txt failed (full log: .venv/pip.log)" >&2
    exit 1
  fi
  .venv/bin/python -c "import torch, torchvision, lcbook, jupyter_book, nbval, playwright" 
  echo "$want" > "$stamp"
fi
echo "== preparing datasets"
.venv/bin/python -c "import lcbook.data as d; d.prepare()"
echo "== fetching MathJax and the widget manager for the offline site (npm registry, pinned hashes)"
.venv/bin/python scripts/fetch_web_assets.py
if ! command -v chromium >/dev/null 2>&1 && ! command -v chromium-browser >/dev/null 2>&1; then
  # The site test opens the built pages in headless Chromium (Debian package `chromium`).
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "== installing Chromium for the site test (apt-get)"
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium; } \
      > .venv/apt.log 2>&1 || { cat .venv/apt.log >&2; echo "setup: apt-get install chromium failed" >&2; exit 1; }
  else
    echo "setup: note: Chromium is not installed; scripts/test.sh's site test needs it" \
         "(Debian/Ubuntu: sudo apt-get install chromium), or set LCBOOK_SKIP_BROWSER=1" >&2
  fi
fi
