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
