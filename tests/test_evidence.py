"""The evidence grid (lcbook.evidence): budgets matched at equal storage, jobs in the cpu profile."""

import pytest

from lcbook import evidence, experiments, models
from lcbook.references import reference


def test_matched_budgets_cost_no_more_and_nearly_as_much():
    model, _ = reference("lenet300", "quick", progress=False)
    model = model.cpu()
    target = evidence.budget_bits("lenet300", model, "qp", {"k": 2, "fraction": 0.01})
    for combo, fixed, key, hi in (("p", {}, "fraction", 0.05), ("lp", {"fraction": 0.01}, "rank", 0.05),
                                  ("pthenq", {"k": 3}, "fraction", 0.4)):
        v = evidence.match_budget("lenet300", model, combo, fixed, key, target, lo=1e-4, hi=hi, iters=9)
        bits = evidence.budget_bits("lenet300", model, combo, {**fixed, key: v})
        assert bits <= target, combo
        if combo != "lp":  # ranks are whole numbers: the rank alone cannot fill the budget exactly
            assert bits >= 0.99 * target, combo
        assert v == float(f"{v:.4g}")  # 4 significant digits, as ids show it
    with pytest.raises(ValueError, match="already costs more"):
        evidence.match_budget("lenet300", model, "p", {}, "fraction", 10, lo=0.5)


def test_resnet_plan_compares_at_equal_storage(monkeypatch):
    monkeypatch.setattr(evidence, "PROFILE", "quick")  # the committed quick reference stands in
    jobs = evidence.plan("resnet20", progress=False)
    assert all(j.profile == "quick" for j in jobs)
    model = models.build("resnet20")
    model.load_state_dict(reference("resnet20", "quick", progress=False)[0].state_dict())
    bits = {(j.combo, tuple(sorted(j.budget.items()))): evidence.budget_bits("resnet20", model, j.combo, j.budget)
            for j in jobs}
    qp1 = bits[("qp", (("fraction", 0.01), ("k", 2)))]
    for (combo, budget), b in bits.items():
        if combo in ("pthenq", "qthenp"):
            assert 0.99 * qp1 <= b <= 1.001 * qp1, combo  # the pipelines at Q+P 1%'s storage
    p = sorted(b for (c, _), b in bits.items() if c == "p")
    qp = sorted(b for (c, _), b in bits.items() if c == "qp")
    assert all(0.99 * q <= pp <= q for pp, q in zip(p, qp))  # P alone at each Q+P's storage
    assert {j.combo for j in jobs} == {"q", "p", "qp", "qthenp", "pthenq"}
    with pytest.raises(ValueError, match="no evidence grid"):
        evidence.plan("lenet300")


def test_cpu_profile_experiments_exist_for_the_evidence_networks():
    for m, combo, budget in (("resnet20", "qthenp", {"k": 2, "fraction": 0.01}), ("vgg16_quarter", "lp",
                             {"rank": 0.02, "fraction": 0.01})):
        e = experiments.Experiment(m, combo, budget, "cpu")
        assert e.result_path().parent == experiments.RESULTS_DIR / "cpu"


def test_a_job_claimed_by_one_lane_is_skipped_by_another(monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("LCBOOK_RUNS_DIR", str(tmp_path))
    monkeypatch.setattr(evidence, "PROFILE", "quick")
    job = experiments.Experiment("lenet300", "q", {"k": 2}, "quick")
    held = evidence.claim(job)
    assert held is not None
    assert evidence.claim(job) is None  # another open file description: refused, not waited for
    monkeypatch.setattr(evidence, "plan", lambda name, progress=True: [job])
    monkeypatch.setattr(experiments.Experiment, "result_path", lambda self: tmp_path / "absent.json")
    ran = []
    monkeypatch.setattr(experiments, "run_experiment", lambda j, progress=True: ran.append(j))
    assert evidence.run("lenet300", progress=False) == 0
    assert ran == [] and "another lane runs it" in capsys.readouterr().out
    held.close()  # the lane ends: the job can be claimed again
    again = evidence.claim(job)
    assert again is not None
    again.close()


def test_a_stored_result_whose_weight_summary_fails_is_not_a_failed_job(monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("LCBOOK_RUNS_DIR", str(tmp_path))
    monkeypatch.setattr(evidence, "PROFILE", "quick")
    jobs = [experiments.Experiment("lenet300", "q", {"k": 2}, "quick"),
            experiments.Experiment("lenet300", "q", {"k": 4}, "quick")]
    monkeypatch.setattr(evidence, "plan", lambda name, progress=True: jobs)
    monkeypatch.setattr(experiments.Experiment, "result_path", lambda self: tmp_path / f"{self.id}.json")
    done = {"reference_error": 2.0, "dc_error": 3.0, "lc_error": 2.5, "bits_per_weight": 1.0}
    ran = []

    def run_experiment(job, progress=True):
        ran.append(job.id)
        if job.budget["k"] == 4:
            raise RuntimeError("diverged")
        return done

    def no_summary(job):
        raise OSError("disk full")

    monkeypatch.setattr(experiments, "run_experiment", run_experiment)
    monkeypatch.setattr(evidence.weights, "store", no_summary)
    assert evidence.run("lenet300", progress=False) == 1  # only the diverged run counts as failed
    out = capsys.readouterr().out
    assert ran == [j.id for j in jobs]
    assert "no weight summary (disk full)" in out and "python -m lcbook weights lenet300 q" in out
    for job in jobs:  # both locks were let go
        lock = evidence.claim(job)
        assert lock is not None
        lock.close()


def test_the_convergence_table_names_each_run_and_judges_its_last_three_steps():
    def result(combo, budget, errors):
        hist = [{"step": "DC", "test_error": 60.0}] + [{"step": i, "test_error": e} for i, e in enumerate(errors)]
        return {"id": f"resnet20-{combo}", "combo": combo, "budget": budget, "history": hist, "lc_seconds": 7200.0}

    runs = [result("qp", {"k": 2, "fraction": 0.01}, [30.0, 20.0, 19.9, 19.8]),
            result("p", {"fraction": 0.03}, [40.0, 39.0, 36.0])]
    t = evidence.convergence_table(runs)
    assert list(t.index) == ["Q+P k=2, fraction=0.01", "P fraction=0.03"]
    assert list(t["steps"]) == [4, 3]
    assert list(t["last 3 errors %"]) == ["20.00, 19.90, 19.80", "40.00, 39.00, 36.00"]
    assert abs(t["spread"].iloc[0] - 0.2) < 1e-9 and t["spread"].iloc[1] == 4.0
    assert list(t["converged"]) == [True, False] and list(t["hours"]) == [2.0, 2.0]
    assert evidence.convergence_table([]).empty


def test_the_convergence_table_labels_stay_unique_when_networks_or_seeds_mix():
    def result(model, combo, budget, seed=0):
        hist = [{"step": i, "test_error": 20.0 - i} for i in range(3)]
        return {"id": f"{model}-{combo}-{seed}", "model": model, "seed": seed, "combo": combo, "budget": budget,
                "history": hist, "lc_seconds": 60.0}

    mixed = [result("resnet20", "q", {"k": 2}), result("vgg16_quarter", "q", {"k": 2}),
             result("resnet20", "q", {"k": 2}, seed=1), result("resnet20", "l", {})]
    t = evidence.convergence_table(mixed)
    assert list(t.index) == ["resnet20 Q k=2, seed 0", "vgg16_quarter Q k=2, seed 0", "resnet20 Q k=2, seed 1",
                             "resnet20 L, seed 0"]
    twins = [result("resnet20", "q", {"k": 2}), {**result("resnet20", "q", {"k": 2}), "id": "other"}]
    assert list(evidence.convergence_table(twins).index) == ["Q k=2 (resnet20-q-0)", "Q k=2 (other)"]
    assert list(evidence.convergence_table(iter(mixed[:1])).index) == ["Q k=2"]  # any iterable; no trailing space


def test_convergence_refuses_malformed_results_by_entry_and_field():
    good = {"id": "r", "combo": "q", "budget": {"k": 2}, "history": [{"step": 0, "test_error": 9.0}],
            "lc_seconds": 1.0}
    for bad in (None, good, "runs"):
        with pytest.raises(TypeError, match="results"):
            evidence.convergence(bad)
    for change, match in (({"history": None}, r"results\[1\]\['history'\]"),
                          ({"history": [3]}, r"results\[1\]\['history'\]\[0\]"),
                          ({"history": [{"step": 0, "test_error": "9"}]}, r"\['test_error'\]"),
                          ({"history": [{"step": 0, "test_error": float("nan")}]}, r"\['test_error'\]"),
                          ({"budget": "k=2"}, r"results\[1\]\['budget'\]"),
                          ({"lc_seconds": None}, r"results\[1\]\['lc_seconds'\]"),
                          ({"combo": 3}, r"results\[1\]\['combo'\]")):
        with pytest.raises(ValueError, match=match):
            evidence.convergence_table([good, {**good, **change}])
    with pytest.raises(ValueError, match=r"results\[0\] lacks"):
        evidence.convergence([{"id": "r"}])


def test_convergence_labels_name_the_profile_and_refuse_a_run_given_twice():
    import numpy as np

    def result(profile, seed=0):
        return {"id": "resnet20-q-k2-seed0", "profile": profile, "model": "resnet20", "seed": seed, "combo": "q",
                "budget": {"k": 2}, "history": [{"step": i, "test_error": 20.0 - i} for i in range(3)],
                "lc_seconds": 60.0}

    assert list(evidence.convergence_table([result("cpu"), result("quick", seed=np.int64(0))]).index) == \
        ["cpu: Q k=2", "quick: Q k=2"]  # numpy's 0 is the same seed
    with pytest.raises(ValueError, match=r"results\[1\]: id .*results\[0\]"):
        evidence.convergence([result("cpu"), result("cpu")])
    for budget in ({"k": None}, {"k": [1]}, {"k": float("nan")}, {"k": "2"}, {"k": True}):
        with pytest.raises(ValueError, match=r"results\[0\]\['budget'\]"):
            evidence.convergence([{**result("cpu"), "budget": budget}])
    with pytest.raises(ValueError, match=r"lc_seconds"):
        evidence.convergence([{**result("cpu"), "lc_seconds": 10**400}])
