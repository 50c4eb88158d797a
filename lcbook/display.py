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
import math
import numbers
from typing import Any, Dict, Mapping, Optional, Sequence, Tuple

__all__ = ["Chooser", "chooser", "every", "Panels", "panels", "NARROW_PX", "MAX_PX", "MAX_PIXELS", "MIN_DPI",
           "Provenance", "provenance"]


#: The largest side, in pixels, of a rendered PNG (its size in inches, after the tight bounding
#: box, times dpi), and the largest number of pixels in one.
MAX_PX, MAX_PIXELS = 20000, 40_000_000

#: The smallest dpi that draws text (matplotlib's font renderer fails below a few dots per inch).
MIN_DPI = 10


def _check_pixels(what: str, size_in: Tuple[float, float], dpi: int) -> None:
    w, h = size_in
    if max(w, h) * dpi > MAX_PX or w * h * dpi * dpi > MAX_PIXELS:
        raise ValueError(f"{what}: {w:g} × {h:g} inches at dpi={dpi} is {w * dpi:.0f} × {h * dpi:.0f} pixels; "
                         f"at most {MAX_PX} pixels a side and {MAX_PIXELS:,} in all (make the figure or dpi "
                         "smaller, or keep artists inside the axes)")


def _check_dpi(dpi: Any) -> int:
    if isinstance(dpi, bool) or not isinstance(dpi, numbers.Integral) or dpi < MIN_DPI:
        raise ValueError(f"dpi: expected a whole number of dots per inch, at least {MIN_DPI}, got {dpi!r}")
    return int(dpi)


def _png(fig, dpi: int) -> str:
    """``fig`` as a base64 PNG; the figure is closed whether or not saving works.

    The figure's size is checked before saving; the tight bounding box that saving uses can grow
    it (an artist placed far outside the axes), so the saved image's size is checked too, from its
    header. (Measuring the tight box before saving costs about a third more time per figure;
    while saving, matplotlib itself refuses images over 2**16 pixels a side.)"""
    import matplotlib.pyplot as plt

    try:
        _check_pixels("figure", tuple(fig.get_size_inches()), dpi)
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    finally:
        plt.close(fig)
    data = buf.getvalue()
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")  # the IHDR chunk
    _check_pixels("figure (its tight bounding box)", (width / dpi, height / dpi), dpi)
    return base64.b64encode(data).decode("ascii")


def _text(v: Any) -> str:
    """How a control value reads on the page: exact for integers and fractions, 12 significant
    digits for other numbers (so 10**6 and 10**6 + 1 stay apart and 1e6 does not read "1e+06")."""
    if isinstance(v, (bool, str)):
        return str(v)
    if isinstance(v, numbers.Integral):
        return str(int(v))
    if isinstance(v, numbers.Rational):
        return str(v)
    return f"{float(v):.12g}"


def _kind(v: Any) -> str:
    """Values match only within a kind, so True is not 1 and "2" is not 2."""
    return "bool" if isinstance(v, bool) else "str" if isinstance(v, str) else "number"


def _plain(v: Any) -> Any:
    """A numpy boolean as Python's ``bool`` (numpy numbers are already ``numbers.Real``)."""
    return bool(v) if type(v).__name__ in ("bool_", "bool") and type(v).__module__ == "numpy" else v


def _check_value(label: str, v: Any) -> None:
    if not isinstance(v, (str, bool, numbers.Real)):
        raise TypeError(f"controls: {label!r}: values must be numbers, strings or booleans, got "
                        f"{type(v).__module__}.{type(v).__qualname__} {v!r}")
    if _kind(v) == "number":
        try:
            finite = math.isfinite(float(v))
        except OverflowError:  # an int too large for a float
            finite = False
        if not finite:
            raise ValueError(f"controls: {label!r}: values must be finite numbers (within float range), got {v!r:.40}")


def _position(values: Sequence, v: Any) -> Optional[int]:
    """Index of ``v`` among ``values`` (equal and of the same kind), or None."""
    for j, x in enumerate(values):
        if _kind(x) == _kind(v) and x == v:
            return j
    return None


def _positions(controls: Sequence, key: Tuple) -> list:
    """For each control, the index of ``key``'s value among its values (None where it has none)."""
    return [_position(values, v) for (_, values), v in zip(controls, key)]


def _values_at(controls: Sequence, pos: Sequence[int]) -> Tuple:
    """The controls' own values at ``pos`` (a key written with the values as the controls list them)."""
    return tuple(values[j] for (_, values), j in zip(controls, pos))


def _key(k: Any, n: int, what: str) -> Tuple:
    """A frame key or ``start`` as a tuple: a tuple (or list) of ``n`` values, or one value if n == 1."""
    if isinstance(k, (tuple, list)):
        k = tuple(_plain(v) for v in k)
    elif _plain(k) is not k:
        k = (_plain(k),)
    elif isinstance(k, (str, bool, numbers.Real)):
        k = (k,)
    else:
        raise TypeError(f"{what}: expected a tuple of one value per control, got {type(k).__name__} {k!r}")
    if len(k) != n:
        raise ValueError(f"{what}: {k!r} has {len(k)} values for {n} controls")
    return k


def _json_in_html(data: Any) -> str:
    """JSON that an HTML parser cannot end early: ``<``, ``>`` and ``&`` become ``\\u003c``
    and so on (still the same JSON), so no caption can close the ``<script>`` holding it."""
    return (json.dumps(data, sort_keys=True).replace("<", "\\u003c").replace(">", "\\u003e")
            .replace("&", "\\u0026"))


_RENDERS = itertools.count()


class Chooser:
    """Controls over precomputed frames (see :func:`chooser`); displays itself as HTML.

    Attributes:
        controls: ``[(label, [value, ...]), ...]`` in display order.
        frames: ``{key: (png, caption_html, alt)}`` with ``key`` a tuple of one value per
            control; ``png`` is a base64 PNG, a ``(wide, narrow)`` pair of them (a :class:`Panels`
            frame) or None; ``alt`` the image's alternative text.
        start: the key shown first.
    """

    def __init__(self, controls, frames, start, missing: str, alt: str):
        self.controls, self.frames, self.start, self.missing, self.alt = controls, frames, start, missing, alt

    def _data(self) -> dict:
        images, index, frames = [], {}, {}

        def at(png):
            if png is None:
                return None
            if png not in index:
                index[png] = len(images)
                images.append(png)
            return index[png]

        for key, (png, caption, alt) in self.frames.items():
            wide, narrow = png if isinstance(png, tuple) else (png, None)
            pos = "|".join(map(str, _positions(self.controls, key)))
            frames[pos] = {"image": at(wide), "narrow": at(narrow), "caption": caption, "alt": alt}
        return {"images": images, "frames": frames, "missing": self.missing, "narrow_px": NARROW_PX}

    def _repr_html_(self) -> str:
        return self.html()

    def html(self) -> str:
        """The page fragment: controls, caption, image, the frames as JSON and the script."""
        data = self._data()
        blob = _json_in_html(data)
        # The id must be unique on the page: a hash of everything shown, and a count of renders in
        # this process (the same chooser shown twice, or two equal ones, get two ids; a rebuilt
        # page gets the same ids).
        shown = json.dumps([[label, [_text(v) for v in values]] for label, values in self.controls]
                           + [[_text(v) for v in self.start], self.alt, self.missing])
        digest = hashlib.sha1((shown + blob).encode()).hexdigest()[:12]
        uid = f"lcbook-chooser-{digest}-{next(_RENDERS)}"
        parts = [f'<div class="lcbook-chooser" id="{uid}">', '<div class="lcbook-chooser-controls">']
        for i, ((label, values), v) in enumerate(zip(self.controls, self.start)):
            cid, at = f"{uid}-{i}", _position(values, v)
            parts.append('<span class="lcbook-chooser-control">')  # label, control and readout stay on one line
            parts.append(f'<label for="{cid}">{html.escape(label)}</label>')
            if all(_kind(x) == "number" for x in values):
                readouts = json.dumps([_text(x) for x in values])
                parts.append(f'<input type="range" id="{cid}" data-control="{i}" min="0" max="{len(values) - 1}" '
                             f'step="1" value="{at}" data-readouts=\'{html.escape(readouts)}\'>'
                             f'<output for="{cid}">{html.escape(_text(v))}</output>')
            else:
                opts = "".join(f'<option value="{j}"{" selected" if j == at else ""}>{html.escape(_text(x))}</option>'
                               for j, x in enumerate(values))
                parts.append(f'<select id="{cid}" data-control="{i}">{opts}</select>')
            parts.append("</span>")
        parts.append("</div>")
        png, caption, alt = self.frames.get(self.start, (None, self.missing, self.alt))
        png = png[0] if isinstance(png, tuple) else png  # the script swaps in the narrow layout on a phone
        src = f"data:image/png;base64,{png}" if png is not None else ""
        parts.append(f'<div class="lcbook-chooser-caption">{caption}</div>')
        parts.append(f'<img class="lcbook-chooser-image" alt="{html.escape(alt)}" src="{src}"'
                     f'{"" if png is not None else " hidden"}>')
        parts.append(f'<script type="application/json">{blob}</script>')
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
    var i = f ? ((small && small.matches && f.narrow !== null) ? f.narrow : f.image) : null;
    if (i !== null) {
      img.src = "data:image/png;base64," + data.images[i];
      img.alt = f.alt;
      img.hidden = false;
    } else {
      img.hidden = true;
    }
  }
  var small = window.matchMedia ? window.matchMedia("(max-width: " + data.narrow_px + "px)") : null;
  if (small && small.addEventListener) { small.addEventListener("change", show); }
  Array.prototype.forEach.call(inputs, function (e) { e.addEventListener("input", show); });
  show();
})();
</script>"""


def _controls(controls: Any) -> list:
    """``controls`` checked, as ``[(label, [value, ...]), ...]`` (see :func:`chooser`)."""
    if isinstance(controls, Mapping):
        controls = list(controls.items())
    elif isinstance(controls, (str, bytes)) or not isinstance(controls, Sequence):
        raise TypeError(f"controls: expected a list of (label, values) pairs, got {type(controls).__name__}")
    if not controls:
        raise ValueError("controls: need at least one (label, values) pair")
    out = []
    for c in controls:
        if not (isinstance(c, (tuple, list)) and len(c) == 2):
            raise TypeError(f"controls: each entry must be a (label, values) pair, got {c!r:.80}")
        label, values = c
        if not isinstance(label, str):
            raise TypeError(f"controls: a label must be a string, got {type(label).__name__} {label!r}")
        if not _is_sequence(values):
            raise TypeError(f"controls: {label!r}: values must be a list in display order, got "
                            f"{type(values).__name__} {values!r:.80}")
        values = [_plain(v) for v in values]
        if not values:
            raise ValueError(f"controls: {label!r} has no values")
        seen, texts = set(), set()  # a set compares by ==, so 1, 1.0 and True are one value
        for v in values:
            _check_value(label, v)
            if v in seen or _text(v) in texts:
                raise ValueError(f"controls: {label!r} repeats a value (or two values read the same): "
                                 f"{', '.join(repr(x) for x in values)}")
            seen.add(v)
            texts.add(_text(v))
        if label in {lab for lab, _ in out}:
            raise ValueError(f"controls: two controls are labelled {label!r}")
        out.append((label, values))
    return out


def chooser(frames: Mapping[Tuple, Any], controls: Sequence[Tuple[str, Sequence]], start: Optional[Tuple] = None,
            missing: str = "no result for this choice", alt: str = "figure for the chosen values",
            dpi: int = 110) -> Chooser:
    """A control per axis of ``frames`` that shows the frame of the chosen values, without a kernel.

    Every frame is rendered now (matplotlib figures become PNGs, and are closed); the page switches
    between them with a small inline script. Numbers get a slider, anything else a menu; a
    combination with no frame shows ``missing``.

    Args:
        frames: ``{key: frame}``; ``key`` is a tuple with one value per control, in the order of
            ``controls``; ``frame`` is a matplotlib ``Figure`` or a :class:`Panels` (whose
            stacked layout is shown on a page narrower than :data:`NARROW_PX`), an HTML caption
            (``str``), or a ``(figure or None, caption)`` pair. Keys need not cover every
            combination. A caption is an HTML fragment and must be well formed: the first one
            shown is written into the page as it is (one that opens a comment or a ``<script>``
            would swallow the rest of the chooser); escape text with ``html.escape``.
        controls: ``[(label, values), ...]``: each control's label and its values in display order.
        start: the key shown first (default: the first key of ``frames``).
        missing: HTML shown for a combination that has no frame.
        alt: the image's alternative text (a :class:`Panels` frame keeps its own).
        dpi: resolution of the rendered figures (dots per inch); a :class:`Panels` frame is
            already rendered, at the ``dpi`` given to :func:`panels`.

    Returns:
        A :class:`Chooser`; display it (it is the last expression of a cell, or ``display(c)``).

    Raises:
        ValueError: ``frames`` or ``controls`` is empty; a control has no values, repeats one (by
            ``==``, so ``1`` and ``True`` or ``1`` and ``1.0`` cannot share a control) or has two
            that read the same; a value is not finite; two controls share a label; a key has the
            wrong length, holds a value its control does not list (``True`` does not match ``1``)
            or names the same choice as another key; ``start`` is not a key; ``dpi`` is not a
            whole number of at least :data:`MIN_DPI`; a figure would be more than :data:`MAX_PX`
            pixels a side or :data:`MAX_PIXELS` in all (checked on its size before rendering and
            on the saved image, whose tight bounding box can be larger).
        TypeError: ``controls`` is not a list of ``(label, values)`` pairs (or a dict); a label is
            not a string; a value is not a number, string or boolean; a frame is not a figure, a
            non-empty HTML string or a ``(figure or None, HTML string)`` pair; ``missing`` or
            ``alt`` is not a string. Nothing is rendered (no figure is closed) when one of these
            is found. If saving a figure fails (matplotlib's error is raised unchanged), every
            figure given is closed.
    """
    controls = _controls(controls)
    if not isinstance(frames, Mapping):
        raise TypeError(f"frames: expected a dict {{key: frame}}, got {type(frames).__name__}")
    if not frames:
        raise ValueError("frames: empty; give at least one frame")
    for name, text in (("missing", missing), ("alt", alt)):
        if not isinstance(text, str):
            raise TypeError(f"{name}: expected a string, got {type(text).__name__} {text!r}")
    dpi = _check_dpi(dpi)
    todo = []
    seen: Dict[Tuple, Any] = {}
    for key, frame in frames.items():
        key = _key(key, len(controls), "frames: key")
        pos = _positions(controls, key)
        for (label, values), v, j in zip(controls, key, pos):
            if j is None:
                raise ValueError(f"frames: key {key!r}: {v!r} is not one of the values of {label!r} "
                                 f"({', '.join(repr(x) for x in values)})")
        if tuple(pos) in seen:
            raise ValueError(f"frames: keys {seen[tuple(pos)]!r} and {key!r} name the same choice")
        seen[tuple(pos)] = key
        if isinstance(frame, tuple) and len(frame) == 2:
            fig, caption = frame
        elif isinstance(frame, str):
            fig, caption = None, frame
        else:
            fig, caption = frame, ""
        if frame is None or (fig is not None and not hasattr(fig, "savefig") and not isinstance(fig, Panels)) \
                or not isinstance(caption, str) or (fig is None and not caption):
            raise TypeError(f"frames[{key!r}]: expected a matplotlib Figure or Panels, an HTML string or a (figure "
                            f"or None, HTML string) pair, got {type(frame).__name__} {frame!r:.80}")
        if fig is not None and not isinstance(fig, Panels) and hasattr(fig, "get_size_inches"):
            _check_pixels(f"frames[{key!r}]", tuple(fig.get_size_inches()), dpi)
        todo.append((_values_at(controls, pos), fig, caption))
    if start is None:
        start = todo[0][0]
    start = _key(start, len(controls), "start")
    pos = _positions(controls, start)
    if tuple(pos) not in seen:  # also where a value has no position (None)
        raise ValueError(f"start: {start!r} is not a key of frames")
    start = _values_at(controls, pos)
    # Everything is checked before the first figure is rendered (and closed); if a figure fails
    # to render, the ones not rendered yet are closed too, so nothing is left open.
    rendered = {}
    for i, (key, fig, caption) in enumerate(todo):
        try:
            if fig is None:
                png, frame_alt = None, alt
            elif isinstance(fig, Panels):
                png, frame_alt = (fig.wide, fig.narrow), fig.alt
            else:
                png, frame_alt = _png(fig, dpi), alt
        except BaseException:
            _close_figures(f for _, f, _ in todo[i + 1:])
            raise
        rendered[key] = (png, caption, frame_alt)
    return Chooser(controls, rendered, start, missing, alt)


def _close_figures(figs) -> None:
    import matplotlib.pyplot as plt

    for f in figs:
        if f is not None and not isinstance(f, Panels):
            plt.close(f)


#: Pages narrower than this many CSS pixels (a phone) show a multi-panel figure's stacked layout.
NARROW_PX = 640

_MAX_PANELS = 16


class Panels:
    """A figure of several panels in two layouts (see :func:`panels`); displays itself as HTML,
    a ``<picture>`` that shows ``narrow`` on pages narrower than :data:`NARROW_PX` and ``wide``
    elsewhere.

    Attributes:
        wide: the panels side by side (rows of ``columns``), a base64 PNG.
        narrow: the panels one above the other, a base64 PNG.
        alt: the image's alternative text.
    """

    def __init__(self, wide: str, narrow: str, alt: str):
        for name, v in (("wide", wide), ("narrow", narrow)):
            if not isinstance(v, str) or not v:
                raise TypeError(f"Panels: {name}: expected a base64 PNG (a non-empty string), got {type(v).__name__}")
        if not isinstance(alt, str):
            raise TypeError(f"Panels: alt: expected a string, got {type(alt).__name__} {alt!r}")
        self.wide, self.narrow, self.alt = wide, narrow, alt

    def _repr_html_(self) -> str:
        return self.html()

    def html(self) -> str:
        """The ``<picture>`` element, both PNGs inline (the page needs no other file)."""
        return (f'<picture class="lcbook-panels"><source media="(max-width: {NARROW_PX}px)" '
                f'srcset="data:image/png;base64,{self.narrow}">'
                f'<img alt="{html.escape(self.alt)}" src="data:image/png;base64,{self.wide}"></picture>')

    def __repr__(self) -> str:
        return f"Panels({self.alt!r})"


def _is_sequence(v: Any) -> bool:
    """A list, tuple, numpy array or other sized iterable with an order: not a string, a dict or
    a set."""
    return not isinstance(v, (str, bytes, Mapping, set, frozenset)) and hasattr(v, "__len__") \
        and hasattr(v, "__iter__")


_SHARE = ("all", "row", "col", "none")


def _share(name: str, v: Any):
    v = _plain(v)
    if isinstance(v, bool) or (isinstance(v, str) and v in _SHARE):
        return v
    raise ValueError(f"{name}: expected True, False or one of {', '.join(map(repr, _SHARE))}, got {v!r}")


def _close_new_figures(before: set, keep) -> None:
    """Close the figures opened since ``before`` other than ``keep`` (figures that ``draw`` opened
    itself would otherwise show up below the cell), with a warning."""
    import warnings

    import matplotlib.pyplot as plt

    stray = [num for num in plt.get_fignums() if num not in before and (keep is None or num != keep.number)]
    for num in stray:
        plt.close(num)
    if stray and keep is not None:
        warnings.warn(f"panels: draw opened {len(stray)} figure(s) of its own; they were closed (draw only "
                      "the axes it is given)", stacklevel=3)


def _positive(name: str, v: Any) -> float:
    if isinstance(v, bool) or not isinstance(v, numbers.Real) or not math.isfinite(v) or v <= 0:
        raise ValueError(f"{name}: expected a positive finite number, got {v!r}")
    return float(v)


def panels(draw, n: int, panel_size: Tuple[float, float] = (5.0, 3.6), columns: Optional[int] = None,
           alt: str = "a figure of several panels", dpi: int = 130, sharex: bool = False, sharey: bool = False,
           width_ratios: Optional[Sequence[float]] = None, narrow_columns: int = 1) -> Panels:
    """Draw a figure of ``n`` panels twice: side by side for a wide page, one above the other (or
    in rows of ``narrow_columns``) for a phone, where side-by-side panels would shrink their labels
    to a few pixels.

    Args:
        draw: ``draw(fig, axes)``, called once per layout with the matplotlib ``Figure`` (in
            constrained layout: a figure legend goes ``loc="outside lower center"``, and no
            ``tight_layout`` is needed) and a list of ``n`` ``Axes`` in reading order; it plots and
            labels them and returns nothing. Both calls get the same data.
        n: number of panels, 1 to 16.
        panel_size: ``(width, height)`` of one panel in inches, both > 0 (a tuple, list or array).
        columns: panels per row in the wide layout (default ``n``: one row), 1 to ``n``.
        alt: the image's alternative text.
        dpi: resolution of both PNGs (dots per inch), a whole number of at least :data:`MIN_DPI`.
        sharex, sharey: share the panels' x or y axis in both layouts: ``True``/``"all"``,
            ``"row"``, ``"col"`` or ``False``/``"none"`` (as ``plt.subplots``). With a shared x
            axis, inner panels hide their x tick labels, except those with no panel below them.
        width_ratios: relative panel widths in the wide layout's rows (``columns`` positive
            numbers: a tuple, list or array); the narrow layout gives its panels equal widths.
        narrow_columns: panels per row in the narrow layout, 1 to ``columns`` (small panels such
            as images may stand two abreast on a phone).

    Returns:
        A :class:`Panels`; display it (as a cell's last expression, or ``display(p)``), or pass it
        as a :func:`chooser` frame.

    Raises:
        TypeError: ``draw`` is not callable; ``alt`` is not a string.
        ValueError: ``n``, ``columns``, ``narrow_columns`` or ``dpi`` out of range or not an
            integer; ``panel_size`` not two positive numbers; ``width_ratios`` not ``columns``
            positive numbers; ``sharex``/``sharey`` not one of the values above; a layout more than
            :data:`MAX_PX` pixels a side or :data:`MAX_PIXELS` in all (before drawing, and on the
            saved image, whose tight bounding box can be larger). Whatever ``draw`` or matplotlib
            raises (a bad mathtext label, say) is raised unchanged, and every figure it opened is
            closed. If ``draw`` opens figures of its own, they are closed with a warning.
    """
    import matplotlib.pyplot as plt

    if not callable(draw):
        raise TypeError(f"draw: expected a function draw(fig, axes), got {type(draw).__name__} {draw!r:.80}")
    if isinstance(n, bool) or not isinstance(n, numbers.Integral) or not 1 <= n <= _MAX_PANELS:
        raise ValueError(f"n: expected a whole number of panels from 1 to {_MAX_PANELS}, got {n!r}")
    n = int(n)
    if columns is None:
        columns = n
    if isinstance(columns, bool) or not isinstance(columns, numbers.Integral) or not 1 <= columns <= n:
        raise ValueError(f"columns: expected a whole number from 1 to n = {n}, got {columns!r}")
    columns = int(columns)
    if isinstance(narrow_columns, bool) or not isinstance(narrow_columns, numbers.Integral) \
            or not 1 <= narrow_columns <= columns:
        raise ValueError(f"narrow_columns: expected a whole number from 1 to columns = {columns}, got {narrow_columns!r}")
    narrow_columns = int(narrow_columns)
    if not _is_sequence(panel_size) or len(panel_size) != 2:
        raise ValueError(f"panel_size: expected (width, height) in inches, got {panel_size!r}")
    width, height = (_positive(f"panel_size[{i}]", v) for i, v in enumerate(panel_size))
    dpi = _check_dpi(dpi)
    if not isinstance(alt, str):
        raise TypeError(f"alt: expected a string, got {type(alt).__name__} {alt!r}")
    sharex, sharey = _share("sharex", sharex), _share("sharey", sharey)
    ratios = None
    if width_ratios is not None:
        if not _is_sequence(width_ratios) or len(width_ratios) != columns:
            raise ValueError(f"width_ratios: expected {columns} positive numbers (one per column), got {width_ratios!r}")
        ratios = [_positive(f"width_ratios[{i}]", v) for i, v in enumerate(width_ratios)]
    rows, narrow_rows = -(-n // columns), -(-n // narrow_columns)
    layouts = [(rows, columns, (width * columns, height * rows), ratios),
               (narrow_rows, narrow_columns, (width * narrow_columns, height * narrow_rows), None)]
    for name, (_, _, size, _) in zip(("wide layout", "narrow layout"), layouts):
        _check_pixels(f"panels ({name})", size, dpi)
    pngs = []
    for nrows, ncols, size, wr in layouts:
        before = set(plt.get_fignums())
        fig = None
        try:
            fig, grid = plt.subplots(nrows, ncols, figsize=size, squeeze=False, sharex=sharex, sharey=sharey,
                                     gridspec_kw={"width_ratios": wr} if wr else None, layout="constrained")
            axes = list(grid.ravel())
            for extra in axes[n:]:
                extra.remove()
            if sharex in (True, "all", "col"):
                # a panel with no panel below it (the last row is not full) keeps its x tick labels
                for i in range(max(0, n - ncols), n):
                    axes[i].xaxis.set_tick_params(which="both", labelbottom=True)
            draw(fig, axes[:n])
        except BaseException:
            if fig is not None:
                plt.close(fig)
            _close_new_figures(before, keep=None)
            raise
        _close_new_figures(before, keep=fig)
        pngs.append(_png(fig, dpi))
    return Panels(pngs[0], pngs[1], alt)


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
        ValueError: ``records`` is empty, or a record's time is not a number of seconds >= 0.
        TypeError: ``records`` or a record is not a mapping, or ``title`` is not a string.
    """
    if not isinstance(records, Mapping):
        raise TypeError(f"records: expected a dict {{what: record}}, got {type(records).__name__}")
    if not records:
        raise ValueError("records: empty; give at least one {what: record}")
    if not isinstance(title, str):
        raise TypeError(f"title: expected a string, got {type(title).__name__} {title!r}")
    rows = []
    for what, r in records.items():
        if not isinstance(r, Mapping):
            raise TypeError(f"records[{what!r}]: expected a dict, got {type(r).__name__}")
        row = {"what": str(what)}
        for key, head in _FIELDS:
            if key == "seconds":
                k = next((k for k in ("lc_seconds", "train_seconds", "seconds") if r.get(k) is not None), None)
                if k is not None:
                    s = r[k]
                    if isinstance(s, bool) or not isinstance(s, numbers.Real) or not math.isfinite(s) or s < 0:
                        raise ValueError(f"records[{what!r}][{k!r}]: expected a time in seconds (a number >= 0), "
                                         f"got {s!r}")
                    row[head] = f"{s / 60:.0f} min" if s >= 120 else f"{s:.0f} s"
            elif r.get(key) is not None:
                v = str(r[key])
                if key == "date":
                    v = v[:10]
                elif key == "git_commit":  # a short hash, keeping a "+changes" mark
                    commit, plus, rest = v.partition("+")
                    v = commit[:10] + plus + rest
                row[head] = v
        rows.append(row)
    return Provenance(rows, title)
