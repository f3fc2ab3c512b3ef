"""The segmentation loss: MONAI's DiceCE on the CPU, bit for bit; on CUDA its cross-entropy is
taken against one-hot targets, which gives the same value and gradient."""

from __future__ import annotations

import monai.losses
import pytest
import torch
import torch.nn.functional as F

from workbench.models._losses import DiceCELoss, cross_entropy_from_one_hot


@pytest.mark.parametrize("shape", [(2, 3, 6, 5), (2, 2, 4, 3, 5)])
def test_one_hot_cross_entropy_equals_pytorchs_value_and_gradient(shape: tuple[int, ...]) -> None:
    generator = torch.Generator().manual_seed(0)
    logits = torch.randn(shape, dtype=torch.float64, generator=generator)
    labels = torch.randint(shape[1], (shape[0], *shape[2:]), generator=generator)
    ours = logits.clone().requires_grad_(True)
    theirs = logits.clone().requires_grad_(True)
    loss_ours = cross_entropy_from_one_hot(ours, labels)
    loss_theirs = F.cross_entropy(theirs, labels)
    torch.testing.assert_close(loss_ours, loss_theirs)
    loss_ours.backward()
    loss_theirs.backward()
    assert ours.grad is not None and theirs.grad is not None
    torch.testing.assert_close(ours.grad, theirs.grad)


def test_on_the_cpu_it_is_monais_loss_bit_for_bit() -> None:
    generator = torch.Generator().manual_seed(1)
    logits = torch.randn(2, 3, 8, 8, 4, generator=generator)
    labels = torch.randint(3, (2, 1, 8, 8, 4), generator=generator)
    ours = DiceCELoss(to_onehot_y=True, softmax=True)(logits, labels)
    assert torch.equal(
        ours, monai.losses.DiceCELoss(to_onehot_y=True, softmax=True)(logits, labels)
    )
    assert torch.isclose(
        ours,
        monai.losses.DiceLoss(to_onehot_y=True, softmax=True)(logits, labels)
        + cross_entropy_from_one_hot(logits, labels[:, 0]),
    )
