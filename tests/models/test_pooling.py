"""`small_cnn`'s pooling: PyTorch's kernels on the CPU; on CUDA, matrix products and a reshaped
maximum, whose backward passes are deterministic there. Both pool alike, and checkpoints are
unchanged."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from workbench.models import small_cnn
from workbench.models._pooling import (
    AdaptiveAvgPool,
    MaxPool,
    adaptive_avg_pool_by_matrices,
    averaging_matrix,
    max_pool_by_reshape,
)
from workbench.models._rng import deterministic_kernels


def test_averaging_matrix_by_hand() -> None:
    # 7 cells into 4: PyTorch's windows are [0, 2), [1, 4), [3, 6), [5, 7)
    expected = torch.tensor(
        [
            [1 / 2, 1 / 2, 0, 0, 0, 0, 0],
            [0, 1 / 3, 1 / 3, 1 / 3, 0, 0, 0],
            [0, 0, 0, 1 / 3, 1 / 3, 1 / 3, 0],
            [0, 0, 0, 0, 0, 1 / 2, 1 / 2],
        ]
    )
    torch.testing.assert_close(averaging_matrix(7, 4), expected)
    torch.testing.assert_close(
        averaging_matrix(2, 4),  # fewer cells than outputs: repeats
        torch.tensor([[1.0, 0], [1, 0], [0, 1], [0, 1]]),
    )


@pytest.mark.parametrize(
    "shape",
    [(2, 3, 7, 7), (1, 2, 14, 9), (2, 1, 4, 4), (1, 1, 3, 5), (2, 2, 7, 5, 6), (1, 1, 4, 9, 2)],
)
def test_matrix_pooling_equals_pytorchs_values_and_gradients(shape: tuple[int, ...]) -> None:
    x = torch.randn(shape, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    pool = F.adaptive_avg_pool2d if len(shape) == 4 else F.adaptive_avg_pool3d
    ours = x.clone().requires_grad_(True)
    theirs = x.clone().requires_grad_(True)
    weights = torch.randn(pool(x, 4).shape, dtype=torch.float64)
    out_ours, out_theirs = adaptive_avg_pool_by_matrices(ours, 4), pool(theirs, 4)
    torch.testing.assert_close(out_ours, out_theirs)
    (out_ours * weights).sum().backward()
    (out_theirs * weights).sum().backward()
    assert ours.grad is not None and theirs.grad is not None
    torch.testing.assert_close(ours.grad, theirs.grad)


def test_matrices_first_made_under_inference_mode_still_train() -> None:
    """Lightning validates and predicts under inference mode; the matrices it leaves cached
    must serve the next training."""
    with torch.inference_mode():
        adaptive_avg_pool_by_matrices(torch.randn(1, 1, 11, 13), 4)
    x = torch.randn(1, 1, 11, 13, requires_grad=True)
    adaptive_avg_pool_by_matrices(x, 4).sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()


@pytest.mark.parametrize("shape", [(2, 3, 8, 6, 4), (1, 2, 7, 5, 9), (2, 1, 6, 6)])
def test_reshaped_max_pooling_equals_pytorchs_values_and_gradients(shape: tuple[int, ...]) -> None:
    x = torch.randn(shape, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    pool = F.max_pool2d if len(shape) == 4 else F.max_pool3d
    ours = x.clone().requires_grad_(True)
    theirs = x.clone().requires_grad_(True)
    weights = torch.randn(pool(x, 2).shape, dtype=torch.float64)
    out_ours, out_theirs = max_pool_by_reshape(ours), pool(theirs, 2)
    assert torch.equal(out_ours, out_theirs)
    (out_ours * weights).sum().backward()
    (out_theirs * weights).sum().backward()
    assert ours.grad is not None and theirs.grad is not None
    assert torch.equal(ours.grad, theirs.grad)


def test_tied_maxima_share_the_gradient() -> None:
    x = torch.ones(1, 1, 2, 2, 2, requires_grad=True)
    max_pool_by_reshape(x).sum().backward()
    assert x.grad is not None
    torch.testing.assert_close(x.grad, torch.full_like(x, 1 / 8))


@pytest.mark.parametrize("spatial_dims", [2, 3])
def test_small_cnn_on_the_cpu_is_pytorchs_pooling_bit_for_bit(spatial_dims: int) -> None:
    """Swapping in PyTorch's own module changes neither the state dict (old checkpoints load)
    nor a single output bit on the CPU (stored CPU results still reproduce)."""
    torch.manual_seed(0)
    net = small_cnn(spatial_dims=spatial_dims).eval()
    reference = small_cnn(spatial_dims=spatial_dims).eval()
    trunk = reference.trunk
    assert isinstance(trunk, nn.Sequential)
    ours = [i for i, layer in enumerate(trunk) if isinstance(layer, (AdaptiveAvgPool, MaxPool))]
    assert len(ours) == 3
    for i in ours:
        if isinstance(trunk[i], MaxPool):
            trunk[i] = (nn.MaxPool2d if spatial_dims == 2 else nn.MaxPool3d)(2)
        else:
            trunk[i] = (nn.AdaptiveAvgPool2d if spatial_dims == 2 else nn.AdaptiveAvgPool3d)(4)
    assert list(net.state_dict()) == list(reference.state_dict())
    reference.load_state_dict(net.state_dict())
    x = torch.randn(3, 1, *([28] * spatial_dims))
    with torch.no_grad():
        assert torch.equal(net(x), reference(x))


def test_deterministic_kernels_are_restored_also_after_an_error() -> None:
    before = (
        torch.are_deterministic_algorithms_enabled(),
        torch.is_deterministic_algorithms_warn_only_enabled(),
        torch.backends.cudnn.benchmark,
    )
    with pytest.raises(RuntimeError, match="inside"), deterministic_kernels():
        assert torch.are_deterministic_algorithms_enabled()
        assert not torch.backends.cudnn.benchmark
        raise RuntimeError("inside")
    assert (
        torch.are_deterministic_algorithms_enabled(),
        torch.is_deterministic_algorithms_warn_only_enabled(),
        torch.backends.cudnn.benchmark,
    ) == before
