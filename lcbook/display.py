"""What the book's pages show besides figures: controls that work on the static page, and one
collapsed provenance box per chapter.

:func:`chooser` turns figures computed when the book is built into a control (sliders for
numbers, menus for names) that switches between them in the browser, with a small inline script:
it works on the rendered site, in Jupyter and on Colab, and needs no Python kernel (unlike
ipywidgets callbacks). :func:`provenance` gathers where a chapter's numbers come from (reference
records, stored results: profile, hardware, date, commit, command) into one ``<details>`` box, so
the text and tables stay about compression.
"""

from __future__ import annotations

import base64
import hashlib
import html
import io
import itertools
import json
import numbers
from typing import Any, Dict, Mapping, Optional, Sequence, Tuple

__all__ = ["Chooser", "chooser", "every", "Provenance", "provenance"]


def _png(fig, dpi: int) -> str:
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _text(v: Any) -> str:
    if isinstance(v, numbers.Real) and not isinstance(v, bool):
        return f"{v:g}"
    return str(v)


class Chooser:
    """Controls over precomputed frames (see :func:`chooser`); displays itself as HTML.

    Attributes:
        controls: ``[(label, [value, ...]), ...]`` in display order.
        frames: ``{key: (png_base64 or None, caption_html)}`` with ``key`` a tuple of one value
            per control.
        start: the key shown first.
    """

    def __init__(self, controls, frames, start, missing: str, alt: str):
        self.controls, self.frames, self.start, self.missing, self.alt = controls, frames, start, missing, alt

    def _data(self) -> dict:
        images, index, frames = [], {}, {}
        for key, (png, caption) in self.frames.items():
            if png is not None and png not in index:
                index[png] = len(images)
                images.append(png)
            pos = "|".join(str(values.index(v)) for (_, values), v in zip(self.controls, key))
            frames[pos] = {"image": None if png is None else index[png], "caption": caption}
        return {"images": images, "frames": frames, "missing": self.missing}

    def _repr_html_(self) -> str:
        return self.html()

    def html(self) -> str:
        """The page fragment: controls, caption, image, the frames as JSON and the script."""
        data = self._data()
        blob = json.dumps(data, sort_keys=True)
        uid = "lcbook-chooser-" + hashlib.sha1(blob.encode()).hexdigest()[:12]
        parts = [f'<div class="lcbook-chooser" id="{uid}">', '<div class="lcbook-chooser-controls">']
        for i, ((label, values), v) in enumerate(zip(self.controls, self.start)):
            cid, at = f"{uid}-{i}", values.index(v)
            parts.append(f'<label for="{cid}">{html.escape(label)}</label>')
            if all(isinstance(x, numbers.Real) and not isinstance(x, bool) for x in values):
                readouts = json.dumps([_text(x) for x in values])
                parts.append(f'<input type="range" id="{cid}" data-control="{i}" min="0" max="{len(values) - 1}" '
                             f'step="1" value="{at}" data-readouts=\'{html.escape(readouts)}\'>'
                             f'<output for="{cid}">{html.escape(_text(v))}</output>')
            else:
                opts = "".join(f'<option value="{j}"{" selected" if j == at else ""}>{html.escape(_text(x))}</option>'
                               for j, x in enumerate(values))
                parts.append(f'<select id="{cid}" data-control="{i}">{opts}</select>')
        parts.append("</div>")
        png, caption = self.frames.get(self.start, (None, self.missing))
        src = f"data:image/png;base64,{png}" if png is not None else ""
        parts.append(f'<div class="lcbook-chooser-caption">{caption}</div>')
        parts.append(f'<img class="lcbook-chooser-image" alt="{html.escape(self.alt)}" src="{src}"'
                     f'{"" if png is not None else " hidden"}>')
        parts.append(f'<script type="application/json">{blob.replace("</", "<" + chr(92) + "/")}</script>')
        parts.append("</div>")
        parts.append(_SCRIPT.replace("@ID@", uid))
        return "\n".join(parts)

    def __repr__(self) -> str:
        return (f"Chooser({len(self.frames)} frames over "
                + ", ".join(f"{label} ∈ {{{', '.join(_text(v) for v in values)}}}" for label, values in self.controls)
                + ")")


_SCRIPT = """<script>
(function () {
  var root = document.getElementById("@ID@");
  if (!root || root.dataset.ready) { return; }
  root.dataset.ready = "1";
  var data = JSON.parse(root.querySelector('script[type="application/json"]').textContent);
  var inputs = root.querySelectorAll("[data-control]");
  var img = root.querySelector("img.lcbook-chooser-image");
  var caption = root.querySelector(".lcbook-chooser-caption");
  function show() {
    var key = Array.prototype.map.call(inputs, function (e) {
      if (e.dataset.readouts) {
        var out = e.nextElementSibling;
        if (out) { out.textContent = JSON.parse(e.dataset.readouts)[Number(e.value)]; }
      }
      return e.value;
    }).join("|");
    var f = data.frames[key];
    caption.innerHTML = f ? f.caption : data.missing;
    if (f && f.image !== null) {
      img.src = "data:image/png;base64," + data.images[f.image];
      img.hidden = false;
    } else {
      img.hidden = true;
    }
  }
  Array.prototype.forEach.call(inputs, function (e) { e.addEventListener("input", show); });
  show();
})();
</script>"""


def chooser(frames: Mapping[Tuple, Any], controls: Sequence[Tuple[str, Sequence]], start: Optional[Tuple] = None,
            missing: str = "no result for this choice", alt: str = "figure for the chosen values",
            dpi: int = 110) -> Chooser:
    """A control per axis of ``frames`` that shows the frame of the chosen values, without a kernel.

    Every frame is rendered now (matplotlib figures become PNGs, and are closed); the page switches
    between them with a small inline script. Numbers get a slider, anything else a menu; a
    combination with no frame shows ``missing``.

    Args:
        frames: ``{key: frame}``; ``key`` is a tuple with one value per control, in the order of
            ``controls``; ``frame`` is a matplotlib ``Figure``, an HTML caption (``str``), or a
            ``(Figure or None, caption)`` pair. Keys need not cover every combination.
        controls: ``[(label, values), ...]``: each control's label and its values in display order.
        start: the key shown first (default: the first key of ``frames``).
        missing: HTML shown for a combination that has no frame.
        alt: the image's alternative text.
        dpi: resolution of the rendered figures (dots per inch).

    Returns:
        A :class:`Chooser`; display it (it is the last expression of a cell, or ``display(c)``).

    Raises:
        ValueError: ``frames`` or ``controls`` is empty, a control has no values or repeats one,
            a key has the wrong length or a value its control does not list, or ``start`` is not a key.
        TypeError: a frame is neither a figure, a string nor a ``(figure, caption)`` pair.
    """
    controls = [(str(label), list(values)) for label, values in controls]
    if not controls:
        raise ValueError("controls: need at least one (label, values) pair")
    for label, values in controls:
        if not values:
            raise ValueError(f"controls: {label!r} has no values")
        if len({_text(v) for v in values}) != len(values):
            raise ValueError(f"controls: {label!r} repeats a value: {values}")
    if not frames:
        raise ValueError("frames: empty; give at least one frame")
    rendered: Dict[Tuple, Tuple[Optional[str], str]] = {}
    for key, frame in frames.items():
        key = tuple(key) if isinstance(key, tuple) else (key,)
        if len(key) != len(controls):
            raise ValueError(f"frames: key {key!r} has {len(key)} values for {len(controls)} controls")
        for (label, values), v in zip(controls, key):
            if v not in values:
                raise ValueError(f"frames: key {key!r}: {v!r} is not one of the values of {label!r} ({values})")
        fig, caption = (frame if isinstance(frame, tuple) and len(frame) == 2 else
                        (None, frame) if isinstance(frame, str) else (frame, ""))
        if fig is not None and not hasattr(fig, "savefig"):
            raise TypeError(f"frames[{key!r}]: expected a matplotlib Figure, an HTML string or a (Figure, caption) "
                            f"pair, got {type(frame).__name__}")
        rendered[key] = (None if fig is None else _png(fig, dpi), str(caption))
    if start is None:
        start = next(iter(rendered))
    start = tuple(start) if isinstance(start, tuple) else (start,)
    if start not in rendered:
        raise ValueError(f"start: {start!r} is not a key of frames")
    return Chooser(controls, rendered, start, missing, alt)


def every(*axes: Sequence) -> list:
    """All keys over ``axes`` (``itertools.product`` as a list), for building ``frames``."""
    return list(itertools.product(*axes))


_FIELDS = [("profile", "profile"), ("hardware", "hardware"), ("date", "date"), ("git_commit", "commit"),
           ("seconds", "time"), ("command", "command")]


class Provenance:
    """Where a chapter's numbers come from (see :func:`provenance`); displays itself as HTML."""

    def __init__(self, rows: Sequence[Dict[str, str]], title: str):
        self.rows, self.title = list(rows), title

    def _repr_html_(self) -> str:
        return self.html()

    def html(self) -> str:
        """The ``<details>`` box with one table row per record."""
        head = "".join(f"<th>{html.escape(h)}</th>" for h in ["what", *(h for _, h in _FIELDS)])
        body = "".join("<tr>" + "".join(f"<td>{html.escape(r.get(h, ''))}</td>" for h in ["what", *(h for _, h in _FIELDS)])
                       + "</tr>" for r in self.rows)
        return (f'<details class="lcbook-provenance"><summary>{html.escape(self.title)} '
                f'({len(self.rows)} {"entry" if len(self.rows) == 1 else "entries"})</summary>'
                f'<div class="lcbook-table-scroll"><table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'
                f"</div></details>")

    def __repr__(self) -> str:
        return f"{self.title}: " + "; ".join(f"{r['what']} ({r.get('commit', '?')})" for r in self.rows)


def provenance(records: Mapping[str, Mapping], title: str = "Provenance: where this chapter's numbers come from") -> Provenance:
    """One collapsed box listing, for each stored record the chapter uses, how it was made.

    Args:
        records: ``{what: record}``: a reference record (:func:`lcbook.references.reference`), a
            stored result (:func:`lcbook.experiments.load_results`) or any dict with some of
            ``profile``, ``hardware``, ``date``, ``git_commit``, ``command`` and a time in seconds
            (``lc_seconds``, ``train_seconds`` or ``seconds``).
        title: the box's summary line.

    Returns:
        A :class:`Provenance`; display it.

    Raises:
        ValueError: ``records`` is empty.
        TypeError: a record is not a mapping.
    """
    if not records:
        raise ValueError("records: empty; give at least one {what: record}")
    rows = []
    for what, r in records.items():
        if not isinstance(r, Mapping):
            raise TypeError(f"records[{what!r}]: expected a dict, got {type(r).__name__}")
        row = {"what": str(what)}
        for key, head in _FIELDS:
            if key == "seconds":
                s = next((r[k] for k in ("lc_seconds", "train_seconds", "seconds") if isinstance(r.get(k), numbers.Real)), None)
                if s is not None:
                    row[head] = f"{s / 60:.0f} min" if s >= 120 else f"{s:.0f} s"
            elif r.get(key) is not None:
                v = str(r[key])
                row[head] = v[:10] if key in ("date", "git_commit") else v
        rows.append(row)
    return Provenance(rows, title)
