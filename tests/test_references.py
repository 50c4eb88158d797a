"""Reference training (lcbook.references): resumable, refused when tampered with, trained once by parallel jobs, committed references and their records."""

import json

import pytest
import torch
from helpers import Interrupted, reference_setup

from lcbook import models, references, train
from lcbook.data import Batches


@pytest.mark.parametrize("path", sorted(references.REFERENCE_DIR.glob("*.pt")), ids=lambda p: p.name)
def test_committed_references_load_and_have_records(path):
    record = json.loads(path.with_suffix(".json").read_text())
    for key in ("command", "profile", "recipe", "test_error", "torch", "git_commit", "date", "hardware"):
        assert key in record, key
    state = torch.load(path, weights_only=True)
    m = models.build(record["model"])
    m.load_state_dict(state)
    assert path.stat().st_size <= 5 * 2**20


@pytest.mark.parametrize("schedule", ["onecycle", "step"])
def test_interrupted_reference_training_resumes_to_the_same_weights(tmp_path, schedule):
    from lcbook.train import train_reference

    kw = dict(epochs=4, lr=0.05, schedule=schedule, milestones=(2,), weight_decay=1e-3, progress=False)
    model, batches = reference_setup()
    losses = train_reference(model, batches, **kw)
    ckpt = tmp_path / "ref.pt"
    model2, batches2 = reference_setup(fail_pass=3)  # killed in the middle of the third epoch
    with pytest.raises(Interrupted):
        train_reference(model2, batches2, checkpoint=ckpt, **kw)
    assert len(torch.load(ckpt, weights_only=True)["losses"]) == 2  # two finished epochs were saved
    model3, batches3 = reference_setup()  # a new process: fresh model, fresh batches and RNG
    torch.manual_seed(123)
    losses3 = train_reference(model3, batches3, checkpoint=ckpt, **kw)
    assert losses3 == losses
    for (k, a), b in zip(model.state_dict().items(), model3.state_dict().values()):
        assert torch.equal(a, b), k
    assert [p.name for p in tmp_path.iterdir()] == ["ref.pt"]  # no temporary files left


def test_reference_checkpoint_from_other_settings_or_garbage_is_refused_and_changes_nothing(tmp_path):
    from lcbook.train import train_reference

    model, batches = reference_setup()
    ckpt = tmp_path / "ref.pt"
    train_reference(model, batches, epochs=1, lr=0.05, progress=False, checkpoint=ckpt)
    model2, batches2 = reference_setup()
    before = {k: v.clone() for k, v in model2.state_dict().items()}
    with pytest.raises(ValueError, match=r"other settings \(\['epochs'\]\)"):
        train_reference(model2, batches2, epochs=2, lr=0.05, progress=False, checkpoint=ckpt)
    ckpt.write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="unreadable"):
        train_reference(model2, batches2, epochs=1, lr=0.05, progress=False, checkpoint=ckpt)
    assert all(torch.equal(before[k], v) for k, v in model2.state_dict().items())


def test_parallel_jobs_train_a_missing_reference_once(tmp_path, monkeypatch):
    """Two grid jobs that need the same missing reference: one trains it, the other waits for it."""
    import threading
    import time

    from lcbook import references

    monkeypatch.setattr(references, "REFERENCE_DIR", tmp_path / "references")
    monkeypatch.setattr(references, "REFERENCE_RUNS_DIR", tmp_path / "runs")
    trained = []

    def slow_train(model, train_batches, epochs, lr, timing=None, **kwargs):
        time.sleep(0.5)
        with torch.no_grad():
            for p in model.parameters():
                p.fill_(len(trained) + 1.0)
        trained.append(type(model).__name__)
        timing["seconds"] = 0.5
        return [1.0]

    monkeypatch.setattr(train, "train_reference", slow_train)
    out = [None, None]

    def job(i):
        out[i] = references.reference("lenet300", "quick", progress=False)

    threads = [threading.Thread(target=job, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert trained == ["LeNet300"]
    for (k, a), b in zip(out[0][0].state_dict().items(), out[1][0].state_dict().values()):
        assert torch.equal(a, b), k
    assert (tmp_path / "references" / "lenet300-mnist-quick.pt").is_file()


def test_reference_checkpoint_tampering_is_refused_before_anything_changes(tmp_path):
    from lcbook.train import train_reference

    model, batches = reference_setup()
    ckpt = tmp_path / "ref.pt"
    kw = dict(epochs=2, lr=0.05, schedule="onecycle", progress=False)
    train_reference(model, batches, checkpoint=ckpt, **kw)
    good = torch.load(ckpt, weights_only=True)
    good["losses"] = good["losses"][:1]
    tampered = {
        "rng": torch.zeros(10, dtype=torch.uint8), "generator": torch.ones(3), "model": {"0.weight": 3},
        "config": [1], "losses": [float("nan")], "scheduler": {},
        "optimizer": {**good["optimizer"], "state": {0: {"momentum_buffer": torch.zeros(7)}}},
    }
    for key, value in tampered.items():
        torch.save({**good, key: value}, ckpt)
        model2, batches2 = reference_setup()
        before = {k: v.clone() for k, v in model2.state_dict().items()}
        rng = torch.get_rng_state()
        with pytest.raises(ValueError, match="delete it to start again"):
            train_reference(model2, batches2, checkpoint=ckpt, **kw)
        assert all(torch.equal(before[k], v) for k, v in model2.state_dict().items()), key
        assert torch.equal(rng, torch.get_rng_state()), key
    # other batches (another batch size, same number of batches) are another run
    torch.save(good, ckpt)
    model3, b3 = reference_setup()
    other = Batches(b3.batches.x[:60], b3.batches.y[:60], "cifar10", batch_size=15, train=True, augment=True, seed=3)
    assert len(other) == len(b3)
    with pytest.raises(ValueError, match=r"other settings \(\['batch_size', 'examples'\]\)"):
        train_reference(model3, other, checkpoint=ckpt, **kw)
    # a path that cannot be a file is refused before training
    with pytest.raises(ValueError, match="cannot create its folder"):
        train_reference(model3, b3, checkpoint=ckpt / "sub.pt", **kw)


def test_a_finished_reference_training_is_kept_and_rebuilds_without_training(tmp_path, monkeypatch):
    # A reference lost before it was committed (a new checkout) comes back from the kept state;
    # the recorded training time sums every process and no epoch runs again.
    from lcbook import references, train

    monkeypatch.setattr(references, "REFERENCE_DIR", tmp_path / "references")
    monkeypatch.setattr(references, "REFERENCE_RUNS_DIR", tmp_path / "runs")
    model, batches = reference_setup()
    monkeypatch.setitem(references.RECIPES, ("lenet300", "quick"), references.Recipe(
        dataset="cifar10", train_size=None, epochs=2, batch_size=16, lr=0.05, schedule="onecycle",
        weight_decay=0.0, augment=True))
    monkeypatch.setattr(references.models, "build", lambda name: reference_setup()[0])
    monkeypatch.setattr(references, "batches", lambda *a, **k: reference_setup()[1].batches)
    epochs = []
    real_epoch = train.train_epoch
    monkeypatch.setattr(train, "train_epoch", lambda *a, **k: epochs.append(1) or real_epoch(*a, **k))
    m1, r1 = references.reference("lenet300", "quick", progress=False)
    assert len(epochs) == 2 and references.training_checkpoint_path("lenet300", "quick").is_file()
    references.reference_path("lenet300", "quick").unlink()  # the reference file is lost
    m2, r2 = references.reference("lenet300", "quick", progress=False)
    assert len(epochs) == 2  # rebuilt from the kept state: no epoch trained again
    assert all(torch.equal(a, b) for a, b in zip(m1.state_dict().values(), m2.state_dict().values()))
    assert r2["train_seconds"] == r1["train_seconds"] > 0 and r2["test_error"] == r1["test_error"]
    references.reference("lenet300", "quick", progress=False, retrain=True)
    assert len(epochs) == 4  # --retrain trains afresh


def test_recipes_refuse_non_finite_values_and_bad_milestones_and_store_plain_numbers():
    import json

    import numpy as np

    base = dict(dataset="cifar10", epochs=3, lr=0.1, schedule="step", weight_decay=0.0, augment=True)
    for bad, match in ((dict(lr=float("inf")), "lr=inf"), (dict(weight_decay=float("nan")), "weight_decay=nan"),
                       (dict(milestones=(1.7, 2.2)), "milestones"), (dict(milestones=(3, 1)), "increasing"),
                       (dict(milestones=5), "milestones"), (dict(milestones=(-5,)), "1..epochs")):
        with pytest.raises(ValueError, match=match):
            references.Recipe(**{**base, **bad})
    r = references.Recipe(**{**base, "epochs": np.int64(3), "lr": np.float32(0.5), "augment": np.bool_(True)})
    assert json.loads(json.dumps(r.asdict()))["epochs"] == 3 and type(r.epochs) is int and type(r.augment) is bool


def test_provenance_names_the_commit_the_running_code_came_from():
    import subprocess

    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=references.ROOT, capture_output=True, text=True).stdout.strip()
    commit = references.provenance()["git_commit"]
    if head:  # a checkout (not an unpacked copy): the commit at import, marked if the tree had changes
        assert commit.split("+")[0] == head and commit in (head, head + "+changes")
