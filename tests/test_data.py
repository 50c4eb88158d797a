"""Datasets and batches (lcbook.data): image folders, caches, class-balanced subsets, augmentation."""

import pytest
import torch
from helpers import image_tree

from lcbook import data
from lcbook.train import SGDLStep


def test_image_folder_tree_is_read_and_cached(tmp_path, monkeypatch):
    monkeypatch.setenv("LCBOOK_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("LCBOOK_ARCHIVE_DIR", str(tmp_path / "none"))
    image_tree(tmp_path / "cifar10", 3)
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
    plain = torch.nn.functional.pad(b.normalize(x), (4, 4, 4, 4))
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
    plain = torch.nn.functional.pad(b.normalize(x), (4, 4, 4, 4))
    for j, i in enumerate(order.tolist()):
        crop = plain[i, :, dy[j]:dy[j] + 32, dx[j]:dx[j] + 32]
        assert torch.equal(xb[j], crop.flip(-1) if flip[j] else crop)


DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


@pytest.mark.parametrize("device", DEVICES)
def test_batches_draw_their_random_numbers_on_their_device_and_replay_from_a_saved_state(device):
    """No host-device copy per batch: images, labels, order and augmentation live on the device,
    drawn by a generator there; restoring its state replays the same batches (the resume contract)."""
    x = torch.randint(0, 255, (40, 3, 32, 32), dtype=torch.uint8, generator=torch.Generator().manual_seed(2))
    b = data.Batches(x, torch.arange(40), "cifar10", batch_size=16, train=True, augment=True, seed=5, device=device)
    assert b.generator.device.type == device and b.x.device.type == device
    state = b.generator.get_state()
    first = [(xb.clone(), yb.clone()) for xb, yb in b]
    assert all(xb.device.type == device and yb.device.type == device for xb, yb in first)
    b.generator.set_state(state)
    again = list(b)
    assert all(torch.equal(a[0], c[0]) and torch.equal(a[1], c[1]) for a, c in zip(first, again))
    assert not torch.equal(first[0][1], next(iter(b))[1])  # a new pass is a new order
    # an L step resumes the batches from that state, checked against the generator's own device
    step = SGDLStep(b)
    step.load_state_dict({"generator": state})
    assert torch.equal(b.generator.get_state(), state)
    with pytest.raises(ValueError, match="not a torch generator state"):
        step.load_state_dict({"generator": state[:8]})
    other = "cuda" if device == "cpu" else "cpu"  # a state of the other kind of generator is refused
    if other == "cpu" or torch.cuda.is_available():
        foreign = torch.Generator(device=other).manual_seed(0).get_state()
        with pytest.raises(ValueError, match="not a torch generator state"):
            step.load_state_dict({"generator": foreign})
        assert torch.equal(b.generator.get_state(), state)  # nothing changed
