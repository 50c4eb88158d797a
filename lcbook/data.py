"""MNIST and CIFAR-10 as in-memory tensors, with or without internet.

One place decides where data lives: :func:`data_dir` (the environment variable
``LCBOOK_DATA_DIR``, else ``data/datasets`` in the project). For each dataset it looks, in order,
for:

1. a tensor cache ``<data_dir>/<name>.pt`` made by an earlier call (fast);
2. a class-folder tree ``<data_dir>/<name>/{train,test}/<class>/<image>`` (any image format
   Pillow reads; class folders sorted by name give the labels, as ``ImageFolder`` does);
3. an archive of that tree: ``$LCBOOK_ARCHIVE_DIR/<name>-*.tar.gz`` or
   ``../shared/data/<name>-*.tar.gz`` beside the project (the offline archives), extracted once;
4. ``torchvision.datasets`` with ``download=True`` (needs internet; official binaries).

Images are kept as uint8 tensors ``(N, C, H, W)``; :class:`Batches` turns them into normalised
float batches, with CIFAR augmentation (random crop with 4-pixel padding, horizontal flip) done
in torch on whole batches.
"""

from __future__ import annotations

import logging
import os
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Optional, Tuple

import torch

from ._checks import is_int

log = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parent.parent

#: Per-channel mean and std of the training images (in [0, 1] units).
STATS = {
    "mnist": ((0.1307,), (0.3081,)),
    "cifar10": ((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)),
}
_ARCHIVES = {"mnist": "mnist-png.tar.gz", "cifar10": "cifar10-jpeg.tar.gz"}


def data_dir() -> Path:
    """Where datasets live: ``$LCBOOK_DATA_DIR`` if set, else ``<project>/data/datasets``."""
    return Path(os.environ.get("LCBOOK_DATA_DIR", ROOT / "data" / "datasets")).expanduser()


def _archive(name: str) -> Optional[Path]:
    dirs = [os.environ.get("LCBOOK_ARCHIVE_DIR"), ROOT.parent / "shared" / "data"]
    for d in dirs:
        if d and (Path(d) / _ARCHIVES[name]).is_file():
            return Path(d) / _ARCHIVES[name]
    return None


def _read_folder(split_dir: Path, channels: int) -> Tuple[torch.Tensor, torch.Tensor]:
    from PIL import Image
    import numpy as np

    classes = sorted(p.name for p in split_dir.iterdir() if p.is_dir())
    if not classes:
        raise FileNotFoundError(f"no class folders in {split_dir}")
    images, labels = [], []
    mode = "L" if channels == 1 else "RGB"
    for label, c in enumerate(classes):
        for f in sorted((split_dir / c).iterdir()):
            with Image.open(f) as im:
                images.append(np.asarray(im.convert(mode)))
            labels.append(label)
    x = torch.from_numpy(np.stack(images))
    x = x[:, None] if channels == 1 else x.permute(0, 3, 1, 2)
    return x.contiguous(), torch.tensor(labels, dtype=torch.long)


def _from_torchvision(name: str, root: Path) -> dict:
    import torchvision

    cls = {"mnist": torchvision.datasets.MNIST, "cifar10": torchvision.datasets.CIFAR10}[name]
    out = {}
    for split in ("train", "test"):
        ds = cls(str(root / "torchvision"), train=split == "train", download=True)
        x = torch.as_tensor(ds.data)
        x = x[:, None] if name == "mnist" else x.permute(0, 3, 1, 2)
        out[split] = (x.contiguous(), torch.as_tensor(ds.targets, dtype=torch.long))
    return out


def load(name: str, download: bool = True) -> dict:
    """Both splits of a dataset as uint8 image tensors and int64 labels.

    Args:
        name: ``"mnist"`` (``(N, 1, 28, 28)``) or ``"cifar10"`` (``(N, 3, 32, 32)``).
        download: allow the torchvision download when no local copy is found.

    Returns:
        ``{"train": (x, y), "test": (x, y)}``.

    Raises:
        ValueError: unknown ``name``.
        FileNotFoundError: no local copy and ``download`` is False (the message says where
            the data was looked for).
    """
    if name not in _ARCHIVES:
        raise ValueError(f"unknown dataset {name!r}; choose 'mnist' or 'cifar10'")
    root = data_dir()
    cache = root / f"{name}.pt"
    if cache.is_file():
        return torch.load(cache, weights_only=True)
    tree = root / name
    if not (tree / "train").is_dir():
        arch = _archive(name)
        if arch is not None:
            log.info("extracting %s into %s", arch, tree)
            tree.mkdir(parents=True, exist_ok=True)
            with tarfile.open(arch) as tf:
                tf.extractall(tree, filter="data")
    if (tree / "train").is_dir():
        channels = 1 if name == "mnist" else 3
        data = {s: _read_folder(tree / s, channels) for s in ("train", "test")}
    elif download:
        data = _from_torchvision(name, root)
    else:
        raise FileNotFoundError(
            f"{name}: no cache {cache}, no folder {tree}/train, no archive {_ARCHIVES[name]} in "
            f"$LCBOOK_ARCHIVE_DIR or ../shared/data, and download=False"
        )
    root.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=root, suffix=".tmp")
    os.close(fd)
    try:
        torch.save(data, tmp)
        os.replace(tmp, cache)  # atomic: a killed run never leaves a half-written cache
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return data


def subset(x: torch.Tensor, y: torch.Tensor, n: Optional[int], seed: int = 0) -> Tuple[torch.Tensor, torch.Tensor]:
    """A class-balanced random subset of exactly ``n`` examples (all if ``n`` is None or ≥ N).

    Classes get ⌊n/C⌋ or ⌈n/C⌉ examples each; a class with too few examples gives all it has and
    the others make up the difference.
    """
    if len(x) != len(y):
        raise ValueError(f"x and y must have the same length, got {len(x)} and {len(y)}")
    if n is None or n >= len(y):
        return x, y
    if not is_int(n) or n < 1:
        raise ValueError(f"n must be an int ≥ 1 or None, got n={n!r}")
    g = torch.Generator().manual_seed(seed)
    classes = torch.unique(y)
    per = [torch.nonzero(y == c).flatten() for c in classes]
    per = [p[torch.randperm(len(p), generator=g)] for p in per]
    # Deal examples class by class (round robin), so every class gets n/C unless it runs out.
    rank = torch.cat([torch.arange(len(p)) for p in per])
    order = torch.argsort(rank * len(classes) + torch.cat([torch.full((len(p),), i) for i, p in enumerate(per)]))
    idx = torch.sort(torch.cat(per)[order[:n]]).values
    return x[idx], y[idx]


@dataclass
class Batches:
    """Mini-batches of normalised float images from uint8 tensors, on a device.

    Iterating yields ``(x, y)`` with ``x`` float32 ``(B, C, H, W)`` normalised by the dataset's
    channel mean/std. With ``train=True`` the order is reshuffled every pass and, if
    ``augment``, each image is randomly shifted by up to 4 pixels (a random 32×32 crop of the
    image padded by 4 pixels; the padding is 0 after normalisation, i.e. the mean colour) and
    flipped horizontally with probability ½.

    Args:
        x: ``(N, C, H, W)`` uint8 images.
        y: ``(N,)`` int64 labels.
        dataset: ``"mnist"`` or ``"cifar10"`` (chooses the normalisation).
        batch_size: images per batch (≥ 1).
        train: shuffle every pass (and augment if ``augment``).
        augment: crop-and-flip augmentation (CIFAR recipe); only with ``train``.
        device: where batches are produced; the images are moved there once, and the shuffling and
            augmentation random numbers are drawn there (from :attr:`generator`), so making a batch
            needs no host–device copy or synchronisation.
        seed: seed of the shuffling and augmentation generator.

    Attributes:
        generator: the ``torch.Generator`` on ``device`` that draws the order and the augmentation;
            its state (``generator.get_state()``) is what a resumed run restores. On a CPU the
            numbers are those of a CPU generator seeded with ``seed``; a GPU's generator (Philox)
            draws others, so a run resumes exactly on the device it started on.
    """

    x: torch.Tensor
    y: torch.Tensor
    dataset: str
    batch_size: int = 128
    train: bool = False
    augment: bool = False
    device: str = "cpu"
    seed: int = 0

    def __post_init__(self):
        if not is_int(self.batch_size) or self.batch_size < 1:
            raise ValueError(f"batch_size must be an int ≥ 1, got batch_size={self.batch_size!r}")
        self.batch_size = int(self.batch_size)
        if self.dataset not in STATS:
            raise ValueError(f"dataset must be one of {sorted(STATS)}, got dataset={self.dataset!r}")
        if self.x.dtype != torch.uint8 or len(self.x) != len(self.y):
            raise ValueError(f"x must be uint8 images with one label each in y, got x {self.x.dtype} "
                             f"{tuple(self.x.shape)} and y {tuple(self.y.shape)}")
        mean, std = STATS[self.dataset]
        self._mean = torch.tensor(mean, device=self.device).view(1, -1, 1, 1) * 255
        self._std = torch.tensor(std, device=self.device).view(1, -1, 1, 1) * 255
        # The shuffling and augmentation numbers are drawn where the batches are made, so a step on a
        # GPU never waits for a host-to-device copy of them (a CPU generator on a CPU).
        self.generator = torch.Generator(device=self.device).manual_seed(self.seed)
        self.x = self.x.to(self.device)
        self.y = self.y.to(self.device)

    def __len__(self) -> int:
        return (len(self.y) + self.batch_size - 1) // self.batch_size

    def _augment(self, xb: torch.Tensor) -> torch.Tensor:
        b, _, h, w = xb.shape
        g = self.generator
        pad = torch.nn.functional.pad(xb, (4, 4, 4, 4))
        dev = xb.device
        dx = torch.randint(0, 9, (b,), generator=g, device=dev)
        dy = torch.randint(0, 9, (b,), generator=g, device=dev)
        flip = torch.rand(b, generator=g, device=dev) < 0.5
        # Each image's crop as one gather: rows dy..dy+h, columns dx..dx+w (reversed if flipped).
        cols = torch.arange(w, device=dev)
        cols = torch.where(flip[:, None], w - 1 - cols, cols) + dx[:, None]
        rows = dy[:, None] + torch.arange(h, device=dev)
        return pad[torch.arange(b, device=dev)[:, None, None, None], torch.arange(xb.shape[1], device=dev)[None, :, None, None],
                   rows[:, None, :, None], cols[:, None, None, :]]

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        """Images ``(B, C, H, W)`` uint8 (0..255) as the float inputs the batches yield: each
        channel minus its dataset mean, over its standard deviation (:data:`STATS`)."""
        return (x.to(self.device).float() - self._mean) / self._std

    def __iter__(self) -> Iterator[Tuple[torch.Tensor, torch.Tensor]]:
        n = len(self.y)
        dev = self.y.device
        order = torch.randperm(n, generator=self.generator, device=dev) if self.train else torch.arange(n, device=dev)
        for i in range(0, n, self.batch_size):
            idx = order[i : i + self.batch_size]
            xb = self.normalize(self.x[idx])
            if self.train and self.augment:
                xb = self._augment(xb)
            yield xb, self.y[idx]


def prepare() -> None:
    """Make the tensor caches of both datasets (extracting or downloading them as needed)."""
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    for name in ("mnist", "cifar10"):
        d = load(name)
        log.info("%s: train %s, test %s in %s", name, tuple(d["train"][0].shape), tuple(d["test"][0].shape), data_dir())
