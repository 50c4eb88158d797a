"""Write every chapter's set-up cell from ``_config.yml`` and convert the sources to notebooks.

The book's repository is one setting, ``repository.url`` (and ``repository.branch``) in
``_config.yml``: Jupyter Book makes the Colab and repository buttons from it, and this script
makes the first code cell of every chapter (``chapters/src/*.py``) from it: where ``lcbook`` is
not installed (Colab, a bare Jupyter), the cell clones that repository and installs the package
from the clone (so the stored references and results under ``data/`` come with it); without
internet it stops with one sentence that says what to install. Then each source is converted to
``chapters/<name>.ipynb`` with jupytext (no outputs).

Usage: ``python scripts/sync_chapters.py`` (write) or ``--check`` (exit 1, naming the files, if
anything is out of date; the tests call :func:`stale`). Exit 2, writing nothing, if the setting or
a source is bad.
"""

from __future__ import annotations

import argparse
import json
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

REPOSITORY, BRANCH = {url}, {branch}
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


_URL = re.compile(r"https?://[A-Za-z0-9.-]+(:[0-9]+)?(/[A-Za-z0-9._~%/+-]*)?")


def _check_branch(branch: str, where: str) -> None:
    """Refuse what git refuses as a branch name (git check-ref-format, the common cases)."""
    if (not re.fullmatch(r"[A-Za-z0-9._/+-]+", branch) or branch.startswith(("-", "/", "."))
            or branch.endswith(("/", ".", ".lock")) or ".." in branch or "//" in branch or "/." in branch):
        raise ValueError(f"{where}: repository.branch {branch!r} is not a git branch name "
                         f"(letters, digits and . _ / + -, no '..', not starting with - / . nor ending with / . .lock)")


def repository(config_path: Path | None = None) -> tuple[str, str]:
    """``(url, branch)`` of ``repository:`` in ``_config.yml`` (branch: ``main`` when not given).

    Raises:
        ValueError: the file is not a YAML mapping; ``repository`` is missing or not a mapping;
            the URL is not a plain http(s) URL (host, optional port and path: no spaces, quotes
            or query); the branch is not a string git accepts as a branch name.
    """
    import yaml

    path = config_path or ROOT / "_config.yml"
    config = yaml.safe_load(path.read_text())
    if not isinstance(config, dict):
        raise ValueError(f"{path.name}: expected a YAML mapping, got {type(config).__name__}")
    repo = config.get("repository")
    if not isinstance(repo, dict):
        raise ValueError(f"{path.name}: repository must be a mapping with url (and branch), got {repo!r}")
    url, branch = repo.get("url"), repo.get("branch")
    branch = "main" if branch is None else branch
    if not isinstance(url, str) or not _URL.fullmatch(url):
        raise ValueError(f"{path.name}: repository.url must be an http(s) URL like https://github.com/owner/name, "
                         f"got {url!r}")
    if not isinstance(branch, str):
        raise ValueError(f"{path.name}: repository.branch must be a string, got {type(branch).__name__} {branch!r}")
    _check_branch(branch, path.name)
    return url, branch


def setup_cell(url: str, branch: str) -> str:
    """The set-up cell (py:percent text, ending with a blank line) for a repository.

    ``url`` and ``branch`` are written as string literals (JSON's, which Python reads the same
    way), so no value can change the cell's code.
    """
    return TEMPLATE.format(url=json.dumps(url), branch=json.dumps(branch))


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


def _plan() -> list[tuple[Path, str]]:
    """Every file :func:`main` would write, with its new text; raises before anything is written.

    Raises:
        ValueError: the repository setting is bad, or a source (named) has no set-up cell or is
            not a py:percent notebook.
    """
    import jupytext

    cell = setup_cell(*repository())
    out = []
    for src in sorted(SOURCES.glob("*.py")):
        old = src.read_text()
        try:
            text = with_setup_cell(old, cell)
            want = jupytext.writes(jupytext.reads(text, fmt="py:percent"), fmt="ipynb")
        except Exception as e:
            raise ValueError(f"{src.relative_to(ROOT)}: {e}") from e
        if text != old:
            out.append((src, text))
        nb = ROOT / "chapters" / (src.stem + ".ipynb")
        if _cells_of(nb) != _cells(want):
            out.append((nb, want))
    return out


def stale() -> list[str]:
    """Files that :func:`main` would change (relative paths)."""
    return [str(path.relative_to(ROOT)) for path, _ in _plan()]


def _cells(ipynb: str) -> list:
    """What a notebook says, without the random cell ids jupytext gives each conversion."""
    return [(c["cell_type"], "".join(c["source"]), c.get("metadata", {}), c.get("outputs"))
            for c in json.loads(ipynb)["cells"]]


def _cells_of(nb: Path):
    """:func:`_cells` of a notebook file, or None if it is missing or not a readable notebook."""
    try:
        return _cells(nb.read_text())
    except (OSError, ValueError, KeyError, TypeError):
        return None


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="only report what is out of date")
    args = ap.parse_args(argv)
    try:
        plan = _plan()  # everything is checked before the first file is written
    except ValueError as e:
        print(f"sync_chapters: {e}", file=sys.stderr)
        return 2
    if args.check:
        for path, _ in plan:
            print(f"out of date: {path.relative_to(ROOT)}", file=sys.stderr)
        return 1 if plan else 0
    from lcbook._io import atomic_write_bytes  # a killed run leaves each file old or new, never half

    for path, text in plan:
        atomic_write_bytes(text.encode(), path)
        print(f"wrote {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
