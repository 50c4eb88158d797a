"""Small fixes to the built pages (a local Sphinx extension, named in _config.yml).

* Each inline script is emitted once per page: Jupyter Book 1 emits sphinx-thebe's and
  sphinx-togglebutton's inline configuration twice in every page's head, which the browser
  reports as "Identifier 'THEBE_JS_URL' has already been declared". After the build, a second
  copy of an identical one-line ``<script>…</script>`` in a page's ``<head>`` is dropped.
"""

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


def setup(app):
    app.connect("build-finished", _after_build)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
