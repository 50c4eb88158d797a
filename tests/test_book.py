"""The book's sources: every TOC entry exists, chapters are committed without outputs, and each
chapter checks its own results (so a chapter that silently did nothing fails under nbval)."""

import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CHAPTERS = sorted((ROOT / "chapters").glob("*.ipynb"))


def _toc_files():
    files = []
    for line in (ROOT / "_toc.yml").read_text().splitlines():
        line = line.strip()
        if line.startswith("root:") or line.startswith("- file:"):
            files.append(line.split(":", 1)[1].strip())
    return files


def test_toc_entries_exist_and_list_every_chapter():
    files = _toc_files()
    for f in files:
        assert (ROOT / f).with_suffix(".md").exists() or (ROOT / f).with_suffix(".ipynb").exists(), f
    listed = {f for f in files if f.startswith("chapters/")}
    assert listed == {f"chapters/{p.stem}" for p in CHAPTERS}


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.name)
def test_chapter_is_committed_without_outputs_and_checks_itself(path):
    nb = json.loads(path.read_text())
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    assert all(not c.get("outputs") and c.get("execution_count") is None for c in code), "strip outputs"
    src = "\n".join("".join(c["source"]) for c in code)
    assert "import lcbook" in src
    assert "assert " in src, "a chapter must assert that its runs did real work"
    assert nb["metadata"]["kernelspec"]["name"] == "python3"
