"""Networks for tests of what happens when a training goes wrong."""

from __future__ import annotations

import torch


class OneClass(torch.nn.Module):
    """Ignores its input: the same logits (a trained bias) for every image, so every image gets
    one class and the validation AUC is 0.5 whatever the seed."""

    def __init__(self, num_classes: int) -> None:
        super().__init__()
        self.bias = torch.nn.Parameter(torch.zeros(num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bias.expand(x.shape[0], -1) + 0.0 * x.flatten(1).sum(1, keepdim=True)


def one_class_network(*, spatial_dims: int, in_channels: int, num_classes: int) -> OneClass:
    """A `NetworkFactory` for `OneClass`."""
    return OneClass(num_classes)


class RaisesInForward(OneClass):
    """`OneClass` whose forward raises ``error`` (a host out-of-memory, a Ctrl-C) in training."""

    def __init__(self, num_classes: int, error: BaseException) -> None:
        super().__init__(num_classes)
        self.error = error

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        raise self.error


class RaisingNetwork:
    """A `NetworkFactory` for `RaisesInForward`."""

    def __init__(self, error: BaseException) -> None:
        self.error = error

    def __call__(self, *, spatial_dims: int, in_channels: int, num_classes: int) -> RaisesInForward:
        return RaisesInForward(num_classes, self.error)
