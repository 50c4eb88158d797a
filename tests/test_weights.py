"""Weight histograms of a stored run (lcbook.weights): every weight counted once, the codebook and
the corrections those of the run's checkpoint and of direct compression, bad input refused."""

import json

import pytest
import torch

from lcbook import experiments, weights
from lcbook.__main__ import main as cli
from lcbook.lc import direct_compression
from lcbook.references import reference

SMOKE = {"steps": 1, "train_size": 600, "test_size": 500}


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("weights")
    mp = pytest.MonkeyPatch()
    mp.setattr(experiments, "RESULTS_DIR", tmp / "results")
    mp.setattr(experiments, "RUNS_DIR", tmp / "runs")
    exp = experiments.Experiment("lenet300", "qp", {"k": 2, "fraction": 0.01}, "quick", overrides=SMOKE)
    result = experiments.run_experiment(exp, progress=False)
    yield exp, result
    mp.undo()


def test_histograms_count_every_weight_and_match_the_run(finished_run):
    exp, result = finished_run
    path = weights.store(exp, bins=40)
    assert path == exp.result_path().parent / "weights" / f"{exp.id}.json"
    h = weights.load(exp)
    assert h["lc_error"] == result["lc_error"] and h["command"].startswith("python -m lcbook weights lenet300 qp")
    for key in ("git_commit", "date", "hardware"):
        assert key in h
    state = torch.load(exp.checkpoint_path(), weights_only=True)
    model, _ = reference("lenet300", "quick", progress=False)
    dc = direct_compression(model, experiments.make_tasks("lenet300", model, "qp", exp.budget))
    assert len(h["layers"]) == len(state["thetas"]) == 3
    for layer, theta, bound in zip(h["layers"], state["thetas"], dc.tasks):
        assert len(layer["edges"]) == 41
        for key in ("dc_reference", "lc_reference", "lc_learned"):
            assert len(layer[key + "_served"]) == 40
            assert sum(layer[key + "_served"]) + sum(layer[key + "_corrected"]) == layer["n"]
        assert layer["kappa_lc"] == theta["1.indices"].numel() == sum(layer["lc_learned_corrected"])
        assert layer["kappa_dc"] == bound.theta["1.indices"].numel() == sum(layer["dc_reference_corrected"])
        assert layer["codebook_lc"] == pytest.approx(theta["0.codebook"].double().tolist())
        assert layer["codebook_dc"] == pytest.approx(bound.theta["0.codebook"].double().tolist())
        same = len(set(theta["1.indices"].tolist()) & set(bound.theta["1.indices"].tolist()))
        assert layer["same_corrections"] == same
        w = state["model"][layer["name"]].reshape(-1)
        assert layer["edges"][0] <= float(w.min()) and float(w.max()) <= layer["edges"][-1]
    # the store's result list is not confused by the histograms folder
    assert [r["id"] for r in experiments.load_results("quick")] == []


def test_bad_input_is_refused_by_name(finished_run, tmp_path):
    exp, _ = finished_run
    for bins in (1, True, 2.0, 10**9):
        with pytest.raises(ValueError, match="bins must be an int in 2..10000"):
            weights.histograms(exp, bins=bins)
    with pytest.raises(FileNotFoundError, match="no LC checkpoint"):
        weights.histograms(exp, checkpoint=tmp_path / "missing.pt")
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="unreadable"):
        weights.histograms(exp, checkpoint=bad)
    p_only = experiments.Experiment("lenet300", "p", {"fraction": 0.05}, "quick", overrides=SMOKE)
    with pytest.raises(ValueError, match="histograms are for runs with a codebook"):
        weights.histograms(p_only, checkpoint=exp.checkpoint_path())
    q4 = experiments.Experiment("lenet300", "q", {"k": 4}, "quick", overrides=SMOKE)
    small = tmp_path / "two-tasks.pt"
    state = torch.load(exp.checkpoint_path(), weights_only=True)
    torch.save({**state, "thetas": state["thetas"][:2]}, small)
    with pytest.raises(ValueError, match="does not hold the 3 tasks"):
        weights.histograms(q4, checkpoint=small)
    other = experiments.Experiment("lenet300", "qp", {"k": 4, "fraction": 0.01}, "quick", overrides=SMOKE)
    with pytest.raises(FileNotFoundError, match="make it with lcbook.weights.store"):  # overrides: no CLI for it
        weights.load(other)
    weights.path_of(other).parent.mkdir(parents=True, exist_ok=True)
    weights.path_of(other).write_text(json.dumps({"layers": [{}]}))
    with pytest.raises(ValueError, match="does not hold a weight summary"):
        weights.load(other)


def test_cli_refuses_a_run_without_a_checkpoint(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(experiments, "RUNS_DIR", tmp_path / "runs")
    with pytest.raises(SystemExit):
        cli(["weights", "lenet300", "qp", "k=2,fraction=0.03", "--profile", "quick"])
    assert "no LC checkpoint" in capsys.readouterr().err


def test_spectra_of_a_low_rank_run_and_the_run_command_stores_them(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(experiments, "RESULTS_DIR", tmp_path / "results")
    monkeypatch.setattr(experiments, "RUNS_DIR", tmp_path / "runs")
    args = ["run", "lenet300", "lp", "rank=0.1,fraction=0.01", "--profile", "quick",
            "--set", "steps=1", "--set", "train_size=600", "--set", "test_size=500"]
    assert cli(args) == 0
    exp = experiments.Experiment("lenet300", "lp", {"rank": 0.1, "fraction": 0.01}, "quick", overrides=SMOKE)
    assert "weight summary ->" in capsys.readouterr().out
    s = weights.load(exp)  # written by the run command, beside its result
    assert s["kind"] == "spectra" and s["command"] == json.loads(exp.result_path().read_text())["command"]
    state = torch.load(exp.checkpoint_path(), weights_only=True)
    model, _ = reference("lenet300", "quick", progress=False)
    for layer, theta in zip(s["layers"], state["thetas"]):
        m, n = layer["m"], layer["n"]
        w = state["model"][layer["name"]].double().reshape(m, -1)
        assert w.shape == (m, n) and layer["rank"] == theta["0.U"].shape[1] and layer["kappa"] == theta["1.indices"].numel()
        for key in weights.SPECTRA:
            sv = torch.tensor(layer[key])
            assert len(sv) == min(m, n) and bool((sv[:-1] >= sv[1:] - 1e-9).all())  # descending
        assert layer["learned"] == pytest.approx(torch.linalg.svdvals(w).tolist())
        w_ref = dict(model.named_parameters())[layer["name"]].detach().double().reshape(m, -1)
        assert layer["reference"] == pytest.approx(torch.linalg.svdvals(w_ref).tolist())
        # W − S at the end of LC: its rank-r part is exactly Θ's U V, so the energy past r is what LC
        # has not yet pulled into the factors, and the first r values are at least those of U V
        s_low = torch.tensor(layer["learned_low_rank_part"])
        uv = torch.linalg.svdvals((theta["0.U"] @ theta["0.V"]).double())
        assert float((s_low[: layer["rank"]] ** 2).sum()) >= float((uv ** 2).sum()) * (1 - 1e-6)
    qp = experiments.Experiment("lenet300", "qp", {"k": 2, "fraction": 0.01}, "quick", overrides=SMOKE)
    with pytest.raises(ValueError, match="spectra are for low-rank runs"):
        weights.spectra(qp, checkpoint=exp.checkpoint_path())
    with pytest.raises(ValueError, match="is from another run: its tasks differ"):  # Q+P pointed at this L+P run
        weights.histograms(qp, checkpoint=exp.checkpoint_path())


def test_store_refuses_a_combination_without_a_summary(finished_run):
    exp, _ = finished_run
    p = experiments.Experiment("lenet300", "p", {"fraction": 0.05}, "quick", overrides=SMOKE)
    with pytest.raises(ValueError, match="has no weight summary"):
        weights.store(p, checkpoint=exp.checkpoint_path())


def test_a_foreign_or_malformed_checkpoint_and_a_missing_reference_are_refused(finished_run, tmp_path, monkeypatch):
    exp, _ = finished_run
    ckpt = exp.checkpoint_path()
    for other in (experiments.Experiment("lenet300", "q", {"k": 2}, "quick", overrides=SMOKE),
                  experiments.Experiment("lenet300", "qp", {"k": 4, "fraction": 0.01}, "quick", overrides=SMOKE),
                  experiments.Experiment("lenet300", "qp", {"k": 2, "fraction": 0.05}, "quick", overrides=SMOKE),
                  experiments.Experiment("lenet300", "qp", {"k": 2, "fraction": 0.01}, "quick",
                                         overrides={**SMOKE, "steps": 3})):
        with pytest.raises(ValueError, match="is from another run"):
            weights.histograms(other, checkpoint=ckpt)
    state = torch.load(ckpt, weights_only=True)
    for name, bad in (("thetas of ints", {**state, "thetas": [1, 2, 3]}),
                      ("a list codebook", {**state, "thetas": [{**t, "0.codebook": [0.1, 0.2]} for t in state["thetas"]]}),
                      ("indices out of range", {**state, "thetas": [{**t, "1.indices": torch.tensor([10**7])}
                                                                  for t in state["thetas"]]}),
                      ("NaN weights", {**state, "model": {**state["model"],
                                                          "fc1.weight": state["model"]["fc1.weight"] * float("nan")}}),
                      ("a history of ints", {**state, "history": [1], "step": "x"})):
        path = tmp_path / "bad.pt"
        torch.save(bad, path)
        if name == "a history of ints":  # header fields it cannot read are left empty, not fatal
            h = weights.histograms(exp, checkpoint=path, bins=10)
            assert h["lc_error"] is None and h["lc_step"] == "x"
            continue
        with pytest.raises(ValueError):
            weights.histograms(exp, checkpoint=path, bins=10)
    before = torch.get_rng_state()
    weights.histograms(exp, bins=10)
    assert torch.equal(torch.get_rng_state(), before)  # the caller's random stream is left alone
    monkeypatch.setattr(weights, "reference_path", lambda name, prof: tmp_path / "no-reference.pt")
    with pytest.raises(FileNotFoundError, match="no stored quick reference of lenet300"):  # never trains one
        weights.histograms(exp, bins=10)


def test_load_checks_the_file_belongs_to_the_run(finished_run):
    exp, _ = finished_run
    weights.store(exp, bins=10)
    good = weights.path_of(exp).read_text()
    other = experiments.Experiment("lenet300", "qp", {"k": 2, "fraction": 0.02}, "quick", overrides=SMOKE)
    weights.path_of(other).write_text(good)
    with pytest.raises(ValueError, match="holds the summary of"):
        weights.load(other)
    weights.path_of(exp).write_text(good.replace('"lc_error": ', '"lc_error": NaN, "x": ', 1))
    with pytest.raises(ValueError, match="not valid JSON"):
        weights.load(exp)
    with pytest.raises(ValueError, match="has no weight summary"):
        weights.load(experiments.Experiment("lenet300", "p", {"fraction": 0.05}, "quick"))
