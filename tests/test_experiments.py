"""The experiment layer: combinations by name, budgets, the results store and the CLI."""

import json

import pytest
import torch

from lcbook import experiments, models
from lcbook.__main__ import main as cli
from lcbook.compressions import (
    AdaptiveQuantization,
    AdditiveCombination,
    ConstraintL0Pruning,
    LowRank,
)


def test_make_tasks_for_every_combo():
    net = models.build("resnet20")
    convs = models.conv_and_linear_weights(net, include_linear=False)
    q = experiments.make_tasks("resnet20", net, "q", {"k": 2})
    assert [t.params[0] for t in q] == convs and all(isinstance(t.compression, AdaptiveQuantization) for t in q)
    p = experiments.make_tasks("resnet20", net, "p", {"fraction": 0.05})
    assert len(p) == 1 and p[0].params == tuple(convs)  # one κ shared by all layers
    qp = experiments.make_tasks("resnet20", net, "qp", {"k": 2, "fraction": 0.02})
    assert all(isinstance(t.compression, AdditiveCombination) for t in qp)
    vgg = models.build("vgg16")
    lp = experiments.make_tasks("vgg16", vgg, "lp", {"rank": 0.25, "fraction": 0.01})
    assert len(lp) == 16  # VGG: all 13 conv and 3 linear layers
    first = lp[0].compression.parts[0]
    assert isinstance(first, LowRank) and first.rank == 7  # conv1 is (64, 3·3·3): ⌈0.25·min(64, 27)⌉ = 7
    assert isinstance(lp[0].compression.parts[1], ConstraintL0Pruning)


def test_budgets_and_experiments_are_validated():
    assert experiments.parse_budget("k=2,fraction=0.01") == {"k": 2.0, "fraction": 0.01}
    with pytest.raises(ValueError, match="budget must look like"):
        experiments.parse_budget("k:2")
    with pytest.raises(ValueError, match="takes the budget keys"):
        experiments.Experiment("resnet20", "qp", {"k": 2})
    with pytest.raises(ValueError, match="budget k must be an integer"):
        experiments.Experiment("resnet20", "q", {"k": 2.5})
    with pytest.raises(ValueError, match="fraction must be a number in"):
        experiments.Experiment("resnet20", "p", {"fraction": 1.5})
    with pytest.raises(ValueError, match="model must be one of"):
        experiments.Experiment("resnet21", "q", {"k": 2})
    with pytest.raises(ValueError, match="unknown schedule entries"):
        experiments.Experiment("resnet20", "q", {"k": 2}, overrides={"epochz": 3})
    e = experiments.Experiment("resnet20", "qp", {"fraction": 0.02, "k": 2})
    assert e.id == "resnet20-qp-fraction0.02-k2-seed0"


def test_near_equal_budgets_get_different_ids_and_commands_that_read_back():
    a = experiments.Experiment("resnet20", "p", {"fraction": 0.1})
    b = experiments.Experiment("resnet20", "p", {"fraction": 0.10000000000001})
    assert a.id == "resnet20-p-fraction0.1-seed0" and a.id != b.id and a.result_path() != b.result_path()
    for budget in ({"k": 2, "fraction": 0.10000000000001}, {"rank": 1.0}, {"k": 16, "fraction": 1e-05},
                   {"k": 3, "fraction": 0.3333333333333333}):
        text = experiments.budget_text(budget)
        assert experiments.parse_budget(text) == budget  # exactly the same values, no rounding
    assert experiments.budget_text({"rank": 1.0, "fraction": 1e-05}) == "rank=1,fraction=1e-05"
    assert experiments.Experiment("resnet20", "p", {"fraction": -0.0}).id == experiments.Experiment("resnet20", "p", {"fraction": 0.0}).id
    with pytest.raises(ValueError, match=r"budget k must be an integer in \[1, 65536\]"):
        experiments.Experiment("resnet20", "q", {"k": 1e300})
    for text, match in (("k=2_0", "not a number"), ("k=٣", "not a number"), ("fraction=1e-400", "too small"),
                        ("k=nan", "not a number"), ("k=inf", "not a number")):
        with pytest.raises(ValueError, match=match):
            experiments.parse_budget(text)
    assert experiments.parse_budget("fraction=.5,k=+2,rank=2E-1") == {"fraction": 0.5, "k": 2.0, "rank": 0.2}


def test_run_stores_a_result_with_provenance_and_resumes(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(experiments, "RESULTS_DIR", tmp_path / "results")
    monkeypatch.setattr(experiments, "RUNS_DIR", tmp_path / "runs")
    args = ["run", "lenet300", "qp", "k=2,fraction=0.01", "--profile", "quick",
            "--set", "steps=2", "--set", "train_size=600", "--set", "test_size=500", "--set", "finetune_epochs=1"]
    assert cli(args) == 0
    exp = experiments.Experiment("lenet300", "qp", {"k": 2, "fraction": 0.01}, "quick",
                          overrides={"steps": 2, "train_size": 600, "test_size": 500, "finetune_epochs": 1})
    assert exp.id.startswith("lenet300-qp-fraction0.01-k2-seed0-set")  # never the real run's files
    assert exp.result_path() == tmp_path / "results" / "custom" / "quick" / f"{exp.id}.json"
    r = json.loads(exp.result_path().read_text())
    assert r["overrides"] == {"steps": 2, "train_size": 600, "test_size": 500, "finetune_epochs": 1}
    assert [h["step"] for h in r["history"]] == ["DC", 0, 1, "FT"]  # DC, 2 L/C steps, fine-tuning
    assert r["lc_error"] == r["history"][2]["test_error"] and r["final_error"] == r["history"][3]["test_error"]
    assert 0 <= r["lc_error"] <= 100 and r["ratio"] > 1
    assert sum(layer["bits"] for layer in r["layers"]) == pytest.approx(r["total_bits"])
    for key in ("git_commit", "hardware", "torch", "date", "profile", "seed", "command"):
        assert key in r
    assert (tmp_path / "runs" / "quick" / f"{exp.id}.pt").is_file()
    # the same command again resumes from the finished checkpoint: no new L steps
    assert cli(args) == 0
    r2 = json.loads(exp.result_path().read_text())
    assert [h["step"] for h in r2["history"]][:3] == ["DC", 0, 1]  # resumed: no new L/C steps
    assert experiments.load_results("quick", model="lenet300") == []  # custom runs stay out of the store
    assert cli(["results", "--profile", "quick"]) == 0
    assert "no stored results" in capsys.readouterr().out


def test_cli_lists_the_committed_mu0_sweep_with_its_overrides(capsys):
    assert cli(["results", "--profile", "quick", "--sweep", "mu0"]) == 0
    out = capsys.readouterr().out
    ids = [r["id"] for r in experiments.load_results("quick", sweep="mu0")]
    assert ids and all(i in out for i in ids) and "mu0=" in out


def test_cli_rejects_bad_input(capsys):
    with pytest.raises(SystemExit):
        cli(["run", "lenet300", "qp", "k=2"])  # fraction missing
    assert "takes the budget keys" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli(["run", "lenet300", "q", "k=2", "--set", "steps"])
    with pytest.raises(SystemExit):
        cli(["run", "lenet300", "zz", "k=2"])


@pytest.mark.parametrize("args,message", [
    (["run", "lenet300", "q", "k=2,k=3"], "twice"),
    (["run", "lenet300", "q", "k=e"], "k='e' is not a number"),
    (["run", "lenet300", "l", "rank=0"], r"rank must be a number in \(0, 1\]"),
    (["run", "resnet32", "q", "k=2", "--profile", "quick"], "no reference recipe for model 'resnet32'"),
    (["run", "lenet300", "q", "k=2", "--set", "steps=-1"], "steps=-1 is invalid"),
    (["run", "lenet300", "q", "k=2", "--set", "lr=NaN"], "lr="),
    (["run", "lenet300", "q", "k=2", "--set", "multipliers=3"], "multipliers=3 is invalid"),
    (["run", "lenet300", "q", "k=2", "--set", "finetune_epochs=2.5"], "finetune_epochs=2.5 is invalid"),
    (["grid", "--models", "lenet300", "--combos", "qp", "--budgets", "k=2"], "no job"),
    (["results", "--sweep", "../quick"], "sweep must be a folder name"),
])
def test_cli_checks_everything_before_any_work(args, message, capsys):
    with pytest.raises(SystemExit):
        cli(args)
    assert __import__("re").search(message, capsys.readouterr().err)


def test_load_results_validates_profile_fields_and_skips_bad_files(tmp_path, monkeypatch, caplog):
    good = json.loads(sorted((experiments.RESULTS_DIR / "quick").glob("*.json"))[0].read_text())
    monkeypatch.setattr(experiments, "RESULTS_DIR", tmp_path)
    (tmp_path / "quick").mkdir()
    (tmp_path / "quick" / "good.json").write_text(json.dumps(good))
    (tmp_path / "quick" / "thin.json").write_text(json.dumps({"id": "x", "dc_error": 1.0, "lc_error": 0.5, "ratio": 3.0}))
    (tmp_path / "quick" / "typed.json").write_text(json.dumps({**good, "dc_error": "1.0"}))
    (tmp_path / "quick" / "nan.json").write_text(json.dumps({**good, "lc_error": float("nan")}))
    (tmp_path / "quick" / "broken.json").write_text("{")
    assert [r["id"] for r in experiments.load_results("quick")] == [good["id"]]
    assert sum("skipping" in m for m in caplog.messages) == 4
    assert experiments.load_results("quick", model=good["model"]) and not experiments.load_results("quick", model="nope")
    with pytest.raises(ValueError, match="profile_name"):
        experiments.load_results("../quick")
    with pytest.raises(ValueError, match="modle"):
        experiments.load_results("quick", modle="lenet300")
    # a tuning sweep lives in its own folder and never mixes with the standard runs
    (tmp_path / "quick" / "sweeps" / "mu0").mkdir(parents=True)
    swept = {**good, "id": good["id"] + "-setabc", "overrides": {"mu0": 0.1}}
    (tmp_path / "quick" / "sweeps" / "mu0" / "a.json").write_text(json.dumps(swept))
    assert [r["id"] for r in experiments.load_results("quick", sweep="mu0")] == [swept["id"]]
    assert [r["id"] for r in experiments.load_results("quick")] == [good["id"]]
    for bad in ("../quick", "", "MU0", 3):
        with pytest.raises(ValueError, match="sweep must be a folder name"):
            experiments.load_results("quick", sweep=bad)


def test_the_committed_mu0_sweep_varies_only_mu0_from_the_standard_runs():
    sweep = experiments.load_results("quick", sweep="mu0")
    assert len(sweep) >= 2
    for r in sweep:
        assert set(r["overrides"]) == {"mu0"} and f"--set mu0={r['overrides']['mu0']}" in r["command"]
        standard = experiments.load_results("quick", model=r["model"], combo=r["combo"])
        base = [s for s in standard if s["budget"] == r["budget"]]
        assert len(base) == 1 and {**base[0]["schedule"], "mu0": r["overrides"]["mu0"]} == r["schedule"]
        assert base[0]["dc_error"] == r["dc_error"]  # the same reference, data and DC start


def test_experiment_refuses_bad_budget_types_and_an_overflowing_mu_schedule():
    for bad in ("k=2", None, [("k", 2)]):
        with pytest.raises(ValueError, match="budget must be a dict"):
            experiments.Experiment("lenet300", "q", bad)
    with pytest.raises(ValueError, match="overrides must be a dict"):
        experiments.Experiment("lenet300", "q", {"k": 2}, overrides=None)
    with pytest.raises(ValueError, match="overflow"):
        experiments.Experiment("lenet300", "q", {"k": 2}, overrides={"steps": 400, "a": 10.0})


def test_numpy_numbers_are_accepted_and_stored_as_python_numbers():
    np = pytest.importorskip("numpy")
    from lcbook import AdaptiveQuantization, ConstraintL0Pruning, LowRank, SGDLStep

    q = AdaptiveQuantization(np.int64(2))
    p = ConstraintL0Pruning(fraction=np.float32(0.5))
    k = ConstraintL0Pruning(kappa=np.int32(7))
    r = LowRank(np.int16(3))
    assert (q.k, p.fraction, k.kappa, r.rank) == (2, 0.5, 7, 3)
    assert type(q.k) is int and type(p.fraction) is float and type(k.kappa) is int and type(r.rank) is int
    assert q == AdaptiveQuantization(2)  # the same compression as with Python numbers
    step = SGDLStep([], epochs=np.int64(2), lr=np.float32(0.1))
    assert type(step.epochs) is int and type(step.lr) is float
    e = experiments.Experiment("resnet20", "qp", {"k": np.int64(2), "fraction": np.float64(0.02)}, seed=np.int64(0),
                        overrides={"steps": np.int64(3), "mu0": np.float32(0.5)})
    plain = experiments.Experiment("resnet20", "qp", {"k": 2, "fraction": 0.02}, overrides={"steps": 3, "mu0": 0.5})
    assert e.id == plain.id and type(e.seed) is int
    assert json.dumps(e.overrides) == json.dumps(plain.overrides)
    for bad in (np.True_, True, 2.5, "2"):
        with pytest.raises((TypeError, ValueError), match="k"):
            AdaptiveQuantization(bad)
    with pytest.raises(ValueError, match=r"fraction must be a number in \[0, 1\], got fraction=np.float32\(1.5\)"):
        ConstraintL0Pruning(fraction=np.float32(1.5))


def test_run_reports_a_stored_result_and_never_rewrites_a_committed_one(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(experiments, "RESULTS_DIR", tmp_path / "results")
    monkeypatch.setattr(experiments, "RUNS_DIR", tmp_path / "runs")
    exp = experiments.Experiment("resnet20", "q", {"k": 2}, "quick")
    stored = json.loads(sorted((experiments.ROOT / "data" / "results" / "quick").glob("resnet20-q-k2-*.json"))[0].read_text())
    exp.result_path().parent.mkdir(parents=True)
    exp.result_path().write_text(json.dumps(stored))
    before = exp.result_path().read_bytes()
    calls = []

    def fake_run(e, progress=True, result_path=None, checkpoint=None):
        calls.append((result_path, checkpoint))
        experiments.atomic_write_json({**stored, "lc_error": 1.0}, result_path)
        return {**stored, "lc_error": 1.0}

    monkeypatch.setattr(experiments, "run_experiment", fake_run)
    assert cli(["run", "resnet20", "q", "k=2", "--profile", "quick"]) == 0
    assert calls == [] and "stored, not run again" in capsys.readouterr().out
    # --force on a committed result: a fresh run (own checkpoint) written beside, never over it
    monkeypatch.setattr(experiments, "is_tracked", lambda p: True)
    assert cli(["run", "resnet20", "q", "k=2", "--profile", "quick", "--force"]) == 0
    (path, ckpt), = calls
    assert path == tmp_path / "results" / "custom" / "quick" / exp.result_path().name
    assert ckpt != exp.checkpoint_path() and exp.result_path().read_bytes() == before
    assert json.loads(path.read_text())["lc_error"] == 1.0
    # --force --replace says so: then the result is replaced in place
    assert cli(["run", "resnet20", "q", "k=2", "--profile", "quick", "--force", "--replace"]) == 0
    assert calls[-1][0] == exp.result_path() and json.loads(exp.result_path().read_text())["lc_error"] == 1.0
    with pytest.raises(SystemExit):
        cli(["run", "resnet20", "q", "k=2", "--replace"])


def test_schedules_hold_plain_numbers_and_equal_overrides_give_one_id():
    import json

    import numpy as np

    s = experiments.SCHEDULES[("resnet", "quick")].replace(epochs=np.int64(2), lr=np.float32(0.5), multipliers=np.bool_(True))
    assert json.loads(json.dumps(s.asdict()))["epochs"] == 2
    a = experiments.Experiment("lenet300", "q", {"k": 2}, "quick", 0, {"lr": 1})
    b = experiments.Experiment("lenet300", "q", {"k": 2}, "quick", 0, {"lr": 1.0})
    assert a.id == b.id and a.overrides == {"lr": 1.0}
    with pytest.raises(ValueError, match="budget must be text"):
        experiments.parse_budget(None)


def test_tf32_is_the_full_profiles_opt_in_validated_and_without_effect_on_a_cpu(tmp_path, monkeypatch):
    assert all(s.tf32 == (prof == "full") for (_, prof), s in experiments.SCHEDULES.items())
    with pytest.raises(ValueError, match="tf32='yes' is invalid: true or false"):
        experiments.Experiment("lenet300", "q", {"k": 2}, overrides={"tf32": "yes"})
    monkeypatch.setattr(experiments, "RESULTS_DIR", tmp_path / "results")
    monkeypatch.setattr(experiments, "RUNS_DIR", tmp_path / "runs")
    smoke = {"steps": 1, "train_size": 300, "test_size": 300}
    flags = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.benchmark)
    runs = [experiments.run_experiment(experiments.Experiment("lenet300", "q", {"k": 2}, "quick",
                                                              overrides={**smoke, "tf32": tf32}), progress=False)
            for tf32 in (False, True)]
    assert runs[1]["schedule"]["tf32"] is True and runs[0]["schedule"]["tf32"] is False
    if not torch.cuda.is_available():  # the switches are left alone, and the numbers are the same
        assert (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.benchmark) == flags
        assert [h["test_error"] for h in runs[0]["history"]] == [h["test_error"] for h in runs[1]["history"]]
