"""Fetch the JavaScript the built book needs (MathJax, RequireJS, the Jupyter widgets HTML manager)
from the npm registry into ``_vendor/vendor/`` (copied to the site's ``vendor/`` by
``html_extra_path``; not under ``_static/``, whose every ``.js`` Jupyter Book adds to every page)
so that the site renders math and widgets without
internet access. Each package is pinned by version and by the registry's sha512 integrity hash; a
download that does not match is refused and nothing is replaced. Idempotent: a package already
extracted with the same hash is kept.

Usage: ``python scripts/fetch_web_assets.py`` (the registry can be changed with ``NPM_REGISTRY``).
"""

from __future__ import annotations

import base64
import hashlib
import http.client
import io
import os
import shutil
import sys
import tarfile
import tempfile
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VENDOR = ROOT / "_vendor" / "vendor"
REGISTRY = os.environ.get("NPM_REGISTRY", "https://registry.npmjs.org").rstrip("/")

# (folder under _vendor/vendor, npm package, version, sha512 integrity, root folder in the tarball,
#  paths under that root to keep: files or folder prefixes)
PACKAGES = [
    ("mathjax", "mathjax", "3.2.2",
     "sha512-Bt+SSVU8eBG27zChVewOicYs7Xsdt40qm4+UpHyX7k0/O9NliPc+x77k1/FEsPsjKPZGJvtRZM1vO+geW0OhGw==",
     "package/es5/", ("tex-mml-chtml.js", "input/", "output/chtml/", "ui/")),
    ("html-manager", "@jupyter-widgets/html-manager", "1.0.15",
     "sha512-5thBIV6ymNgmPVOHvzx+gGy8ZSKmSazhtGw4/c4xJDVzRhG9PTeQsRjF3FUTopvFi//SABeNz1yp47bCrJ3CQA==",
     "package/dist/", ("embed-amd.js", ".woff2", ".woff", ".ttf", ".eot", ".svg")),
    ("requirejs", "requirejs", "2.3.7",
     "sha512-DouTG8T1WanGok6Qjg2SXuCMzszOo0eHeH9hDZ5Y4x8Je+9JB38HdTLT4/VA8OaUhBa0JPVHJ0pyBkM1z+pDsw==",
     "package/", ("require.js",)),
]


def _download(name: str, version: str) -> bytes:
    base = name.split("/")[-1]
    url = f"{REGISTRY}/{name}/-/{base}-{version}.tgz"
    try:
        with urllib.request.urlopen(url, timeout=120) as r:
            return r.read()
    except (OSError, http.client.HTTPException) as e:  # URLError and HTTPError are OSErrors
        raise SystemExit(f"fetch_web_assets: cannot download {name}@{version} from {url} ({e}); "
                         f"check the network or set NPM_REGISTRY to a reachable npm registry") from None


def _wanted(rel: str, keep) -> bool:
    return any(rel == k or (k.endswith("/") and rel.startswith(k)) or (k.startswith(".") and "/" not in rel
               and rel.endswith(k)) for k in keep)


def fetch(folder: str, name: str, version: str, integrity: str, root: str, keep) -> None:
    dest = VENDOR / folder
    stamp = dest / ".integrity"
    if stamp.is_file() and stamp.read_text() == integrity:
        return
    data = _download(name, version)
    algo, _, want = integrity.partition("-")
    if algo not in hashlib.algorithms_available or not want:
        raise SystemExit(f"fetch_web_assets: integrity {integrity[:20]!r}... of {name} is not '<algorithm>-<base64 hash>'")
    got = base64.b64encode(hashlib.new(algo, data).digest()).decode()
    if got != want:
        raise SystemExit(f"fetch_web_assets: {name}@{version} from {REGISTRY} does not match its pinned "
                         f"{algo} hash (got {got[:16]}..., want {want[:16]}...); nothing was changed")
    VENDOR.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=VENDOR, prefix=f".{folder}-"))
    try:
        try:
            tar = tarfile.open(fileobj=io.BytesIO(data), mode="r:gz")
        except tarfile.TarError as e:
            raise SystemExit(f"fetch_web_assets: {name}@{version} is not a gzipped tarball ({e}); nothing was changed")
        with tar:
            for m in tar.getmembers():
                if not m.isfile() or not m.name.startswith(root):
                    continue
                rel = m.name[len(root):]
                if not _wanted(rel, keep):
                    continue
                if ".." in Path(rel).parts:
                    raise SystemExit(f"fetch_web_assets: unsafe path {m.name!r} in {name}@{version}")
                out = tmp / rel
                out.parent.mkdir(parents=True, exist_ok=True)
                out.write_bytes(tar.extractfile(m).read())
        if not any(tmp.rglob("*")):
            raise SystemExit(f"fetch_web_assets: {name}@{version} has none of the files {keep} under {root!r}; "
                             f"nothing was changed")
        (tmp / ".integrity").write_text(integrity)
        tmp.chmod(0o755)  # mkdtemp makes it private; a web server must read it
        old = VENDOR / f".{folder}-old"
        shutil.rmtree(old, ignore_errors=True)
        if dest.exists():
            dest.rename(old)
        tmp.rename(dest)
        shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"fetch_web_assets: {name}@{version} -> {dest}")


# The widget manager's stylesheet asks for its icon fonts at "@jupyter-widgets/html-manager/dist/"
# relative to the page (webpack's public path), not beside embed-amd.js: copies of them go where the
# pages with widgets (chapters/) look, so the browser finds them instead of logging 404s.
FONT_PAGES = ("chapters",)


def place_widget_fonts() -> None:
    src = VENDOR / "html-manager"
    for pages in FONT_PAGES:
        dest = ROOT / "_vendor" / pages / "@jupyter-widgets" / "html-manager" / "dist"
        dest.mkdir(parents=True, exist_ok=True)
        for f in sorted(src.iterdir()):
            if f.suffix in (".woff2", ".woff", ".ttf") and not (dest / f.name).is_file():
                shutil.copyfile(f, dest / f.name)


def main() -> int:
    for pkg in PACKAGES:
        fetch(*pkg)
    place_widget_fonts()
    return 0


if __name__ == "__main__":
    sys.exit(main())
