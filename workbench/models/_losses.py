"""The segmentation loss: MONAI's Dice + cross-entropy, deterministic on CUDA too.

For label maps PyTorch's cross-entropy runs ``nll_loss2d``, which has no deterministic CUDA
kernel (two seeded trainings drift apart there; seen on an H200, docs/benchmarks.md). On CUDA
the cross-entropy is taken against one-hot targets instead: the same value, from elementwise
products and sums. On the CPU MONAI's own path runs, bit for bit as before.
"""

from __future__ import annotations

import monai.losses
import torch
import torch.nn.functional as F
from torch import Tensor


def cross_entropy_from_one_hot(logits: Tensor, labels: Tensor) -> Tensor:
    """Mean cross-entropy of ``logits`` ``[B, C, *spatial]`` against class indices ``labels``
    ``[B, *spatial]``, with no gather or scatter.  # -> scalar"""
    classes = torch.arange(logits.shape[1], device=logits.device)
    one_hot = labels.unsqueeze(1) == classes.view(1, -1, *([1] * (logits.ndim - 2)))
    return -(F.log_softmax(logits, dim=1) * one_hot).sum(dim=1).mean()


class DiceCELoss(monai.losses.DiceCELoss):
    """MONAI's `DiceCELoss`; its cross-entropy on CUDA label maps is
    `cross_entropy_from_one_hot` (unweighted, no label smoothing: the settings used here)."""

    def ce(self, input: Tensor, target: Tensor) -> Tensor:  # noqa: A002 (MONAI's names)
        plain = (
            self.cross_entropy.weight is None
            and self.cross_entropy.label_smoothing == 0
            and self.cross_entropy.ignore_index < 0
        )
        if input.is_cuda and plain and target.shape[1] == 1 and input.shape[1] > 1:
            return cross_entropy_from_one_hot(input, target[:, 0].long())
        return super().ce(input, target)
