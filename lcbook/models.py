"""Models of the book: LeNet300 for MNIST and the CIFAR-10 ResNets of He et al. (2016).

Parameter counts (checked by the tests):

* :class:`LeNet300` (784-300-100-10): 266,610 parameters.
* :func:`resnet20` ≈ 0.27M, :func:`resnet32` ≈ 0.46M, :func:`resnet56` ≈ 0.85M,
  :func:`resnet110` ≈ 1.7M parameters.
* :func:`vgg16` (CIFAR, BatchNorm): 15,251,402 parameters ≈ 15M; :func:`vgg16_quarter` (quick profile): 956,666.

References: LeCun et al., *Gradient-based learning applied to document recognition*, 1998
(LeNet300); He, Zhang, Ren & Sun, *Deep residual learning for image recognition*, CVPR 2016,
§4.2 (CIFAR ResNets: 3 stages of 16/32/64 channels, 6n+2 layers, option-A shortcuts);
Simonyan & Zisserman, *Very deep convolutional networks*, ICLR 2015 (VGG-16, configuration D)
with BatchNorm (Ioffe & Szegedy 2015) as adapted to CIFAR-10 in the LC experiments [P5].
"""

from __future__ import annotations

from typing import List

import torch
import torch.nn.functional as F
from torch import nn

from ._checks import is_int, is_real
from .export import register_architecture


class LeNet300(nn.Module):
    """LeNet300: a 784-300-100-10 fully connected net with tanh units (as in the LC toolkit).

    Input ``(B, 1, 28, 28)`` or ``(B, 784)`` images; output ``(B, 10)`` logits.
    """

    def __init__(self, num_classes: int = 10):
        super().__init__()
        self.fc1 = nn.Linear(784, 300)
        self.fc2 = nn.Linear(300, 100)
        self.fc3 = nn.Linear(100, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.reshape(x.shape[0], -1)
        return self.fc3(torch.tanh(self.fc2(torch.tanh(self.fc1(x)))))


class _BasicBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.stride, self.pad = stride, c_out - c_in

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        sc = x
        if self.stride != 1 or self.pad:
            # Option A: subsample by 2 and zero-pad the new channels (no parameters).
            sc = x[:, :, :: self.stride, :: self.stride]
            sc = F.pad(sc, (0, 0, 0, 0, self.pad // 2, self.pad - self.pad // 2))
        return F.relu(out + sc)


class CifarResNet(nn.Module):
    """The CIFAR-10 ResNet of He et al. (2016, §4.2) with 6n+2 layers.

    Input ``(B, 3, 32, 32)``, output ``(B, num_classes)`` logits. Conv layers have no bias;
    every conv is followed by BatchNorm.

    Args:
        depth: 20, 32, 44, 56 or 110 (any 6n+2).
        num_classes: output classes.

    Raises:
        ValueError: if ``depth`` is not of the form 6n+2 with n ≥ 1.
    """

    def __init__(self, depth: int = 20, num_classes: int = 10):
        super().__init__()
        if not is_int(depth) or depth < 8 or (depth - 2) % 6:
            raise ValueError(f"depth must be 6n+2 with n ≥ 1 (20, 32, 56, 110), got depth={depth!r}")
        n = (depth - 2) // 6
        self.conv1 = nn.Conv2d(3, 16, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        layers: List[nn.Module] = []
        c_in = 16
        for stage, c in enumerate((16, 32, 64)):
            blocks = []
            for i in range(n):
                stride = 2 if (stage > 0 and i == 0) else 1
                blocks.append(_BasicBlock(c_in, c, stride))
                c_in = c
            layers.append(nn.Sequential(*blocks))
        self.layer1, self.layer2, self.layer3 = layers
        self.fc = nn.Linear(64, num_classes)
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                nn.init.kaiming_normal_(m.weight, nonlinearity="relu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.bn1(self.conv1(x)))
        x = self.layer3(self.layer2(self.layer1(x)))
        x = F.adaptive_avg_pool2d(x, 1).flatten(1)
        return self.fc(x)


def resnet20(num_classes: int = 10) -> CifarResNet:
    """ResNet-20 for CIFAR (≈0.27M parameters)."""
    return CifarResNet(20, num_classes)


def resnet32(num_classes: int = 10) -> CifarResNet:
    """ResNet-32 for CIFAR (≈0.46M parameters)."""
    return CifarResNet(32, num_classes)


def resnet56(num_classes: int = 10) -> CifarResNet:
    """ResNet-56 for CIFAR (≈0.85M parameters)."""
    return CifarResNet(56, num_classes)


def resnet110(num_classes: int = 10) -> CifarResNet:
    """ResNet-110 for CIFAR (≈1.7M parameters)."""
    return CifarResNet(110, num_classes)


#: VGG-16 (configuration D): 13 conv layers; "M" is a 2×2 max-pool.
_VGG16 = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M")


class CifarVGG(nn.Module):
    """VGG-16 with BatchNorm for 32×32 CIFAR images.

    13 conv layers (3×3, padding 1, each followed by BatchNorm and ReLU; 5 max-pools take
    32×32 to 1×1), then a classifier ``Dropout → Linear(512, 512) → BatchNorm → ReLU → Dropout →
    Linear(512, 512) → BatchNorm → ReLU → Linear(512, num_classes)``. The output is the raw logits
    (no ReLU on them). Input ``(B, 3, 32, 32)``, output ``(B, num_classes)``.

    Args:
        num_classes: output classes.
        dropout: dropout probability in the classifier, in [0, 1).
        width: channel multiplier in (0, 1] (every conv and hidden layer has ``round(width·c)``
            units); 1 is VGG-16. The quick profile uses 0.25 (0.96M parameters, 1/16 of the
            FLOPs) so that a 2-core CPU can train and compress it; the full profile uses 1.

    Raises:
        ValueError: ``dropout`` outside [0, 1) or ``width`` outside (0, 1].
    """

    def __init__(self, num_classes: int = 10, dropout: float = 0.5, width: float = 1.0):
        super().__init__()
        if not (is_real(dropout) and 0 <= dropout < 1):
            raise ValueError(f"dropout must be in [0, 1), got dropout={dropout!r}")
        if not is_real(width) or not 0 < width <= 1:
            raise ValueError(f"width must be in (0, 1], got width={width!r}")
        layers: List[nn.Module] = []
        c_in = 3
        for v in _VGG16:
            if v == "M":
                layers.append(nn.MaxPool2d(2))
            else:
                c = max(1, round(width * v))
                layers += [nn.Conv2d(c_in, c, 3, padding=1, bias=False), nn.BatchNorm2d(c), nn.ReLU(inplace=True)]
                c_in = c
        h = max(1, round(width * 512))
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Sequential(
            nn.Dropout(dropout), nn.Linear(c_in, h), nn.BatchNorm1d(h), nn.ReLU(inplace=True),
            nn.Dropout(dropout), nn.Linear(h, h), nn.BatchNorm1d(h), nn.ReLU(inplace=True),
            nn.Linear(h, num_classes),
        )
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x).flatten(1))


def vgg16(num_classes: int = 10) -> CifarVGG:
    """VGG-16 with BatchNorm for CIFAR (15,251,402 parameters ≈ 15M)."""
    return CifarVGG(num_classes)


def vgg16_quarter(num_classes: int = 10) -> CifarVGG:
    """VGG-16 at a quarter of the width (16…128 channels; 0.96M parameters): the quick
    profile's stand-in for VGG-16, same 13 conv + 3 linear layers."""
    return CifarVGG(num_classes, width=0.25)


MODELS = {"lenet300": LeNet300, "vgg16": vgg16, "vgg16_quarter": vgg16_quarter, "resnet20": resnet20, "resnet32": resnet32, "resnet56": resnet56, "resnet110": resnet110}

for _name, _builder in MODELS.items():  # the book's models are export architectures by name
    register_architecture(_name, _builder)


def build(name: str) -> nn.Module:
    """A fresh model by name (one of :data:`MODELS`); ``ValueError`` for an unknown name."""
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; choose one of {sorted(MODELS)}")
    return MODELS[name]()


def conv_and_linear_weights(model: nn.Module, include_linear: bool = True) -> List[str]:
    """Names of the weights of every Conv2d (and Linear) layer, in model order.

    BatchNorm parameters and biases are left out: they stay uncompressed (32-bit floats).
    """
    kinds = (nn.Conv2d, nn.Linear) if include_linear else (nn.Conv2d,)
    return [f"{name}.weight" for name, m in model.named_modules() if isinstance(m, kinds)]
