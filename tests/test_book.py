"""The book's sources: every TOC entry exists, chapters are committed without outputs, and each
chapter checks its own results (so a chapter that silently did nothing fails under nbval)."""

import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CHAPTERS = sorted((ROOT / "chapters").glob("*.ipynb"))


def _check_site():
    """scripts/check_site.py as a module (it reads the TOC the same way the tests must)."""
    import importlib.util
    spec = importlib.util.spec_from_file_location("check_site", ROOT / "scripts" / "check_site.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _toc_files():
    return _check_site().toc_pages()


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


COLAB_MARK = 'find_spec("lcbook") is None'


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.name)
def test_chapter_matches_its_source(path):
    """Chapters are authored as py:percent files in chapters/src and converted with jupytext; the
    committed notebook must be the conversion of the committed source (no hand edits lost)."""
    jupytext = pytest.importorskip("jupytext")
    src = ROOT / "chapters" / "src" / (path.stem + ".py")
    assert src.is_file(), f"{path.name} has no source {src.relative_to(ROOT)}"
    want = jupytext.read(src)
    got = json.loads(path.read_text())
    pairs = [(c.cell_type, c.source) for c in want.cells]
    assert [(c["cell_type"], "".join(c["source"])) for c in got["cells"]] == pairs, (
        f"{path.name} differs from {src.name}: run .venv/bin/jupytext --to ipynb -o {path} {src}")


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.name)
def test_chapter_runs_on_colab_and_checks_deterministic_output(path):
    nb = json.loads(path.read_text())
    code = ["".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code"]
    assert COLAB_MARK in code[0], "the first code cell installs lcbook where it is missing (Colab)"
    checked = [c for c in nb["cells"] if "nbval-check-output" in c.get("metadata", {}).get("tags", [])]
    assert checked, "at least one cell with deterministic output (bit counts, nonzeros, ...) is checked by nbval"
    assert not any("NBVAL_" in c for c in code), "nbval markers are cell tags (nbval-check-output), not comments"
    first = "".join(nb["cells"][0]["source"])
    assert nb["cells"][0]["cell_type"] == "markdown" and first.startswith("# "), "a chapter opens with its title"


def test_site_uses_local_math_and_widget_scripts():
    """The built site must render math and widgets offline: _config.yml points at the copies that
    scripts/fetch_web_assets.py installs, never at a CDN."""
    config = (ROOT / "_config.yml").read_text()
    fetch = (ROOT / "scripts" / "fetch_web_assets.py").read_text()
    for script, package in [("vendor/mathjax/tex-mml-chtml.js", '"mathjax", "mathjax"'),
                            ("vendor/requirejs/require.js", '"requirejs", "requirejs"'),
                            ("vendor/html-manager/embed-amd.js", '"html-manager", "@jupyter-widgets/html-manager"')]:
        assert script in config, script
        assert package in fetch, package
    assert "cdn" not in config.lower()


def test_site_check_finds_raw_math_and_ignores_prices_and_hidden_text():
    cs = _check_site()
    raw = ["with $\\alpha$ fixed", "weights $\\mathbf{w}$ here", "$w_i$", "$K=2$", "left \\(x\\) raw",
           "\\[ a \\]", "$$x^2$$", "\\begin{align} x"]
    fine = ["It costs $5 on C:\\data\\run, or $10", "The PID is $$ in bash; echo $$", "$5. then C:\\temp and $10"]
    for t in raw:
        assert cs.raw_math(cs.visible_text(f"<p>{t}</p>")), t
    for t in fine:
        assert cs.raw_math(cs.visible_text(f"<p>{t}</p>")) is None, t
    hidden = "<head><title>Cost \\(\\alpha\\)</title></head><p>ok</p><pre>$\\beta$</pre><code>\\(x\\)</code>"
    assert cs.raw_math(cs.visible_text(hidden)) is None


HIDDEN_TAGS = {"remove-cell", "remove-input", "hide-input", "hide-cell"}


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.name)
def test_checks_run_but_are_out_of_sight(path):
    """Every assert runs (the build and nbval execute every cell), but no cell that shows its code on
    the page holds one: checks sit in removed cells, or in cells whose input is hidden."""
    import ast

    nb = json.loads(path.read_text())
    shown = [c for c in nb["cells"] if c["cell_type"] == "code"
             and not HIDDEN_TAGS & set(c.get("metadata", {}).get("tags", []))]
    for c in shown:
        src = "".join(c["source"])
        asserts = [n for n in ast.walk(ast.parse(src)) if isinstance(n, ast.Assert)]
        assert not asserts, f"{path.name}: a visible cell asserts (line {asserts[0].lineno}): {src[:120]!r}"


def _sync():
    import importlib.util
    spec = importlib.util.spec_from_file_location("sync_chapters", ROOT / "scripts" / "sync_chapters.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_set_up_cells_and_notebooks_are_made_from_the_repository_setting():
    """The repository URL is one setting (_config.yml); every chapter's set-up cell is made from it."""
    pytest.importorskip("jupytext")
    sync = _sync()
    assert sync.stale() == [], "run .venv/bin/python scripts/sync_chapters.py"
    url, branch = sync.repository()
    for src in sorted((ROOT / "chapters" / "src").glob("*.py")):
        assert f'REPOSITORY, BRANCH = "{url}", "{branch}"' in src.read_text(), src.name
    cell = sync.setup_cell("https://example.org/fork/lcbook", "dev")
    assert sync.with_setup_cell(sync.with_setup_cell((ROOT / "chapters/src/01_lenet300_mnist.py").read_text(), cell),
                                cell).count("https://example.org/fork/lcbook") == 1
    with pytest.raises(ValueError, match="no set-up cell"):
        sync.with_setup_cell("# %%\nprint(1)\n", cell)


@pytest.mark.parametrize("config, match", [
    ("- a\n- b\n", "expected a YAML mapping"),
    ("title: x\n", "repository must be a mapping"),
    ("repository: https://github.com/a/b\n", "repository must be a mapping"),
    ("repository:\n  url: 3\n", "repository.url must be"),
    ('repository:\n  url: "https://github.com/a/b\\"); import os; os.system(\\"x"\n', "repository.url must be"),
    ("repository:\n  url: https://github.com/a/b\n  branch: 3\n", "branch must be a string"),
    ("repository:\n  url: https://github.com/a/b\n  branch: a..b\n", "not a git branch name"),
    ("repository:\n  url: https://github.com/a/b\n  branch: -x\n", "not a git branch name"),
    ("repository:\n  url: https://github.com/a/b\n  branch: x.lock\n", "not a git branch name"),
])
def test_a_bad_repository_setting_is_refused_by_name(tmp_path, config, match):
    path = tmp_path / "_config.yml"
    path.write_text(config)
    with pytest.raises(ValueError, match=match):
        _sync().repository(path)


def test_a_missing_branch_is_main_and_the_cell_holds_the_setting_as_literals(tmp_path):
    sync = _sync()
    path = tmp_path / "_config.yml"
    path.write_text("repository:\n  url: https://github.com/a/b.git\n  branch:\n")
    assert sync.repository(path) == ("https://github.com/a/b.git", "main")
    cell = sync.setup_cell("https://github.com/a/b.git", "feature/x-1")
    namespace = {}
    exec(compile(cell.split("if importlib.util.find_spec")[0], "cell", "exec"), namespace)
    assert (namespace["REPOSITORY"], namespace["BRANCH"]) == ("https://github.com/a/b.git", "feature/x-1")


def test_sync_writes_nothing_when_one_source_is_bad(tmp_path, monkeypatch, capsys):
    """main() plans every file first: a source without a set-up cell stops it, naming the file,
    before any other file is rewritten; a corrupt notebook is reported as out of date."""
    pytest.importorskip("jupytext")
    sync = _sync()
    (tmp_path / "chapters" / "src").mkdir(parents=True)
    (tmp_path / "_config.yml").write_text("repository:\n  url: https://github.com/a/b\n")
    good = (ROOT / "chapters/src/01_lenet300_mnist.py").read_text()
    (tmp_path / "chapters/src/a.py").write_text(good)
    (tmp_path / "chapters/a.ipynb").write_text("{not json")
    monkeypatch.setattr(sync, "ROOT", tmp_path)
    monkeypatch.setattr(sync, "SOURCES", tmp_path / "chapters" / "src")
    assert sync.stale() == ["chapters/src/a.py", "chapters/a.ipynb"]
    (tmp_path / "chapters/src/b.py").write_text("# %%\nprint(1)\n")
    assert sync.main([]) == 2
    assert "chapters/src/b.py" in capsys.readouterr().err
    assert (tmp_path / "chapters/src/a.py").read_text() == good and (tmp_path / "chapters/a.ipynb").read_text() == "{not json"
    (tmp_path / "chapters/src/b.py").unlink()
    assert sync.main([]) == 0 and sync.stale() == []
    assert sync.main(["--check"]) == 0


def test_set_up_cell_without_internet_says_in_one_line_what_to_install(tmp_path, monkeypatch, capsys):
    """Where lcbook is missing and the repository cannot be reached, the cell stops with one line
    (IPython shows ``_render_traceback_`` instead of a traceback) naming the repository."""
    sync = _sync()
    missing = tmp_path / "no-such-repository"
    code = sync.setup_cell(str(missing), "main").replace('find_spec("lcbook")', 'find_spec("lcbook_not_installed_here")')
    monkeypatch.chdir(tmp_path)
    from IPython.core.interactiveshell import InteractiveShell

    result = InteractiveShell.instance().run_cell(code)
    shown = capsys.readouterr().out.strip()
    assert not result.success and type(result.error_in_exec).__name__ == "SetupError"
    assert len(shown.splitlines()) == 1 and str(missing) in shown and "pip install -e" in shown, shown
    assert "Traceback" not in shown and not (tmp_path / "lcbook-src").exists()


def test_site_extension_drops_a_repeated_inline_script_of_the_head_only():
    import importlib.util
    spec = importlib.util.spec_from_file_location("lcbook_site", ROOT / "_ext" / "lcbook_site.py")
    ext = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(ext)
    a, b = '    <script>const X = 1;</script>', '    <script>var y = 2;</script>'
    page = "\n".join(["<html><head>", a, b, a, '<script src="s.js"></script>', '<script src="s.js"></script>',
                      "</head><body>", a, "</body></html>"])
    fixed = ext.once(page)
    head, body = fixed.split("</head>")
    assert head.count(a) == 1 and head.count(b) == 1 and head.count('src="s.js"') == 2  # files are Sphinx's business
    assert body.count(a) == 1 and ext.once(fixed) == fixed and ext.once("<p>no head</p>") == "<p>no head</p>"


def test_bibliography_labels_read_as_the_text_cites_them():
    import importlib.util
    import re

    from pybtex.database import parse_file
    from pybtex.plugin import find_plugin

    spec = importlib.util.spec_from_file_location("lcbook_site", ROOT / "_ext" / "lcbook_site.py")
    ext = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(ext)
    ext.register_styles()
    bib = parse_file(str(ROOT / "references.bib"))
    style = find_plugin("pybtex.style.formatting", "lcbook")()
    labels = {e.key: e.label for e in style.format_entries(bib.entries.values())}
    assert set(labels) == set(bib.entries)
    for key, entry in bib.entries.items():
        n = len(entry.persons["author"])
        assert "\\" not in labels[key] and "{" not in labels[key], labels[key]  # LaTeX decoded
        assert re.search(", " + entry.fields["year"] + "[ab]?$", labels[key]), labels[key]
        assert (" et al." in labels[key]) == (n > 2) and (" and " in labels[key]) == (n == 2), labels[key]
    part5 = next(k for k, e in bib.entries.items() if "Part V" in e.fields["title"])
    assert labels[part5] == "Carreira-Perpiñán and Idelbayev, 2021"
    assert len(set(labels.values())) == len(labels)  # same authors and year: 2020a, 2020b
    assert labels["idelbayev2020flexible"].endswith("2020a") and labels["idelbayev2020lowrank"].endswith("2020b")


#: The teaching chapters: each has a code exercise that a check cell marks (lcbook.exercises).
CORE = ("01", "03", "04", "05", "06", "07", "08", "09")


@pytest.mark.parametrize("number", CORE)
def test_core_chapter_has_a_checked_code_exercise_with_a_hidden_executed_solution(number):
    """A stub the reader completes (it raises NotImplementedError), visible with its check; then a
    solution in a folded cell that defines the same function, and a removed cell asserting that the
    check accepts it (so the build and nbval prove the exercise can be solved)."""
    import ast
    import re

    (path,) = [p for p in CHAPTERS if p.name.startswith(number + "_")]
    cells = [c for c in json.loads(path.read_text())["cells"] if c["cell_type"] == "code"]
    tags = [set(c.get("metadata", {}).get("tags", [])) for c in cells]
    src = ["".join(c["source"]) for c in cells]
    stub = [i for i, s in enumerate(src) if "raise NotImplementedError  # your code here" in s and not tags[i]]
    assert stub, f"{path.name}: no visible exercise stub"
    i = stub[0]
    name = re.search(r"^def (\w+)\(", src[i], re.M).group(1)
    assert f"exercises.check_{name}({name})" in src[i]
    sol = next(j for j in range(i + 1, len(cells)) if f"def {name}(" in src[j])
    assert tags[sol] == {"hide-cell"} and "NotImplementedError" not in src[sol]
    ast.parse(src[sol])
    check = next(j for j in range(sol + 1, len(cells)) if f"check_{name}" in src[j] and "assert" in src[j])
    assert "remove-cell" in tags[check] and f"assert exercises.check_{name}({name}).ok" in src[check]


@pytest.mark.parametrize("number", CORE)
def test_core_chapter_has_a_widget_that_works_on_the_static_page(number):
    """A chooser (lcbook.display.chooser: every frame drawn at build time, switched by a small
    script, no kernel needed) in a cell the page shows."""
    (path,) = [p for p in CHAPTERS if p.name.startswith(number + "_")]
    cells = [c for c in json.loads(path.read_text())["cells"] if c["cell_type"] == "code"]
    shown = [c for c in cells if not {"remove-cell", "remove-output"} & set(c.get("metadata", {}).get("tags", []))]
    assert any("display.chooser(" in "".join(c["source"]) for c in shown), f"{path.name}: no chooser on the page"
