"""Small fixes to the built pages (a local Sphinx extension, named in _config.yml).

* Each inline script is emitted once per page: Jupyter Book 1 emits sphinx-thebe's and
  sphinx-togglebutton's inline configuration twice in every page's head, which the browser
  reports as "Identifier 'THEBE_JS_URL' has already been declared". After the build, a second
  copy of an identical one-line ``<script>…</script>`` in a page's ``<head>`` is dropped.
* The bibliography is labelled as the text cites: the pages cite author–year ("He et al.,
  2016"), so the bibliography's entries carry the same labels instead of pybtex's alpha keys
  ("HZRS16"), in the formatting style ``lcbook`` (pybtex's plain, sorted by author and year).
  Two works of the same authors and year get 2020a and 2020b (in key order); citations print
  the same labels (the reference style ``lcbook``), separated by semicolons.
"""

import dataclasses
import re
from pathlib import Path

_INLINE = re.compile(r"^\s*<script>[^\n]*</script>\s*$")


def once(text: str) -> str:
    """``text`` (an HTML page) with repeated identical one-line inline scripts of its head removed."""
    head_end = text.find("</head>")
    if head_end < 0:
        return text
    seen, lines = set(), []
    for line in text[:head_end].split("\n"):
        if _INLINE.match(line):
            if line.strip() in seen:
                continue
            seen.add(line.strip())
        lines.append(line)
    return "\n".join(lines) + text[head_end:]


def _after_build(app, exception):
    if exception is not None or app.builder.format != "html":
        return
    for page in Path(app.outdir).rglob("*.html"):
        text = page.read_text(encoding="utf-8")
        fixed = once(text)
        if fixed != text:
            page.write_text(fixed, encoding="utf-8")


def _surname(person) -> str:
    import codecs

    import latexcodec  # noqa: F401  (registers the "ulatex" codec; a dependency of pybtex)

    name = " ".join(person.prelast_names + person.last_names)
    return codecs.decode(name, "ulatex").replace("{", "").replace("}", "")


def author_year(entry) -> str:
    """``"A, 2021"``, ``"A and B, 2021"`` or ``"A et al., 2021"`` (surnames, LaTeX decoded), as
    sphinxcontrib-bibtex's author_year citations read."""
    people = entry.persons.get("author") or entry.persons.get("editor") or []
    names = [_surname(p) for p in people]
    who = (names[0] if len(names) == 1 else " and ".join(names) if len(names) == 2
           else f"{names[0]} et al." if names else entry.key)
    return f"{who}, {entry.fields.get('year', 'n.d.')}"


def register_styles():
    """Register the pybtex formatting style ``lcbook`` (labels from :func:`author_year`) and the
    sphinxcontrib-bibtex reference style ``lcbook`` (citations print those labels)."""
    from pybtex.plugin import register_plugin
    from pybtex.style.formatting.plain import Style as Plain
    from pybtex.style.labels import BaseLabelStyle

    class AuthorYearLabels(BaseLabelStyle):
        def format_labels(self, sorted_entries):
            entries = list(sorted_entries)
            labels = [author_year(e) for e in entries]
            total = {label: labels.count(label) for label in labels}
            years = sorted(range(len(entries)), key=lambda i: entries[i].key)  # a, b, ... in key order
            suffix, seen = {}, {}
            for i in years:
                if total[labels[i]] > 1:  # two works of the same authors and year: 2020a, 2020b
                    seen[labels[i]] = seen.get(labels[i], 0) + 1
                    suffix[i] = "abcdefghijklmnopqrstuvwxyz"[seen[labels[i]] - 1]
            return [label + suffix.get(i, "") for i, label in enumerate(labels)]

    class Style(Plain):
        default_label_style = "lcbook-author-year"

    register_plugin("pybtex.style.labels", "lcbook-author-year", AuthorYearLabels)
    register_plugin("pybtex.style.formatting", "lcbook", Style)

    from sphinxcontrib.bibtex.plugin import register_plugin as register_reference_style
    from sphinxcontrib.bibtex.style.referencing import BracketStyle
    from sphinxcontrib.bibtex.style.referencing.label import LabelReferenceStyle

    @dataclasses.dataclass
    class CiteAsLabelled(LabelReferenceStyle):
        """In-text citations print the bibliography's label: [He et al., 2016; Ioffe and Szegedy, 2015]."""

        bracket_parenthetical: BracketStyle = dataclasses.field(default_factory=lambda: BracketStyle(sep="; "))
        bracket_textual: BracketStyle = dataclasses.field(default_factory=lambda: BracketStyle(sep="; "))

    register_reference_style("sphinxcontrib.bibtex.style.referencing", "lcbook", CiteAsLabelled, force=True)


def setup(app):
    register_styles()
    app.connect("build-finished", _after_build)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
