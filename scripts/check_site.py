"""Open the built book's chapter pages in headless Chromium and check what a reader sees.

For every page of ``_toc.yml`` (the pages themselves, not the redirecting ``index.html``), served
over HTTP from ``_build/html`` with nothing else reachable:

* the page loads and has its title;
* every figure the page references exists and is a non-empty PNG/SVG;
* math is typeset by the local MathJax: ``mjx-container`` elements replace Sphinx's math spans,
  and no raw ``\\(..\\)``, ``\\[..\\]`` or ``$..$`` is left in the visible text;
* a page with widgets shows them rendered by the local widget manager (``widget-*`` elements),
  and the explorer chapter must have widgets.

Screenshots go to ``_build/screenshots/`` (CI artifacts only; never committed).

Usage: ``python scripts/check_site.py [--chromium PATH] [--timeout SECONDS]``. Exit status 1 on any
failure, with one line per problem; 2 if Chromium is missing.
"""

from __future__ import annotations

import argparse
import functools
import http.server
import re
import shutil
import subprocess
import sys
import threading
from html.parser import HTMLParser
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HTML = ROOT / "_build" / "html"
SHOTS = ROOT / "_build" / "screenshots"
MUST_HAVE_WIDGETS = {"chapters/10_explorer"}


def toc_pages():
    pages = []
    for line in (ROOT / "_toc.yml").read_text().splitlines():
        line = line.strip()
        if line.startswith("root:") or line.startswith("- file:"):
            pages.append(line.split(":", 1)[1].strip())
    return pages


class _Text(HTMLParser):
    """Visible text of a page (no script, style, code or math source)."""

    SKIP = {"script", "style", "pre", "code", "mjx-assistive-mml", "textarea", "noscript", "title", "template"}

    def __init__(self):
        super().__init__()
        self.depth, self.parts = 0, []

    def handle_starttag(self, tag, attrs):
        if tag in self.SKIP:
            self.depth += 1

    def handle_endtag(self, tag):
        if tag in self.SKIP and self.depth:
            self.depth -= 1

    def handle_data(self, data):
        if not self.depth:
            self.parts.append(data)


def visible_text(dom: str) -> str:
    p = _Text()
    p.feed(dom)
    return " ".join(p.parts)


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


# Raw TeX that MathJax should have typeset: \(..\), \[..\], $$..$$, or $..$ whose inside looks like
# math (a TeX command, a sub/superscript, braces or an equation), not prices such as "$5 and $10".
_RAW_MATH = [re.compile(r"\\\(.{1,400}?\\\)", re.S), re.compile(r"\\\[.{1,400}?\\\]", re.S),
             re.compile(r"\\begin\{[a-z*]+\}")]
_RAW_DOLLARS = [re.compile(r"\$\$([^$]{1,400}?)\$\$"),
                re.compile(r"(?<![\w$])\$(?=\S)([^$]{1,300}?)(?<=\S)\$(?![\w$])")]
_MATHY = re.compile(r"\\[a-zA-Z|{}]|[\^_{}=]")


def raw_math(text: str):
    """The first piece of raw (untypeset) TeX in ``text``, or None."""
    for pat in _RAW_MATH:
        m = pat.search(text)
        if m:
            return m.group(0)
    for pat in _RAW_DOLLARS:
        for m in pat.finditer(text):
            if _MATHY.search(m.group(1)):
                return m.group(0)
    return None


def serve():
    handler = functools.partial(_Quiet, directory=str(HTML))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return httpd


def chromium(binary, args, timeout):
    cmd = [binary, "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
           "--hide-scrollbars", "--virtual-time-budget=20000", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)


def check_page(binary, base, page, timeout):
    problems = []
    url = f"{base}/{page}.html"
    source = (HTML / f"{page}.html").read_text()
    try:
        dom = chromium(binary, ["--dump-dom", url], timeout).stdout
    except subprocess.TimeoutExpired:
        return [f"{page}: Chromium did not finish within {timeout} s"]
    if "<title>" not in dom or len(dom) < 1000:
        return [f"{page}: the page did not load ({len(dom)} bytes of DOM)"]
    for src in re.findall(r'<img[^>]+src="([^"]+)"', source):
        if src.startswith("data:") or src.startswith("http"):
            continue
        f = (HTML / page).parent / src
        if not f.is_file() or f.stat().st_size < 100:
            problems.append(f"{page}: figure {src} is missing or empty")
    math_spans = source.count('class="math notranslate nohighlight"')
    typeset = dom.count("<mjx-container")
    if math_spans and typeset < math_spans:
        problems.append(f"{page}: {math_spans} math spans but only {typeset} typeset by MathJax")
    text = visible_text(dom)
    raw = raw_math(text)
    if raw:
        problems.append(f"{page}: raw math in the rendered text: {raw[:60]!r}")
    views = source.count("application/vnd.jupyter.widget-view+json")
    rendered = len(re.findall(r'class="[^"]*\bwidget-(?:dropdown|image|html|box|vbox|hbox|inline-hbox|slider|button)\b', dom))
    if page in MUST_HAVE_WIDGETS and not views:
        problems.append(f"{page}: no widget views in the page (was the widget state saved?)")
    if views and not rendered:
        problems.append(f"{page}: {views} widget views but none rendered (widget manager not loaded?)")
    try:
        chromium(binary, ["--window-size=1280,2400", f"--screenshot={SHOTS / (page.replace('/', '_') + '.png')}", url],
                 timeout)
    except subprocess.TimeoutExpired:
        problems.append(f"{page}: screenshot timed out")
    print(f"  {page}: {len(re.findall(r'<img', source))} images, {typeset}/{math_spans} math typeset, "
          f"{rendered} widget elements for {views} views" + ("" if not problems else "  <-- FAILED"))
    return problems


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--chromium", default=shutil.which("chromium") or shutil.which("chromium-browser"))
    ap.add_argument("--timeout", type=int, default=120, help="seconds per page (default 120)")
    args = ap.parse_args(argv)
    if not args.chromium:
        print("check_site: Chromium not found (Debian: apt-get install chromium)", file=sys.stderr)
        return 2
    if not (HTML / "intro.html").is_file():
        print(f"check_site: no built book at {HTML}; build it first", file=sys.stderr)
        return 1
    SHOTS.mkdir(parents=True, exist_ok=True)
    httpd = serve()
    base = f"http://127.0.0.1:{httpd.server_address[1]}"
    print(f"check_site: {base} with {args.chromium}")
    problems = []
    try:
        for page in toc_pages():
            if not (HTML / f"{page}.html").is_file():
                problems.append(f"{page}: not built")
                continue
            problems += check_page(args.chromium, base, page, args.timeout)
    finally:
        httpd.shutdown()
    for p in problems:
        print("check_site: " + p, file=sys.stderr)
    print(f"check_site: {'FAILED' if problems else 'ok'}; screenshots in {SHOTS.relative_to(ROOT)}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
