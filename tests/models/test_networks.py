from __future__ import annotations

import pytest
import torch
from torch import nn

from workbench.models import (
    ModelError,
    build_classifier,
    build_segmenter,
    enable_mc_dropout,
    mc_dropout,
    small_cnn,
)
from workbench.models._networks import ClassifierName, SegmenterName


@pytest.mark.parametrize("name", ["small_cnn", "densenet121", "resnet18"])
def test_classifiers_give_logits_and_embeddings(name: ClassifierName) -> None:
    net = build_classifier(name, num_classes=3).eval()
    x = torch.randn(2, 1, 32, 32)
    assert net(x).shape == (2, 3)
    assert net.embed(x).ndim == 2


@pytest.mark.parametrize("name", ["basic_unet", "unet", "segresnet"])
def test_segmenters_3d_and_2d(name: SegmenterName) -> None:
    net3d = build_segmenter(name, num_classes=3).eval()
    assert net3d(torch.randn(1, 1, 32, 32, 32)).shape == (1, 3, 32, 32, 32)
    net2d = build_segmenter(name, spatial_dims=2).eval()
    assert net2d(torch.randn(1, 1, 32, 32)).shape == (1, 2, 32, 32)


def test_unknown_names_and_dims_raise_model_error() -> None:
    with pytest.raises(ModelError, match="unknown classifier"):
        build_classifier("vgg")  # type: ignore[arg-type]
    with pytest.raises(ModelError, match="spatial_dims"):
        small_cnn(spatial_dims=4)


def _running_mean(bn: nn.BatchNorm2d) -> torch.Tensor:
    """The layer's running mean (set: the layers track running stats)."""
    assert bn.running_mean is not None
    return bn.running_mean


def test_mc_dropout_samples_differ_while_batchnorm_stays_frozen() -> None:
    net = small_cnn()
    net.train()
    net(torch.randn(64, 1, 28, 28))  # give BN non-trivial running stats
    bn = [m for m in net.modules() if isinstance(m, nn.BatchNorm2d)]
    stats = [_running_mean(m).clone() for m in bn]
    x = torch.randn(4, 1, 28, 28)
    with torch.no_grad(), mc_dropout(net):
        assert all(not m.training for m in bn)
        outs = torch.stack([net(x) for _ in range(10)])
    assert torch.unique(outs[:, 0, 0]).numel() == 10  # T distinct samples
    assert all(torch.equal(_running_mean(m), s) for m, s in zip(bn, stats, strict=True))
    assert net.training  # modes restored
    enable_mc_dropout(net)
    head = net.head
    assert isinstance(head, nn.Sequential)
    assert not net.trunk.training and head[0].training
