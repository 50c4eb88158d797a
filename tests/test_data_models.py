"""Data loading (image folders, caches, batches), models, profiles and reference records."""

import json

import numpy as np
import pytest
import torch
from PIL import Image

from lcbook import data, references, models


def _tree(root, channels, n_per_class=3, size=8):
    for split in ("train", "test"):
        for c in ("a", "b", "c"):
            d = root / split / c
            d.mkdir(parents=True)
            for i in range(n_per_class):
                arr = np.full((size, size) if channels == 1 else (size, size, 3), 10 * i + ord(c) - 97, np.uint8)
                Image.fromarray(arr).save(d / f"{i}.png")


def test_image_folder_tree_is_read_and_cached(tmp_path, monkeypatch):
    monkeypatch.setenv("LCBOOK_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("LCBOOK_ARCHIVE_DIR", str(tmp_path / "none"))
    _tree(tmp_path / "cifar10", 3)
    d = data.load("cifar10", download=False)
    x, y = d["train"]
    assert x.shape == (9, 3, 8, 8) and x.dtype == torch.uint8
    assert y.tolist() == [0, 0, 0, 1, 1, 1, 2, 2, 2]  # class folders sorted by name
    assert int(x[4, 0, 0, 0]) == 10 * 1 + 1  # class "b", image 1
    assert (tmp_path / "cifar10.pt").is_file()
    again = data.load("cifar10", download=False)
    assert torch.equal(again["test"][0], d["test"][0])


def test_missing_data_without_download_says_where_it_looked(tmp_path, monkeypatch):
    monkeypatch.setenv("LCBOOK_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("LCBOOK_ARCHIVE_DIR", str(tmp_path))
    monkeypatch.setattr(data, "ROOT", tmp_path / "nowhere")
    with pytest.raises(FileNotFoundError, match="mnist: no cache"):
        data.load("mnist", download=False)
    with pytest.raises(ValueError, match="unknown dataset 'svhn'"):
        data.load("svhn")


def test_subset_is_class_balanced_and_batches_cover_everything():
    x = torch.arange(100, dtype=torch.uint8).view(100, 1, 1, 1).expand(100, 1, 4, 4).contiguous()
    y = torch.arange(100) % 4
    xs, ys = data.subset(x, y, 20)
    assert torch.bincount(ys).tolist() == [5, 5, 5, 5]
    b = data.Batches(xs, ys, "mnist", batch_size=6, train=True)
    seen = torch.cat([yb for _, yb in b])
    assert len(b) == 4 and sorted(seen.tolist()) == sorted(ys.tolist())


def test_augmentation_is_a_shift_and_optional_flip_of_each_image():
    torch.manual_seed(0)
    x = torch.randint(0, 255, (16, 3, 32, 32), dtype=torch.uint8)
    b = data.Batches(x, torch.arange(16), "cifar10", batch_size=16, train=True, augment=True)
    xb, yb = next(iter(b))
    assert xb.shape == (16, 3, 32, 32) and xb.dtype == torch.float32
    plain = torch.nn.functional.pad((x.float() - b._mean) / b._std, (4, 4, 4, 4))
    moved = 0
    for img, i in zip(xb, yb.tolist()):
        options = [(dy, dx, f) for dy in range(9) for dx in range(9) for f in (False, True)]
        match = [o for o in options
                 if torch.equal(img, plain[i, :, o[0]:o[0] + 32, o[1]:o[1] + 32].flip(-1) if o[2]
                                else plain[i, :, o[0]:o[0] + 32, o[1]:o[1] + 32])]
        assert match, f"image {i} is not a shifted/flipped copy of its original"
        moved += (4, 4, False) not in match
    assert moved >= 8  # the augmentation really moves most images


def test_augmentation_draws_shift_then_flip_from_the_batches_generator():
    # The draws (order shuffle, x shift, y shift, flip) are those of earlier versions of the
    # code, so stored runs and resumed checkpoints keep meaning the same batches.
    x = torch.randint(0, 255, (8, 3, 32, 32), dtype=torch.uint8, generator=torch.Generator().manual_seed(1))
    b = data.Batches(x, torch.arange(8), "cifar10", batch_size=8, train=True, augment=True, seed=3)
    xb, yb = next(iter(b))
    g = torch.Generator().manual_seed(3)
    order = torch.randperm(8, generator=g)
    dx, dy = torch.randint(0, 9, (8,), generator=g), torch.randint(0, 9, (8,), generator=g)
    flip = torch.rand(8, generator=g) < 0.5
    assert torch.equal(yb, order)
    plain = torch.nn.functional.pad((x.float() - b._mean) / b._std, (4, 4, 4, 4))
    for j, i in enumerate(order.tolist()):
        crop = plain[i, :, dy[j]:dy[j] + 32, dx[j]:dx[j] + 32]
        assert torch.equal(xb[j], crop.flip(-1) if flip[j] else crop)


@pytest.mark.parametrize("name,params", [("lenet300", 266_610), ("resnet20", 269_722), ("resnet32", 464_154),
                                         ("resnet56", 853_018), ("resnet110", 1_727_962), ("vgg16", 15_251_402),
                                         ("vgg16_quarter", 956_666)])
def test_model_parameter_counts_and_output_shapes(name, params):
    m = models.build(name)
    assert sum(p.numel() for p in m.parameters()) == params
    x = torch.randn(2, 1, 28, 28) if name == "lenet300" else torch.randn(2, 3, 32, 32)
    assert m(x).shape == (2, 10)


def test_vgg16_has_13_convs_3_linears_and_raw_logits():
    m = models.vgg16().eval()
    assert len(models.conv_and_linear_weights(m, include_linear=False)) == 13
    assert len(models.conv_and_linear_weights(m)) == 16
    out = m(torch.randn(4, 3, 32, 32))
    assert (out < 0).any()  # no ReLU on the logits (a defect of older CIFAR VGG code)
    with pytest.raises(ValueError, match="dropout"):
        models.CifarVGG(dropout=1.0)
    with pytest.raises(ValueError, match="width must be in"):
        models.CifarVGG(width=0)
    q = models.vgg16_quarter()
    assert len(models.conv_and_linear_weights(q)) == 16 and q.features[0].out_channels == 16


def test_resnet20_has_19_convs_and_bad_depth_raises():
    assert len(models.conv_and_linear_weights(models.resnet20(), include_linear=False)) == 19
    with pytest.raises(ValueError, match="depth must be 6n\\+2"):
        models.CifarResNet(21)
    with pytest.raises(ValueError, match="unknown model 'vgg99'"):
        models.build("vgg99")


def test_profile_switch(monkeypatch):
    monkeypatch.delenv("LCBOOK_PROFILE", raising=False)
    assert references.profile() == "quick" and references.choose(1, 2) == 1
    monkeypatch.setenv("LCBOOK_PROFILE", "full")
    assert references.profile() == "full" and references.choose(1, 2) == 2
    monkeypatch.setenv("LCBOOK_PROFILE", "cpu")
    assert references.profile() == "cpu" and references.choose(1, 2) == 1 and references.choose(1, 2, cpu=3) == 3
    monkeypatch.setenv("LCBOOK_PROFILE", "fast")
    with pytest.raises(ValueError, match="LCBOOK_PROFILE must be 'quick', 'cpu' or 'full', got LCBOOK_PROFILE='fast'"):
        references.profile()


@pytest.mark.parametrize("path", sorted(references.REFERENCE_DIR.glob("*.pt")), ids=lambda p: p.name)
def test_committed_references_load_and_have_records(path):
    record = json.loads(path.with_suffix(".json").read_text())
    for key in ("command", "profile", "recipe", "test_error", "torch", "git_commit", "date", "hardware"):
        assert key in record, key
    state = torch.load(path, weights_only=True)
    m = models.build(record["model"])
    m.load_state_dict(state)
    assert path.stat().st_size <= 5 * 2**20


def test_atomic_save_leaves_no_partial_file(tmp_path):
    target = tmp_path / "x.pt"
    references.atomic_save({"a": torch.ones(3)}, target)

    class Bad:
        def __reduce__(self):
            raise RuntimeError("cannot pickle")

    with pytest.raises(Exception):
        references.atomic_save({"a": Bad()}, target)
    assert torch.equal(torch.load(target, weights_only=True)["a"], torch.ones(3))
    assert [p.name for p in tmp_path.iterdir()] == ["x.pt"]
