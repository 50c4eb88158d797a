"""Open the built book's pages in headless Chromium, as a reader would, and check what they see.

Chromium is driven by Playwright (its Python package; the browser is the system's Chromium). For
every page of ``_toc.yml``, served over HTTP from ``_build/html`` with nothing else reachable, at
a 1280 px desktop window and a 390 px phone width:

* the page loads, with no console error, no script error, no failed request and no HTTP error
  (a missing font or a library loaded twice shows up here);
* every figure the page references exists and is a non-empty PNG/SVG;
* math is typeset by the local MathJax: ``mjx-container`` elements replace Sphinx's math spans,
  and no raw ``\\(..\\)``, ``\\[..\\]`` or ``$..$`` is left in the visible text;
* no display equation, table, image or code block runs past the right edge of the text without
  a scroll bar of its own, and the page does not scroll sideways;
* widgets are rendered by the local widget manager, each displayed dropdown and button exactly
  once (the explorer chapter must have widgets); every dropdown, when changed, changes the
  figure it controls, and every chooser (``lcbook.display.chooser``) changes figure or caption
  when its controls move.

Full-page screenshots at both widths go to ``_build/screenshots/`` (look at them; never committed).

Usage: ``python scripts/check_site.py [--chromium PATH] [--timeout SECONDS]``. Exit status 1 on any
failure, with one line per problem; 2 if Chromium is missing.
"""

from __future__ import annotations

import argparse
import functools
import http.server
import json
import re
import shutil
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


WIDTHS = {"desktop": (1280, 900), "phone": (390, 844)}

# Console messages that are not the book's problem: the theme reports its light/dark choice.
_BENIGN = [re.compile(r"^\[PST\]"), re.compile(r"^\[togglebutton\]"), re.compile(r"strict mode: use allowUnionTypes")]

# Elements that overflow the article to the right without a scrolling ancestor are cut off.
_CLIPPED_JS = """() => {
  const article = document.querySelector('.bd-article') || document.body;
  const right = article.getBoundingClientRect().right + 1;
  const out = [];
  const scrolls = (e) => {
    for (let a = e.parentElement; a && a !== article.parentElement; a = a.parentElement) {
      const o = getComputedStyle(a).overflowX;
      if ((o === 'auto' || o === 'scroll') && a.getBoundingClientRect().right <= right) return true;
    }
    return false;
  };
  for (const e of article.querySelectorAll('mjx-container[display="true"], table, img, pre, .widget-box')) {
    const r = e.getBoundingClientRect();
    if (r.width > 0 && r.right > right && !scrolls(e)) {
      out.push(e.tagName.toLowerCase() + ' ' + Math.round(r.width) + ' px wide: ' + (e.textContent || e.getAttribute('src') || '').trim().slice(0, 50));
    }
  }
  if (document.documentElement.scrollWidth > window.innerWidth + 1) out.push('the page scrolls sideways (' + document.documentElement.scrollWidth + ' px)');
  return out;
}"""

_VISIBLE_IMAGES_JS = """(root) => Array.from(root.querySelectorAll('img'))
    .filter(i => i.offsetParent !== null).map(i => i.src.slice(-64)).join(',')"""


def _widget_controls(source: str) -> dict:
    """How many dropdowns and sliders the page's displayed widget views hold (each should render once)."""
    state = re.search(r'<script type="application/vnd.jupyter.widget-state\+json">(.*?)</script>', source, re.S)
    if not state:
        return {}
    models = json.loads(state.group(1)).get("state", {})
    views = [json.loads(v)["model_id"] for v in
             re.findall(r'<script type="application/vnd.jupyter.widget-view\+json">(.*?)</script>', source, re.S)]
    counts, seen = {}, set()

    def walk(mid):
        m = models.get(mid)
        if m is None:
            return
        name = m.get("model_name", "")
        counts[name] = counts.get(name, 0) + 1
        for child in m.get("state", {}).get("children", []) or []:
            walk(str(child).removeprefix("IPY_MODEL_"))

    for v in views:
        if v not in seen:
            seen.add(v)
            walk(v)
    return counts


def check_page(browser, base, page, timeout):
    problems = []
    url = f"{base}/{page}.html"
    source = (HTML / f"{page}.html").read_text()
    for src in re.findall(r'<img[^>]+src="([^"]+)"', source):
        if src.startswith("data:") or src.startswith("http"):
            continue
        f = (HTML / page).parent / src
        if not f.is_file() or f.stat().st_size < 100:
            problems.append(f"{page}: figure {src} is missing or empty")
    summary = []
    for width_name, (w, h) in WIDTHS.items():
        ctx = browser.new_context(viewport={"width": w, "height": h}, device_scale_factor=1)
        tab = ctx.new_page()
        errors = []
        tab.on("console", lambda m: m.type == "error" and not any(b.search(m.text) for b in _BENIGN)
               and errors.append(f"console error: {m.text[:160]}"))
        tab.on("pageerror", lambda e: errors.append(f"script error: {str(e)[:160]}"))
        tab.on("requestfailed", lambda r: errors.append(f"request failed: {r.url.removeprefix(base)}"))
        tab.on("response", lambda r: r.status >= 400 and errors.append(f"HTTP {r.status}: {r.url.removeprefix(base)}"))
        try:
            tab.goto(url, wait_until="load", timeout=timeout * 1000)
            tab.wait_for_load_state("networkidle", timeout=timeout * 1000)
            tab.evaluate("() => window.MathJax && MathJax.startup && MathJax.startup.promise")
            tab.wait_for_timeout(500)
        except Exception as e:  # playwright's TimeoutError and navigation errors
            problems.append(f"{page} ({width_name}): did not load: {str(e).splitlines()[0]}")
            ctx.close()
            continue
        if width_name == "desktop":
            if not tab.title():
                problems.append(f"{page}: the page has no title")
            math_spans = source.count('class="math notranslate nohighlight"')
            typeset = tab.locator("mjx-container").count()
            if math_spans and typeset < math_spans:
                problems.append(f"{page}: {math_spans} math spans but only {typeset} typeset by MathJax")
            raw = raw_math(visible_text(tab.content()))
            if raw:
                problems.append(f"{page}: raw math in the rendered text: {raw[:60]!r}")
            views = source.count("application/vnd.jupyter.widget-view+json")
            rendered = tab.locator(".jupyter-widgets").count()
            if page in MUST_HAVE_WIDGETS and not views:
                problems.append(f"{page}: no widget views in the page (was the widget state saved?)")
            if views and not rendered:
                problems.append(f"{page}: {views} widget views but none rendered (widget manager not loaded?)")
            want = _widget_controls(source)
            for model, css in (("DropdownModel", ".widget-dropdown"), ("ButtonModel", "button.jupyter-button")):
                got = tab.locator(css).count()
                if want.get(model, 0) != got:
                    problems.append(f"{page}: {want.get(model, 0)} {model} views but {got} {css} on the page "
                                    f"(a widget rendered twice, or not at all)")
            problems += [f"{page}: {p}" for p in _use_controls(tab)]
            summary.append(f"{typeset}/{math_spans} math typeset, {rendered} widget elements for {views} views, "
                           f"{tab.locator('.lcbook-chooser').count()} choosers")
        problems += [f"{page} ({width_name}): {e}" for e in dict.fromkeys(errors)]
        problems += [f"{page} ({width_name}): clipped: {c}" for c in tab.evaluate(_CLIPPED_JS)]
        tab.screenshot(path=str(SHOTS / f"{page.replace('/', '_')}-{width_name}.png"), full_page=True)
        ctx.close()
    print(f"  {page}: {len(re.findall(r'<img', source))} images, " + "; ".join(summary)
          + ("" if not problems else "  <-- FAILED"))
    return problems


def _use_controls(tab) -> list:
    """Use every control as a reader would: each dropdown and chooser must change what is shown."""
    problems = []
    for i in range(tab.locator(".widget-dropdown select").count()):
        select = tab.locator(".widget-dropdown select").nth(i)
        options = select.locator("option")
        if options.count() < 2:
            continue
        area = tab.locator(".widget-dropdown").nth(i).locator(
            "xpath=ancestor::div[contains(@class,'widget-vbox')][1]")
        before = area.evaluate(_VISIBLE_IMAGES_JS)
        select.select_option(index=options.count() - 1)
        tab.wait_for_timeout(400)
        if area.evaluate(_VISIBLE_IMAGES_JS) == before:
            problems.append(f"dropdown {i + 1}: choosing another option did not change the view")
        select.select_option(index=0)
    for i in range(tab.locator(".lcbook-chooser").count()):
        root = tab.locator(".lcbook-chooser").nth(i)
        shown = lambda: root.evaluate("r => r.querySelector('img').src.slice(-64) + r.querySelector('.lcbook-chooser-caption').innerHTML")  # noqa: E731
        before = shown()
        for j in range(root.locator("[data-control]").count()):
            control = root.locator("[data-control]").nth(j)
            if control.evaluate("e => e.tagName") == "SELECT":
                n = control.locator("option").count()
                control.select_option(index=(int(control.input_value()) + 1) % n)
            else:
                control.evaluate("e => { e.value = String((Number(e.value) + 1) % (Number(e.max) + 1)); "
                                 "e.dispatchEvent(new Event('input')); }")
        if shown() == before:
            problems.append(f"chooser {i + 1}: moving its controls did not change the figure or caption")
    return problems


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--chromium", default=shutil.which("chromium") or shutil.which("chromium-browser"),
                    help="the Chromium binary Playwright drives (default: chromium on PATH)")
    ap.add_argument("--timeout", type=int, default=120, help="seconds per page (default 120)")
    args = ap.parse_args(argv)
    if not (HTML / "intro.html").is_file():
        print(f"check_site: no built book at {HTML}; build it first", file=sys.stderr)
        return 1
    SHOTS.mkdir(parents=True, exist_ok=True)
    httpd = serve()
    base = f"http://127.0.0.1:{httpd.server_address[1]}"
    print(f"check_site: {base} with {args.chromium}")
    problems = []
    from playwright.sync_api import sync_playwright

    try:
        with sync_playwright() as pw:
            try:  # the system's Chromium, else the one `python -m playwright install chromium` fetched
                browser = pw.chromium.launch(executable_path=args.chromium, args=["--no-sandbox", "--disable-dev-shm-usage"])
            except Exception as e:  # playwright's Error: no browser at that path
                print(f"check_site: cannot start Chromium ({str(e).splitlines()[0]}); install it (Debian: apt-get "
                      f"install chromium; elsewhere: .venv/bin/python -m playwright install chromium)", file=sys.stderr)
                return 2
            for page in toc_pages():
                if not (HTML / f"{page}.html").is_file():
                    problems.append(f"{page}: not built")
                    continue
                problems += check_page(browser, base, page, args.timeout)
            browser.close()
    finally:
        httpd.shutdown()
    for p in problems:
        print("check_site: " + p, file=sys.stderr)
    print(f"check_site: {'FAILED' if problems else 'ok'}; screenshots in {SHOTS.relative_to(ROOT)}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
