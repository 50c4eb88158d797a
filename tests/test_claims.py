"""Part V's claims judged run by run (lcbook.claims), on made-up results and on the store."""

from hypothesis import given
from hypothesis import strategies as st

from lcbook import claims, experiments


def fake(combo, bits, error, model="resnet20", profile="cpu", reference=10.0, seed=0, history=None):
    return {"id": f"{model}-{combo}-{bits}-{error}", "model": model, "combo": combo, "profile": profile, "seed": seed,
            "overrides": {}, "total_bits": bits, "bits_per_weight": bits / 1000, "lc_error": error,
            "reference_error": reference, "history": history or []}


def by_id(rows):
    return {(r["id"], r["claim"][:8]): r["verdict"] for r in rows}


def test_a_rival_no_larger_and_more_accurate_refutes_the_combination():
    qp, q = fake("qp", 1400, 12.0), fake("q", 1000, 11.0)
    rows = claims.verdicts([qp, q])
    assert [r["verdict"] for r in rows if r["id"] == qp["id"]][0] == "fails"
    # Q's own row: Q+P is larger than Q, so nothing tests Q's claim
    assert [r["verdict"] for r in rows if r["id"] == q["id"]] == ["untested"]


def test_equal_storage_is_within_one_percent_both_ways():
    qp = fake("qp", 1000, 11.0)
    for bits, expect in ((1009, "holds"), (995, "holds"), (1011, "untested"), (980, "untested")):
        p = fake("p", bits, 30.0)
        got = {r["id"]: r["verdict"] for r in claims.verdicts([qp, p]) if r["claim"].startswith("no rival")}
        assert got[qp["id"]] == expect, bits
        p_row = [r for r in claims.verdicts([qp, p]) if r["id"] == p["id"]][0]
        assert p_row["verdict"] == ("holds" if bits >= 995 else "untested"), bits


def test_the_one_bit_claim_tests_resnet_qp_at_most_1_5_bits_only():
    rows = claims.verdicts([fake("qp", 1400, 10.9), fake("qp", 1600, 10.1), fake("qp", 1300, 11.2)])
    one_bit = {r["bits_per_weight"]: r["verdict"] for r in rows if "reference" in r["claim"]}
    assert one_bit == {1.4: "holds", 1.3: "fails"}
    vgg = claims.verdicts([fake("lp", 1400, 10.0, model="vgg16_quarter")])
    assert not any("reference" in r["claim"] for r in vgg)


def test_runs_of_other_networks_profiles_seeds_or_sweeps_are_never_compared():
    qp = fake("qp", 1000, 20.0)
    others = [fake("p", 1000, 1.0, profile="quick"), fake("p", 1000, 1.0, model="resnet32"),
              fake("p", 1000, 1.0, seed=1), {**fake("p", 1000, 1.0), "overrides": {"mu0": 0.1}, "id": "sweep"}]
    rows = claims.verdicts([qp] + others)
    assert [r["verdict"] for r in rows if r["id"] == qp["id"] and r["claim"].startswith("no rival")] == ["untested"]
    assert all(r["id"] != "sweep" for r in rows)


@given(st.lists(st.tuples(st.sampled_from(["q", "p", "qp", "qthenp", "pthenq"]), st.integers(900, 1100),
                          st.floats(5, 90, allow_nan=False)), min_size=1, max_size=6))
def test_verdicts_agree_with_a_direct_reading_of_the_claims(specs):
    results = [fake(c, b, round(e, 2)) for c, b, e in specs]
    results = list({r["id"]: r for r in results}.values())
    rows = claims.verdicts(results)
    assert len({r["id"] for r in rows}) == len(results)
    for row in rows:
        r = next(x for x in results if x["id"] == row["id"])
        others = [o for o in results if o["id"] != r["id"]]
        if row["claim"].startswith("no rival"):
            refuting = [o for o in others if o["combo"] != "qp" and o["total_bits"] <= 1.01 * r["total_bits"]
                        and o["lc_error"] < r["lc_error"]]
            assert (row["verdict"] == "fails") == bool(refuting)
        elif "reference" in row["claim"]:
            assert (row["verdict"] == "holds") == (r["lc_error"] - r["reference_error"] <= 1.0)
        else:
            support = [o for o in others if o["combo"] == "qp" and o["total_bits"] <= 1.01 * r["total_bits"]
                       and o["lc_error"] < r["lc_error"]]
            assert (row["verdict"] == "holds") == bool(support)


def test_last_steps_spread_reads_the_lc_steps_only():
    hist = [{"step": "DC", "test_error": 50.0}] + [{"step": i, "test_error": e} for i, e in enumerate([30, 22.1, 22.3, 22.0])]
    hist.append({"step": "FT", "test_error": 1.0})
    assert abs(claims.last_steps_spread({"history": hist}) - 0.3) < 1e-12
    assert claims.last_steps_spread({"history": hist[:2]}) != claims.last_steps_spread({"history": hist[:2]})  # NaN


def test_every_stored_run_gets_a_verdict():
    results = [r for p in experiments.PROFILES for r in experiments.load_results(p)]
    rows = claims.verdicts(results)
    assert {r["id"] for r in rows} == {r["id"] for r in results if not r["overrides"]}
    assert {r["verdict"] for r in rows} <= {"holds", "fails", "untested"}


def test_malformed_results_are_refused_with_the_field_named():
    import pytest

    with pytest.raises(ValueError, match="lacks the result fields"):
        claims.verdicts([{}])
    with pytest.raises(ValueError, match="must be a stored result"):
        claims.verdicts([None])
    with pytest.raises(ValueError, match="lc_error"):
        claims.verdicts([{**fake("qp", 1000, 10.0), "lc_error": "9"}])
    assert claims.verdicts([]) == []


def test_the_report_lists_every_verdict_under_its_profile_network_and_claim():
    hist = [{"step": i, "test_error": e} for i, e in enumerate([30.0, 12.5, 12.25, 12.0])]
    runs = [fake("qp", 1400, 12.0, history=hist), fake("q", 1000, 11.0), fake("p", 1400, 30.0),
            fake("qp", 1400, 9.0, profile="quick"), fake("l", 2000, 40.0, model="vgg16_quarter")]
    text = claims.report(runs)
    rows = claims.verdicts(runs)
    heads = [line for line in text.splitlines() if line.startswith("**")]
    assert heads == ["**cpu profile, resnet20**", "**quick profile, resnet20**", "**cpu profile, vgg16_quarter**"]
    blocks, current = {}, None  # the text under each heading
    for line in text.splitlines():
        if line in heads:
            current = line
        elif current:
            blocks[current] = blocks.get(current, "") + line + "\n"
    for r in rows:
        block = blocks[f"**{r['profile']} profile, {r['model']}**"]
        assert block.count(f"- *{r['claim']}*") == 1  # each claim once per profile and network
        line = f"  - {r['combination']} at {r['bits_per_weight']:.3f} bits/weight, LC {r['lc_error']:.2f}%: **{r['verdict']}**"
        assert line in block and r["evidence"] in block
    assert sum(line.startswith("  - ") for line in text.splitlines()) == len(rows)
    assert "last 3 LC steps span 0.50 points" in text  # the run with a history; the others have none
    assert text.count("span") == 2  # Q+P's two claims, both on the run with a history
    assert claims.report([]).startswith("No stored run")


def test_bad_numbers_names_ids_and_containers_are_refused_by_name():
    import numpy as np
    import pytest

    good = fake("qp", 1000, 10.0)
    for field, value in (("lc_error", float("nan")), ("bits_per_weight", float("inf")), ("total_bits", True),
                         ("reference_error", None)):
        with pytest.raises(ValueError, match=rf"results\[0\]\['{field}'\].*finite"):
            claims.verdicts([{**good, field: value}])
    for field, value in (("profile", "**cpu**"), ("model", "<b>x</b>"), ("combo", ["qp"]), ("model", "")):
        with pytest.raises(ValueError, match=rf"results\[0\]\['{field}'\].*plain name"):
            claims.report([{**good, field: value}])
    with pytest.raises(ValueError, match=r"seed"):
        claims.verdicts([{**good, "seed": [0]}])
    with pytest.raises(ValueError, match=r"results\[1\]: id .* results\[0\]"):
        claims.verdicts([good, dict(good)])
    for bad in (None, good, "runs", 3):
        with pytest.raises(TypeError, match="results"):
            claims.report(bad)


def test_numpy_numbers_and_generators_are_read_like_floats_and_lists():
    import numpy as np

    runs = [fake("qp", 1400, 12.0), fake("q", 1000, 11.0)]
    as_numpy = [{**r, "lc_error": np.float32(r["lc_error"]), "total_bits": np.int64(r["total_bits"])} for r in runs]
    assert claims.verdicts(iter(as_numpy)) == claims.verdicts(runs)
    assert claims.report(r for r in as_numpy) == claims.report(runs)


def test_the_same_id_in_two_profiles_is_two_runs_with_their_own_spans():
    hist = lambda errs: [{"step": i, "test_error": e} for i, e in enumerate(errs)]  # noqa: E731
    cpu = fake("qp", 1400, 12.0, history=hist([13.0, 12.5, 12.0]))
    quick = {**fake("qp", 1400, 12.0, profile="quick", history=hist([20.0, 15.0, 12.0])), "id": cpu["id"]}
    text = claims.report([cpu, quick])
    assert "span 1.00 points" in text and "span 8.00 points" in text


def test_histories_and_huge_or_negative_numbers_are_checked_by_field():
    import numpy as np
    import pytest

    hist = [{"step": "DC", "test_error": 50.0}, {"step": 0, "test_error": 13.0}, {"step": 1, "test_error": 12.5},
            {"step": 2, "test_error": 12.0}]
    good = fake("qp", 1400, 12.0, history=hist)
    for history, match in ((None, r"\['history'\]: expected a list"), ([3], r"\['history'\]\[0\]"),
                           (hist[:3] + [{"step": 2, "test_error": float("nan")}], r"\['history'\]\[3\]\['test_error'\]"),
                           (hist[:3] + [{"step": 2, "test_error": float("inf")}], r"\['test_error'\]")):
        with pytest.raises(ValueError, match=match):
            claims.report([{**good, "history": history}])
    numpy_steps = [{**h, "step": np.int64(h["step"])} if isinstance(h["step"], int) else h for h in hist]
    assert claims.lc_step_errors(numpy_steps) == [13.0, 12.5, 12.0]
    assert claims.lc_step_errors([{"step": True, "test_error": 1.0}]) == []  # a bool is not a step number
    for field, value in (("total_bits", 10**400), ("lc_error", -5.0), ("reference_error", 101.0), ("bits_per_weight", -1)):
        with pytest.raises(ValueError, match=rf"results\[0\]\['{field}'\]"):
            claims.verdicts([{**good, field: value}])
