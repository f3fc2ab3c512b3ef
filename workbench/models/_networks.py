"""Factories for MONAI networks with dropout that can stay on at inference (MC dropout).

Classifiers are a deterministic ``trunk`` (image -> embedding [B, D]) followed by a ``head``
(dropout -> linear). MC sampling then runs the trunk once and only the head T times, and the
trunk's output is the penultimate embedding that core-set and BADGE need.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from monai.networks.blocks import Convolution
from monai.networks.nets import BasicUNet, DenseNet121, SegResNet, UNet, resnet18
from torch import Tensor, nn

from workbench.models._errors import ModelError
from workbench.models._pooling import AdaptiveAvgPool, MaxPool

ClassifierName = Literal["small_cnn", "densenet121", "resnet18"]
SegmenterName = Literal["basic_unet", "unet", "segresnet"]


class TrunkHeadNet(nn.Module):
    """``head(trunk(x))``; `embed` returns the trunk's output, the penultimate features."""

    def __init__(
        self,
        trunk: nn.Module,
        head: nn.Module,
        *,
        spatial_dims: int,
        in_channels: int,
        num_classes: int,
    ) -> None:
        super().__init__()
        self.trunk = trunk
        self.head = head
        self.spatial_dims = spatial_dims
        self.in_channels = in_channels
        self.num_classes = num_classes

    def embed(self, x: Tensor) -> Tensor:
        """Penultimate features.  # [B, C, *spatial] -> [B, D]"""
        return self.trunk(x)

    def forward(self, x: Tensor) -> Tensor:
        """Logits.  # [B, C, *spatial] -> [B, num_classes]"""
        return self.head(self.trunk(x))


def _check_dims(spatial_dims: int) -> None:
    if spatial_dims not in (2, 3):
        raise ModelError(f"spatial_dims must be 2 or 3, got {spatial_dims}")


def _head(features: int, num_classes: int, dropout: float) -> nn.Sequential:
    return nn.Sequential(nn.Dropout(dropout), nn.Linear(features, num_classes))


def small_cnn(
    *,
    spatial_dims: int = 2,
    in_channels: int = 1,
    num_classes: int = 2,
    channels: Sequence[int] = (16, 32),
    hidden: int = 128,
    dropout: float = 0.5,
) -> TrunkHeadNet:
    """A compact conv net for small images (MedMNIST 28x28 or 28x28x28): conv blocks with batch
    norm and max-pooling, adaptive pooling to 4 per axis, a hidden layer, then dropout + linear.
    Its pooling trains deterministically on CUDA too (`workbench.models._pooling`)."""
    _check_dims(spatial_dims)
    layers: list[nn.Module] = []
    previous = in_channels
    for width in channels:
        layers.append(
            Convolution(spatial_dims, previous, width, kernel_size=3, act="RELU", norm="BATCH")
        )
        layers.append(MaxPool(spatial_dims))
        previous = width
    layers += [
        AdaptiveAvgPool(4, spatial_dims),
        nn.Flatten(1),
        nn.Linear(previous * 4**spatial_dims, hidden),
        nn.ReLU(inplace=True),
    ]
    return TrunkHeadNet(
        nn.Sequential(*layers),
        _head(hidden, num_classes, dropout),
        spatial_dims=spatial_dims,
        in_channels=in_channels,
        num_classes=num_classes,
    )


def densenet121(
    *,
    spatial_dims: int = 2,
    in_channels: int = 1,
    num_classes: int = 2,
    dropout: float = 0.5,
    block_dropout: float = 0.0,
) -> TrunkHeadNet:
    """MONAI DenseNet121; ``block_dropout`` > 0 also samples inside the dense blocks (slower MC)."""
    _check_dims(spatial_dims)
    net = DenseNet121(
        spatial_dims=spatial_dims,
        in_channels=in_channels,
        out_channels=num_classes,
        dropout_prob=block_dropout,
    )
    layers = dict(net.class_layers.named_children())
    trunk = nn.Sequential(net.features, layers["relu"], layers["pool"], layers["flatten"])
    head = nn.Sequential(nn.Dropout(dropout), layers["out"])
    return TrunkHeadNet(
        trunk, head, spatial_dims=spatial_dims, in_channels=in_channels, num_classes=num_classes
    )


def resnet18_classifier(
    *, spatial_dims: int = 2, in_channels: int = 1, num_classes: int = 2, dropout: float = 0.5
) -> TrunkHeadNet:
    """MONAI ResNet-18 trunk (512 features) with a dropout + linear head."""
    _check_dims(spatial_dims)
    trunk = resnet18(spatial_dims=spatial_dims, n_input_channels=in_channels, feed_forward=False)
    return TrunkHeadNet(
        trunk,
        _head(512, num_classes, dropout),
        spatial_dims=spatial_dims,
        in_channels=in_channels,
        num_classes=num_classes,
    )


def build_classifier(
    name: ClassifierName,
    *,
    spatial_dims: int = 2,
    in_channels: int = 1,
    num_classes: int = 2,
    dropout: float = 0.5,
) -> TrunkHeadNet:
    """A classifier by name: ``small_cnn``, ``densenet121`` or ``resnet18``."""
    if name == "small_cnn":
        return small_cnn(
            spatial_dims=spatial_dims,
            in_channels=in_channels,
            num_classes=num_classes,
            dropout=dropout,
        )
    if name == "densenet121":
        return densenet121(
            spatial_dims=spatial_dims,
            in_channels=in_channels,
            num_classes=num_classes,
            dropout=dropout,
        )
    if name == "resnet18":
        return resnet18_classifier(
            spatial_dims=spatial_dims,
            in_channels=in_channels,
            num_classes=num_classes,
            dropout=dropout,
        )
    raise ModelError(f"unknown classifier {name!r}; use small_cnn, densenet121 or resnet18")


def build_segmenter(
    name: SegmenterName,
    *,
    spatial_dims: int = 3,
    in_channels: int = 1,
    num_classes: int = 2,
    dropout: float = 0.1,
    features: Sequence[int] | None = None,
) -> nn.Module:
    """A segmentation network by name (``basic_unet``, ``unet``, ``segresnet``) with dropout in
    its blocks; outputs logits [B, num_classes, *spatial]. ``features`` sets the widths."""
    _check_dims(spatial_dims)
    if name == "basic_unet":
        return BasicUNet(
            spatial_dims=spatial_dims,
            in_channels=in_channels,
            out_channels=num_classes,
            dropout=dropout,
            features=tuple(features or (16, 16, 32, 64, 128, 16)),
        )
    if name == "unet":
        channels = tuple(features or (16, 32, 64, 128))
        return UNet(
            spatial_dims=spatial_dims,
            in_channels=in_channels,
            out_channels=num_classes,
            channels=channels,
            strides=(2,) * (len(channels) - 1),
            num_res_units=2,
            dropout=dropout,
        )
    if name == "segresnet":
        return SegResNet(
            spatial_dims=spatial_dims,
            in_channels=in_channels,
            out_channels=num_classes,
            dropout_prob=dropout,
            init_filters=(features or (8,))[0],
        )
    raise ModelError(f"unknown segmenter {name!r}; use basic_unet, unet or segresnet")
