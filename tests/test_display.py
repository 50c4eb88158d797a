"""lcbook.display: the static-page chooser and the provenance box."""

import base64
import json
import re

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402

from lcbook import display  # noqa: E402


def _fig(y):
    fig, ax = plt.subplots(figsize=(2, 1.5))
    ax.plot([0, 1], [0, y])
    return fig


def _data(c):
    page = c.html()
    blob = re.search(r'<script type="application/json">(.*?)</script>', page, re.S).group(1)
    return page, json.loads(blob.replace("<\\/", "</"))


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


def test_identical_figures_are_stored_once_and_ids_are_deterministic():
    a = display.chooser({(1,): _fig(1), (2,): _fig(1)}, [("x", [1, 2])])
    b = display.chooser({(1,): _fig(1), (2,): _fig(1)}, [("x", [1, 2])])
    assert len(_data(a)[1]["images"]) == 1
    assert re.search(r'id="(lcbook-chooser-\w+)"', a.html()).group(1) == \
        re.search(r'id="(lcbook-chooser-\w+)"', b.html()).group(1)


def test_a_caption_cannot_close_the_data_script():
    c = display.chooser({("a",): "</script><script>alert(1)</script>"}, [("x", ["a"])])
    page, data = _data(c)
    assert data["frames"]["0"]["caption"].startswith("</script>")
    blob = re.search(r'<script type="application/json">(.*?)</script>', page, re.S).group(1)
    assert "</" not in blob


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


def test_a_frame_of_the_wrong_type_is_refused():
    with pytest.raises(TypeError, match=r"frames\[\(1,\)\]"):
        display.chooser({(1,): 3.5}, [("x", [1])])


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
