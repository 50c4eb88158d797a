"""The model zoo (lcbook.models): parameter counts, layers, output shapes."""

import pytest
import torch

from lcbook import models


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
