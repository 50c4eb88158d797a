"""Write every chapter's set-up cell from ``_config.yml`` and convert the sources to notebooks.

The book's repository is one setting, ``repository.url`` (and ``repository.branch``) in
``_config.yml``: Jupyter Book makes the Colab and repository buttons from it, and this script
makes the first code cell of every chapter (``chapters/src/*.py``) from it: where ``lcbook`` is
not installed (Colab, a bare Jupyter), the cell clones that repository and installs the package
from the clone (so the stored references and results under ``data/`` come with it); without
internet it stops with one sentence that says what to install. Then each source is converted to
``chapters/<name>.ipynb`` with jupytext (no outputs).

Usage: ``python scripts/sync_chapters.py`` (write) or ``--check`` (exit 1, naming the files, if
anything is out of date; the tests call :func:`stale`).
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SOURCES = ROOT / "chapters" / "src"

MARK = "# %% tags=[\"remove-cell\"]\n# Set-up:"

TEMPLATE = '''# %% tags=["remove-cell"]
# Set-up: where lcbook is not installed (Colab, a bare Jupyter), fetch the book's repository and
# install its package from it, with the stored references and results; in the book's own
# environment this does nothing. Made from _config.yml by scripts/sync_chapters.py.
import importlib.util
import os
import subprocess
import sys

REPOSITORY, BRANCH = "{url}", "{branch}"
if importlib.util.find_spec("lcbook") is None:
    class SetupError(Exception):
        def _render_traceback_(self):  # IPython shows this one line instead of a traceback
            return [str(self)]

    try:
        if not os.path.isdir("lcbook-src"):
            subprocess.run(["git", "clone", "-q", "--depth", "1", "-b", BRANCH, REPOSITORY, "lcbook-src"],
                           check=True, capture_output=True, timeout=600)
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "-e", "lcbook-src"],
                       check=True, capture_output=True, timeout=1800)
    except (OSError, subprocess.SubprocessError) as e:
        raise SetupError(
            f"lcbook is not installed and could not be fetched from {{REPOSITORY}} ({{type(e).__name__}}): "
            f"without internet, copy that repository here and run `pip install -e <its folder>` "
            f"(PyTorch 2.x, torchvision, matplotlib, pandas, ipywidgets), then run this cell again.") from None
    sys.path.insert(0, os.path.abspath("lcbook-src"))

'''


def repository() -> tuple[str, str]:
    """``(url, branch)`` of ``repository:`` in ``_config.yml``.

    Raises:
        ValueError: the setting is missing or the URL is not an http(s) URL.
    """
    import yaml

    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    repo = config.get("repository") or {}
    url, branch = str(repo.get("url", "")), str(repo.get("branch", "main"))
    if not re.fullmatch(r"https?://\S+", url):
        raise ValueError(f"_config.yml: repository.url must be an http(s) URL, got {url!r}")
    if not re.fullmatch(r"[\w./-]+", branch):
        raise ValueError(f"_config.yml: repository.branch {branch!r} is not a branch name")
    return url, branch


def setup_cell(url: str, branch: str) -> str:
    """The set-up cell (py:percent text, ending with a blank line) for a repository."""
    return TEMPLATE.format(url=url, branch=branch)


def with_setup_cell(text: str, cell: str) -> str:
    """``text`` (a chapter source) with its set-up cell replaced by ``cell``.

    Raises:
        ValueError: the source has no set-up cell (a ``remove-cell`` cell starting ``# Set-up:``).
    """
    start = text.find(MARK)
    if start < 0:
        raise ValueError("no set-up cell (a '# %% tags=[\"remove-cell\"]' cell starting '# Set-up:')")
    end = text.find("\n# %%", start + len(MARK))
    end = len(text) if end < 0 else end + 1
    return text[:start] + cell + text[end:]


def stale() -> list[str]:
    """Files that :func:`main` would change (relative paths)."""
    import jupytext

    cell = setup_cell(*repository())
    out = []
    for src in sorted(SOURCES.glob("*.py")):
        if with_setup_cell(src.read_text(), cell) != src.read_text():
            out.append(str(src.relative_to(ROOT)))
        nb = ROOT / "chapters" / (src.stem + ".ipynb")
        want = jupytext.writes(jupytext.reads(with_setup_cell(src.read_text(), cell), fmt="py:percent"), fmt="ipynb")
        if not nb.is_file() or _cells(nb.read_text()) != _cells(want):
            out.append(str(nb.relative_to(ROOT)))
    return out


def _cells(ipynb: str) -> list:
    """What a notebook says, without the random cell ids jupytext gives each conversion."""
    import json

    return [(c["cell_type"], "".join(c["source"]), c.get("metadata", {}), c.get("outputs"))
            for c in json.loads(ipynb)["cells"]]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="only report what is out of date")
    args = ap.parse_args(argv)
    if args.check:
        out = stale()
        for f in out:
            print(f"out of date: {f}", file=sys.stderr)
        return 1 if out else 0
    import jupytext

    cell = setup_cell(*repository())
    for src in sorted(SOURCES.glob("*.py")):
        text = with_setup_cell(src.read_text(), cell)
        if text != src.read_text():
            src.write_text(text)
        nb = ROOT / "chapters" / (src.stem + ".ipynb")
        want = jupytext.writes(jupytext.reads(text, fmt="py:percent"), fmt="ipynb")
        if not nb.is_file() or _cells(nb.read_text()) != _cells(want):
            tmp = nb.with_suffix(".ipynb.tmp")
            tmp.write_text(want)
            tmp.replace(nb)
            print(f"wrote {nb.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
