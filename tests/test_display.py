"""lcbook.display: the static-page chooser and the provenance box."""

import base64
import html
import math
import json
import re

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from lcbook import display  # noqa: E402


def _fig(y):
    fig, ax = plt.subplots(figsize=(2, 1.5))
    ax.plot([0, 1], [0, y])
    return fig


def _data(c):
    page = c.html()
    blob = re.search(r'<script type="application/json">(.*?)</script>', page, re.S).group(1)
    return page, json.loads(blob)


def test_every_key_finds_its_own_figure_and_missing_keys_say_so():
    keys = [(k, f) for k in (2, 4) for f in ("none", "1%")]
    c = display.chooser({key: (_fig(i), f"<b>{key}</b>") for i, key in enumerate(keys[:3])},
                        [("K", [2, 4]), ("sparse", ["none", "1%"])], missing="no run")
    page, data = _data(c)
    assert len(data["images"]) == 3 and set(data["frames"]) == {"0|0", "0|1", "1|0"}
    for i, key in enumerate(keys[:3]):
        pos = f"{[2, 4].index(key[0])}|{['none', '1%'].index(key[1])}"
        assert data["frames"][pos]["caption"] == f"<b>{key}</b>"
        png = base64.b64decode(data["images"][data["frames"][pos]["image"]])
        assert png.startswith(b"\x89PNG")
    assert "1|1" not in data["frames"] and data["missing"] == "no run"
    # numbers get a slider, names a menu; the first frame is in the page without the script
    assert page.count('type="range"') == 1 and page.count("<select") == 1
    assert f'src="data:image/png;base64,{data["images"][0]}"' in page
    assert plt.get_fignums() == [], "the chooser closes the figures it renders"


def _ids(page):
    return re.findall(r'id="(lcbook-chooser-[\w-]+?)"', page)


def test_identical_figures_are_stored_once_and_every_render_has_its_own_id():
    a = display.chooser({(1,): _fig(1), (2,): _fig(1)}, [("x", [1, 2])])
    b = display.chooser({(1,): _fig(1), (2,): _fig(1)}, [("x", [1, 2])])
    c = display.chooser({(1,): _fig(1), (2,): _fig(1)}, [("y", [1, 2])])
    assert len(_data(a)[1]["images"]) == 1
    pages = [a.html(), a.html(), b.html(), c.html()]
    roots = [_ids(p)[0] for p in pages]
    assert len(set(roots)) == 4, "two copies on one page must not share an id (the second would stay dead)"
    for page, root in zip(pages, roots):
        assert f'getElementById("{root}")' in page
        assert all(i == root or i.startswith(root + "-") for i in _ids(page))
    # the id's hash part depends on everything shown, the label too
    digest = [r.rsplit("-", 1)[0] for r in roots]
    assert digest[0] == digest[1] == digest[2] != digest[3]


def test_numbers_read_exactly_and_distinct_numbers_stay_apart():
    c = display.chooser({(10**6,): "a", (10**6 + 1,): "b", (0.1,): "c"}, [("n", [0.1, 10**6, 10**6 + 1])])
    page = c.html()
    readouts = json.loads(html.unescape(re.search(r"data-readouts='([^']*)'", page).group(1)))
    assert readouts == ["0.1", "1000000", "1000001"]
    assert "e+06" not in page


def test_true_is_not_1_and_equal_values_cannot_share_a_control():
    with pytest.raises(ValueError, match="repeats"):
        display.chooser({(1,): "a"}, [("x", [1, True])])
    with pytest.raises(ValueError, match="repeats"):
        display.chooser({(1,): "a"}, [("x", [1, 1.0])])
    with pytest.raises(ValueError, match="read the same"):
        display.chooser({(1,): "a"}, [("x", [1, "1"])])
    with pytest.raises(ValueError, match="True is not one of the values"):
        display.chooser({(True,): "a"}, [("x", [1, 2])])
    with pytest.raises(ValueError, match="'2' is not one of the values"):
        display.chooser({("2",): "a"}, [("x", [1, 2])])
    # booleans get a menu, and the key (False,) finds the value False, not 0
    page, data = _data(display.chooser({(False,): "off", (True,): "on"}, [("sparse", [False, True])], start=(True,)))
    alt = "figure for the chosen values"
    assert "<select" in page and data["frames"] == {"0": {"caption": "off", "image": None, "narrow": None, "alt": alt},
                                                      "1": {"caption": "on", "image": None, "narrow": None, "alt": alt}}
    assert '<option value="1" selected>True</option>' in page


def test_nothing_in_a_caption_can_end_the_data_script():
    evil = "<!--<script></script>--> & </script><script>alert(1)</script>"
    page, data = _data(display.chooser({("a",): evil}, [("x", ["a"])], missing=evil))
    assert data["frames"]["0"]["caption"] == evil and data["missing"] == evil
    blob = re.search(r'<script type="application/json">(.*?)</script>', page, re.S).group(1)
    assert "<" not in blob and ">" not in blob and "&" not in blob


@pytest.mark.parametrize("frames, controls, start, match", [
    ({}, [("x", [1])], None, "frames: empty"),
    ({(1,): "a"}, [], None, "controls: need"),
    ({(1,): "a"}, [("x", [])], None, "'x' has no values"),
    ({(1,): "a"}, [("x", [1, 1])], None, "repeats"),
    ({(1, 2): "a"}, [("x", [1])], None, "2 values for 1 controls"),
    ({(3,): "a"}, [("x", [1, 2])], None, "3 is not one of the values of 'x'"),
    ({(1,): "a"}, [("x", [1, 2])], (2,), "start"),
])
def test_bad_input_names_the_argument(frames, controls, start, match):
    with pytest.raises(ValueError, match=match):
        display.chooser(frames, controls, start=start)


@pytest.mark.parametrize("frames, controls, start, match", [
    ({(1,): "a"}, [("x", [1, math.nan])], None, "finite"),
    ({(1,): "a"}, [("x", [1]), ("x", [2])], None, "two controls are labelled 'x'"),
    ({(1,): "a", 1: "b"}, [("x", [1])], None, "name the same choice"),
])
def test_more_bad_input_names_the_argument(frames, controls, start, match):
    with pytest.raises(ValueError, match=match):
        display.chooser(frames, controls, start=start)


@pytest.mark.parametrize("frames, controls, kwargs, match", [
    ({(1,): 3.5}, [("x", [1])], {}, r"frames\[\(1,\)\]"),
    ({(1,): None}, [("x", [1])], {}, r"frames\[\(1,\)\]"),
    ({(1,): (None, 3)}, [("x", [1])], {}, r"frames\[\(1,\)\]"),
    ({(1,): "a"}, {"x": "abc"}, {}, "values must be a list"),
    ({(1,): "a"}, [("x",)], {}, "pair"),
    ({(1,): "a"}, "x", {}, "controls: expected a list"),
    ({(1,): "a"}, [(1, [1])], {}, "label must be a string"),
    ({(1,): "a"}, [("x", [[1]])], {}, "values must be numbers"),
    ({(1,): "a"}, [("x", [1])], {"start": {1: 2}}, "start: expected a tuple"),
    ({(1,): "a"}, [("x", [1])], {"alt": 3}, "alt: expected a string"),
    ([((1,), "a")], [("x", [1])], {}, "frames: expected a dict"),
])
def test_a_value_of_the_wrong_type_is_refused_by_name(frames, controls, kwargs, match):
    with pytest.raises(TypeError, match=match):
        display.chooser(frames, controls, **kwargs)


def test_a_refused_chooser_renders_and_closes_nothing():
    figs = {(1,): _fig(1), (2,): _fig(2)}
    with pytest.raises(ValueError, match="start"):
        display.chooser(figs, [("x", [1, 2])], start=(3,))
    assert len(plt.get_fignums()) == 2
    plt.close("all")


def test_controls_may_be_a_dict_and_values_a_range_or_array():
    import numpy as np

    c = display.chooser({(0, 0.5): "a", (1, 1.0): "b"}, {"i": range(2), "f": np.array([0.5, 1.0])}, start=(1, 1.0))
    assert c.start == (1, 1.0) and "a" in c.html()


def test_provenance_lists_each_record_in_one_collapsed_box():
    box = display.provenance({"reference": {"profile": "quick", "hardware": "2 CPU", "date": "2026-12-02T10:00:00",
                                            "git_commit": "0123456789abcdef", "train_seconds": 600},
                              "Q+P run": {"command": "python -m lcbook run x <y>", "lc_seconds": 30}})
    page = box.html()
    assert page.startswith("<details") and page.count("<tr>") == 3
    assert "2026-12-02" in page and "0123456789" in page and "abcdef" not in page
    assert "10 min" in page and "30 s" in page and "&lt;y&gt;" in page
    with pytest.raises(ValueError, match="records: empty"):
        display.provenance({})
    with pytest.raises(TypeError, match=r"records\['x'\]"):
        display.provenance({"x": 3})


def test_provenance_keeps_the_changes_mark_and_refuses_bad_records():
    page = display.provenance({"run": {"git_commit": "0123456789abcdef+changes", "seconds": 5}}).html()
    assert "0123456789+changes" in page
    for bad in (-1, math.nan, True, "10"):
        with pytest.raises(ValueError, match=r"records\['run'\]\['seconds'\]"):
            display.provenance({"run": {"seconds": bad}})
    with pytest.raises(TypeError, match="records: expected a dict"):
        display.provenance([{"profile": "quick"}])
    with pytest.raises(TypeError, match="title"):
        display.provenance({"run": {}}, title=3)


def test_a_number_beyond_float_range_is_a_named_value_error():
    with pytest.raises(ValueError, match="finite numbers"):
        display.chooser({(10**400,): "x"}, [("n", [10**400])])


def _size(png_b64):
    from PIL import Image
    import io

    return Image.open(io.BytesIO(base64.b64decode(png_b64))).size


def test_panels_draw_both_layouts_wide_side_by_side_and_narrow_stacked():
    calls = []

    def draw(fig, axes):
        calls.append((fig, len(axes), [tuple(ax.get_subplotspec().get_geometry()[:2]) for ax in axes]))
        for i, ax in enumerate(axes):
            ax.plot([0, 1], [0, i])
            ax.set_title(f"panel {i}")

    p = display.panels(draw, 3, panel_size=(2.0, 1.5), alt="three <panels>", dpi=50)
    assert [c[1] for c in calls] == [3, 3] and calls[0][0] is not calls[1][0]
    assert calls[0][2] == [(1, 3)] * 3 and calls[1][2] == [(3, 1)] * 3  # one row, then one column
    (ww, wh), (nw, nh) = _size(p.wide), _size(p.narrow)
    assert ww > 2 * nw and nh > 2 * wh  # bbox_inches="tight" trims, so compare shapes, not exact pixels
    page = p.html()
    assert f'media="(max-width: {display.NARROW_PX}px)" srcset="data:image/png;base64,{p.narrow}"' in page
    assert f'src="data:image/png;base64,{p.wide}"' in page and 'alt="three &lt;panels&gt;"' in page
    assert plt.get_fignums() == []


def test_panels_fill_rows_of_columns_and_drop_the_empty_slots():
    seen = []
    display.panels(lambda fig, axes: seen.append((len(axes), len(fig.axes))), 5, panel_size=(1, 1), columns=2, dpi=20)
    assert seen == [(5, 5), (5, 5)]  # a 3×2 grid's sixth slot is removed
    grids = []
    display.panels(lambda fig, axes: grids.append(axes[0].get_subplotspec().get_geometry()[:2]), 5, panel_size=(1, 1),
                   columns=5, narrow_columns=2, dpi=20)
    assert grids == [(1, 5), (3, 2)]
    with pytest.raises(ValueError, match="narrow_columns"):
        display.panels(lambda fig, axes: None, 5, columns=2, narrow_columns=3)


def test_a_chooser_frame_of_panels_switches_to_the_narrow_layout_on_a_phone():
    def frame(y):
        return display.panels(lambda fig, axes: [ax.plot([0, 1], [0, y]) for ax in axes], 2, panel_size=(1, 1), dpi=20)

    one, two = frame(1), frame(2)
    page, data = _data(display.chooser({(1,): one, (2,): (two, "two"), (3,): _fig(3)}, [("y", [1, 2, 3])]))
    for pos, p in (("0", one), ("1", two)):
        f = data["frames"][pos]
        assert data["images"][f["image"]] == p.wide and data["images"][f["narrow"]] == p.narrow
    assert data["frames"]["1"]["caption"] == "two"
    assert data["frames"]["2"]["narrow"] is None  # a plain figure has one layout
    assert data["narrow_px"] == display.NARROW_PX and "matchMedia" in page
    assert f'src="data:image/png;base64,{one.wide}"' in page  # the wide layout until the script runs


def test_panels_refuse_bad_input_by_name_and_close_the_figure_when_draw_raises():
    def boom(fig, axes):
        raise RuntimeError("bad data")

    with pytest.raises(RuntimeError, match="bad data"):
        display.panels(boom, 2)
    assert plt.get_fignums() == []
    ok = lambda fig, axes: None  # noqa: E731
    for kwargs, err, match in (({"n": 0}, ValueError, "n: "), ({"n": 2.0}, ValueError, "n: "),
                               ({"n": True}, ValueError, "n: "), ({"n": 17}, ValueError, "n: "),
                               ({"columns": 3}, ValueError, "columns"), ({"panel_size": (0, 1)}, ValueError, "panel_size"),
                               ({"panel_size": (1, math.inf)}, ValueError, "panel_size"),
                               ({"panel_size": 3}, ValueError, "panel_size"), ({"dpi": 0}, ValueError, "dpi"),
                               ({"alt": None}, TypeError, "alt"), ({"width_ratios": [1]}, ValueError, "width_ratios"),
                               ({"width_ratios": [1, -1]}, ValueError, "width_ratios")):
        with pytest.raises(err, match=match):
            display.panels(ok, **{"n": 2, **kwargs})
    with pytest.raises(TypeError, match="draw"):
        display.panels("plot", 2)
    assert plt.get_fignums() == []


def test_panels_and_chooser_leave_no_figure_open_when_matplotlib_fails():
    def bad_title(fig, axes):
        axes[0].set_title(r"$\frac{1$")  # mathtext that fails when the figure is saved

    with pytest.raises(ValueError):
        display.panels(bad_title, 2, panel_size=(1, 1), dpi=20)
    assert plt.get_fignums() == []
    good, bad, later = _fig(1), _fig(2), _fig(3)
    bad.axes[0].set_title(r"$\frac{1$")
    with pytest.raises(ValueError):
        display.chooser({(1,): good, (2,): bad, (3,): later}, [("x", [1, 2, 3])])
    assert plt.get_fignums() == []


def test_panels_and_chooser_refuse_images_too_large_before_drawing():
    drawn = []
    with pytest.raises(ValueError, match="pixels"):
        display.panels(lambda fig, axes: drawn.append(1), 2, panel_size=(100, 1), dpi=200)
    assert drawn == [] and plt.get_fignums() == []
    big = plt.figure(figsize=(300, 1))
    with pytest.raises(ValueError, match=r"frames\[\(1,\)\].*pixels"):
        display.chooser({(1,): big}, [("x", [1])], dpi=100)
    assert plt.get_fignums() == [big.number]  # refused before rendering: the caller's figure is untouched
    plt.close(big)


@pytest.mark.parametrize("share", ["bogus", 1, None, [True]])
def test_panels_refuse_an_unknown_share_value(share):
    for name in ("sharex", "sharey"):
        with pytest.raises(ValueError, match=name):
            display.panels(lambda fig, axes: None, 2, **{name: share})
    assert plt.get_fignums() == []


def test_panels_with_a_shared_x_axis_label_every_panel_that_has_none_below():
    shown = {}

    def draw(fig, axes):
        for ax in axes:
            ax.plot([0, 10], [0, 1])
        fig.canvas.draw()
        shown[len(fig.get_axes()), axes[0].get_subplotspec().get_geometry()[:2]] = [
            any(t.get_visible() and t.get_text() for t in ax.get_xticklabels()) for ax in axes]

    display.panels(draw, 5, panel_size=(1.5, 1), columns=3, sharex=True, narrow_columns=2, dpi=20)
    # wide: 2 rows of 3, panels 0-4; panel 2 has nothing below it. Narrow: 3 rows of 2; panel 3 neither.
    assert shown[5, (2, 3)] == [False, False, True, True, True]
    assert shown[5, (3, 2)] == [False, False, False, True, True]


def test_panels_accept_numpy_sizes_and_ratios():
    p = display.panels(lambda fig, axes: None, 2, panel_size=np.array([1.0, 1.0]),
                       width_ratios=np.array([1, 2]), dpi=20)
    assert _size(p.wide)[0] > _size(p.narrow)[0]


def test_panels_close_figures_that_draw_opens_itself_with_a_warning():
    def draw(fig, axes):
        plt.figure()

    with pytest.warns(UserWarning, match="figure"):
        display.panels(draw, 1, panel_size=(1, 1), dpi=20)
    assert plt.get_fignums() == []


def test_a_chooser_frame_of_panels_keeps_its_own_alt_text():
    p = display.panels(lambda fig, axes: None, 2, panel_size=(1, 1), dpi=20, alt="two <spectra>")
    page, data = _data(display.chooser({(1,): p, (2,): _fig(2)}, [("x", [1, 2])], alt="one figure"))
    assert data["frames"]["0"]["alt"] == "two <spectra>" and data["frames"]["1"]["alt"] == "one figure"
    assert 'alt="two &lt;spectra&gt;"' in page and "img.alt = f.alt" in page


@pytest.mark.filterwarnings("ignore:constrained_layout not applied")
def test_the_pixel_cap_holds_on_the_tight_bounding_box_and_on_the_area():
    far = lambda fig, axes: axes[0].text(3000, 0.5, "far", transform=axes[0].transAxes)  # noqa: E731
    with pytest.raises(ValueError, match="tight bounding box"):
        display.panels(far, 1, panel_size=(1, 1), dpi=20)
    assert plt.get_fignums() == []
    with pytest.raises(ValueError, match="in all"):
        display.panels(lambda fig, axes: None, 1, panel_size=(150, 150), dpi=100)
    fig = _fig(1)
    fig.axes[0].text(0, 40000, "far", transform=fig.axes[0].transAxes)
    with pytest.raises(ValueError, match="tight bounding box"):
        display.chooser({(1,): fig}, [("x", [1])])
    assert plt.get_fignums() == []


def test_a_dpi_too_small_for_text_is_refused_by_name():
    for dpi in (1, 3, display.MIN_DPI - 1):
        with pytest.raises(ValueError, match="dpi.*at least"):
            display.panels(lambda fig, axes: None, 1, dpi=dpi)
        with pytest.raises(ValueError, match="dpi.*at least"):
            display.chooser({(1,): "a"}, [("x", [1])], dpi=dpi)
    display.panels(lambda fig, axes: axes[0].set_title("t"), 1, panel_size=(1, 1), dpi=display.MIN_DPI)


def test_numpy_booleans_read_as_booleans_and_sets_are_refused_as_unordered():
    page, data = _data(display.chooser({(np.True_,): "on", (False,): "off"}, {"sparse": [np.False_, np.True_]}))
    assert data["frames"]["1"]["caption"] == "on" and "<select" in page
    display.panels(lambda fig, axes: None, 2, panel_size=(1, 1), dpi=20, sharex=np.True_)
    with pytest.raises(TypeError, match="display order"):
        display.chooser({("a",): "x"}, {"m": {"a", "b"}})
    with pytest.raises(TypeError, match="numpy.ndarray"):
        display.chooser({("a",): "x"}, {"m": ["a", np.zeros(2)]})


def test_a_hand_made_panels_is_checked():
    for args in (("a", "b", None), ("", "b", "alt"), ("a", None, "alt")):
        with pytest.raises(TypeError, match="Panels"):
            display.Panels(*args)
