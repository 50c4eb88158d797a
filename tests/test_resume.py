"""Runs survive interruption: a run killed mid-way and resumed ends bit for bit as an
uninterrupted one (CPU, fixed seed), from checkpoints written atomically after every step."""

import pytest
import torch
from torch import nn

from lcbook import AdaptiveQuantization, AdditiveCombination, ConstraintL0Pruning, LCAlgorithm, SGDLStep, Task, train
from lcbook.data import Batches


class Interrupted(Exception):
    pass


def make_run(checkpoint_fail_at=None, seed=0):
    """A tiny CIFAR-shaped conv net with dropout (global RNG) and augmented, shuffled batches
    (the batches' own generator), compressed by Q+P with the augmented Lagrangian."""
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.Dropout(0.2),
                          nn.AdaptiveAvgPool2d(2), nn.Flatten(), nn.Linear(16, 10))
    g = torch.Generator().manual_seed(1)
    x = torch.randint(0, 256, (64, 3, 32, 32), dtype=torch.uint8, generator=g)
    y = torch.randint(0, 10, (64,), generator=g)
    batches = Batches(x, y, "cifar10", batch_size=16, train=True, augment=True, seed=3)
    step = SGDLStep(batches, epochs=1, lr=0.05)
    calls = {"n": 0}

    def l_step(lc):
        calls["n"] += 1
        if checkpoint_fail_at is not None and calls["n"] == checkpoint_fail_at:
            raise Interrupted()
        return step(lc)

    l_step.state_dict = step.state_dict
    l_step.load_state_dict = step.load_state_dict
    tasks = [Task(("0.weight", "6.weight"), AdditiveCombination((AdaptiveQuantization(2), ConstraintL0Pruning(kappa=10))))]
    return LCAlgorithm(model, tasks, l_step=l_step, mu_schedule=[1e-2, 2e-2, 4e-2, 8e-2], progress=False)


def final_state(lc):
    return {k: v.clone() for k, v in lc.model.state_dict().items()}, [b.delta.clone() for b in lc.tasks]


def test_interrupted_run_resumes_to_the_same_weights(tmp_path):
    ref = make_run()
    ref.run()
    ref_w, ref_d = final_state(ref)

    ckpt = tmp_path / "run.pt"
    first = make_run(checkpoint_fail_at=3)  # dies inside the third L step
    with pytest.raises(Interrupted):
        first.run(checkpoint=ckpt)
    saved = torch.load(ckpt, weights_only=True)
    assert saved["step"] == 1  # DC and two L/C steps completed and saved
    torch.manual_seed(12345)  # whatever the RNG did since, the checkpoint restores it
    resumed = make_run(seed=999)  # a fresh process: different initial weights, restored from the file
    resumed.run(checkpoint=ckpt)
    w, d = final_state(resumed)
    for k in ref_w:
        assert torch.equal(w[k], ref_w[k]), k
    for a, b in zip(d, ref_d):
        assert torch.equal(a, b)
    assert [r["step"] for r in resumed.history] == [r["step"] for r in ref.history]
    assert torch.load(ckpt, weights_only=True)["step"] == 3
    # the wall time counts both processes: the first one's saved seconds plus the resumed steps
    steps_time = sum(r["l_seconds"] + r["c_seconds"] for r in resumed.history)
    assert 0 < saved["seconds"] < resumed.seconds and resumed.seconds >= steps_time


def test_checkpoint_from_another_configuration_is_refused(tmp_path):
    ckpt = tmp_path / "run.pt"
    make_run().run(checkpoint=ckpt)
    other = make_run()
    other.mu_schedule = [1.0, 2.0, 3.0, 4.0]
    with pytest.raises(ValueError, match="another configuration"):
        other.run(checkpoint=ckpt)


def test_no_partial_checkpoint_files_are_left(tmp_path):
    make_run().run(checkpoint=tmp_path / "run.pt")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run.pt"]


@pytest.mark.parametrize("comp", [
    AdditiveCombination((AdaptiveQuantization(2), ConstraintL0Pruning(kappa=10))),
    AdaptiveQuantization(3),
    ConstraintL0Pruning(kappa=20),
])
def test_finetune_keeps_the_structure_and_lowers_the_loss(comp):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 16), nn.Tanh(), nn.Linear(16, 3))
    x = torch.randn(256, 8)
    y = (x[:, :3] @ torch.randn(3, 3)).argmax(1)
    data = [(x[i:i + 64], y[i:i + 64]) for i in range(0, 256, 64)]
    lc = LCAlgorithm(model, [Task(("0.weight", "2.weight"), comp)], l_step=lambda lc: {}, mu_schedule=[1.0],
                     progress=False)
    lc.direct_compression()

    def loss():
        with lc.compressed() as m, torch.no_grad():
            return float(torch.nn.functional.cross_entropy(m(x), y))

    before_loss, before_bits = loss(), lc.compressed_bits()
    fixed = {k: v.clone() for k, v in lc.tasks[0].theta.items() if not v.is_floating_point()}
    w_before = model[0].weight.detach().clone()
    rec = train.finetune(lc, data, epochs=20, lr=0.05)
    assert rec["step"] == "FT" and lc.history[-1] is rec
    assert loss() < before_loss
    assert lc.compressed_bits() == before_bits
    for k, v in fixed.items():  # kept positions unchanged; assignments the same partition (relabelled if sorted)
        new = lc.tasks[0].theta[k]
        if k.endswith("assignments"):
            pairs = torch.unique(torch.stack([v, new]), dim=1).shape[1]
            assert pairs == torch.unique(v).numel() == torch.unique(new).numel(), k
        else:
            assert torch.equal(new, v), k
    assert torch.equal(comp.decompress(lc.tasks[0].theta).reshape(-1), lc.tasks[0].delta.reshape(-1))
    assert torch.equal(model[0].weight.detach(), w_before)  # w itself is untouched
    with pytest.raises(ValueError, match="epochs must be"):
        train.finetune(lc, data, epochs=0)
    with pytest.raises(ValueError, match="batches is empty"):
        train.finetune(lc, [], epochs=1)
    theta_before = {k: v.clone() for k, v in lc.tasks[0].theta.items()}
    b_before = model[0].bias.detach().clone()
    with pytest.raises(ValueError, match="diverged|non-finite"):
        train.finetune(lc, data, epochs=3, lr=1e38)
    assert torch.equal(model[0].bias.detach(), b_before)  # a failed fine-tuning changes nothing
    assert all(torch.equal(lc.tasks[0].theta[k], v) for k, v in theta_before.items())



class InterruptingBatches:
    """Batches that raise in the middle of pass ``fail_pass`` (a killed process), with the
    generator and length of the batches they wrap."""

    def __init__(self, batches, fail_pass=None):
        self.batches, self.fail_pass, self.passes = batches, fail_pass, 0
        self.generator = batches.generator

    def __len__(self):
        return len(self.batches)

    def __getattr__(self, name):  # batch_size, seed, y, ... of the wrapped batches
        return getattr(self.batches, name)

    def __iter__(self):
        self.passes += 1
        for i, b in enumerate(self.batches):
            if self.passes == self.fail_pass and i == 2:
                raise Interrupted()
            yield b


def reference_setup(fail_pass=None):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.Dropout(0.2),
                          nn.AdaptiveAvgPool2d(2), nn.Flatten(), nn.Linear(16, 10))
    g = torch.Generator().manual_seed(1)
    x = torch.randint(0, 256, (64, 3, 32, 32), dtype=torch.uint8, generator=g)
    y = torch.randint(0, 10, (64,), generator=g)
    return model, InterruptingBatches(Batches(x, y, "cifar10", batch_size=16, train=True, augment=True, seed=3), fail_pass)


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

    def slow_train(name, prof, model, progress, seed, checkpoint=None):
        time.sleep(0.5)
        with torch.no_grad():
            for p in model.parameters():
                p.fill_(len(trained) + 1.0)
        trained.append(name)
        return {"model": name, "test_error": 1.0}

    monkeypatch.setattr(references, "_train", slow_train)
    out = [None, None]

    def job(i):
        out[i] = references.reference("lenet300", "quick", progress=False)

    threads = [threading.Thread(target=job, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert trained == ["lenet300"]
    for (k, a), b in zip(out[0][0].state_dict().items(), out[1][0].state_dict().values()):
        assert torch.equal(a, b), k
    assert (tmp_path / "references" / "lenet300-mnist-quick.pt").is_file()


def test_a_checkpointed_run_whose_l_step_has_no_state_warns(tmp_path):
    lc = make_run()
    plain = lc.l_step
    lc.l_step = lambda run: plain(run)  # a plain function: its batch generator cannot be saved
    lc.mu_schedule = lc.mu_schedule[:1]
    with pytest.warns(UserWarning, match="no state_dict"):
        lc.run(checkpoint=tmp_path / "run.pt")


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


def test_train_reference_takes_batches_without_len_unless_one_cycle():
    from lcbook.train import train_reference

    model, batches = reference_setup()
    plain = [b for b in batches.batches]
    train_reference(model, iter_once(plain), epochs=1, lr=0.05, schedule="exp", gamma=0.9, progress=False)
    with pytest.raises(TypeError, match="needs len"):
        train_reference(model, iter_once(plain), epochs=1, lr=0.05, schedule="onecycle", progress=False)
    with pytest.raises(ValueError, match="gamma must be a finite number > 0"):
        train_reference(model, plain, epochs=1, lr=0.05, gamma=float("nan"), progress=False)


class iter_once:
    """An iterable with no len()."""

    def __init__(self, items):
        self.items = items

    def __iter__(self):
        return iter(self.items)


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
