"""`small_cnn`'s pooling, with backward passes that are deterministic on CUDA.

PyTorch's ``adaptive_avg_pool{2,3}d`` and ``max_pool3d`` backward on CUDA add gradients with
atomics, so two trainings with one seed drift apart there (seen on an H200,
docs/benchmarks.md). Adaptive average pooling is a product with one fixed averaging matrix per
axis (each output cell's window is a box, the product of per-axis windows); 2x max pooling is
a maximum over a reshaped view. Both have deterministic gradients. On the CPU PyTorch's own
kernels run, so results there are bit for bit what they were.
"""

from __future__ import annotations

import functools

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def averaging_matrix(
    size_in: int,
    size_out: int,
    *,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str | None = None,
) -> Tensor:
    """Row ``i`` averages input cells ``floor(i * n / m)`` to ``ceil((i + 1) * n / m) - 1``,
    PyTorch's adaptive pooling windows.  # -> [size_out, size_in]"""
    out = torch.arange(size_out)
    start = out * size_in // size_out
    end = -((-(out + 1) * size_in) // size_out)  # ceiling division
    cells = torch.arange(size_in)
    inside = (cells[None, :] >= start[:, None]) & (cells[None, :] < end[:, None])
    weights = inside.to(torch.float64) / (end - start)[:, None]
    return weights.to(dtype=dtype, device=device)


@functools.lru_cache(maxsize=64)
def _cached_matrix(size_in: int, size_out: int, dtype: torch.dtype, device: torch.device) -> Tensor:
    """`averaging_matrix`, made once per shape, dtype and device (not per forward pass), and
    never as an inference tensor, which a later training could not use."""
    with torch.inference_mode(False):
        return averaging_matrix(size_in, size_out, dtype=dtype, device=device)


def adaptive_avg_pool_by_matrices(x: Tensor, size: int) -> Tensor:
    """``adaptive_avg_pool{2,3}d(x, size)`` as one matrix product per spatial axis.
    # [B, C, *spatial] -> [B, C, size, ...]"""
    for axis in range(2, x.ndim):
        matrix = _cached_matrix(int(x.shape[axis]), size, x.dtype, x.device)
        x = torch.movedim(torch.movedim(x, axis, -1) @ matrix.T, -1, axis)
    return x


class AdaptiveAvgPool(nn.Module):
    """Adaptive average pooling to ``size`` per axis: PyTorch's kernel on the CPU (bit for bit
    what earlier versions computed), `adaptive_avg_pool_by_matrices` on CUDA, where PyTorch's
    backward is not deterministic. No weights: checkpoints are unchanged."""

    def __init__(self, size: int, spatial_dims: int) -> None:
        super().__init__()
        self.size = size
        self.spatial_dims = spatial_dims

    def forward(self, x: Tensor) -> Tensor:
        """# [B, C, *spatial] -> [B, C, size, ...]"""
        if x.is_cuda:
            return adaptive_avg_pool_by_matrices(x, self.size)
        pool = F.adaptive_avg_pool2d if self.spatial_dims == 2 else F.adaptive_avg_pool3d
        return pool(x, self.size)

    def extra_repr(self) -> str:
        return f"size={self.size}, spatial_dims={self.spatial_dims}"


def max_pool_by_reshape(x: Tensor) -> Tensor:
    """``max_pool{2,3}d(x, 2)`` (an odd side loses its last cell, as there) as the maximum over
    a reshaped view. Where a window holds tied maxima the gradient is shared among them rather
    than given to one.  # [B, C, *spatial] -> [B, C, *(side // 2)]"""
    halves = [side // 2 for side in x.shape[2:]]
    for axis, half in enumerate(halves, start=2):
        x = x.narrow(axis, 0, 2 * half)
    pairs = x.reshape(*x.shape[:2], *(n for half in halves for n in (half, 2)))
    return pairs.amax(dim=tuple(range(3, 3 + 2 * len(halves), 2)))


class MaxPool(nn.Module):
    """2x max pooling: PyTorch's kernel, except for volumes on CUDA (whose ``max_pool3d``
    backward is not deterministic), where `max_pool_by_reshape` runs. No weights."""

    def __init__(self, spatial_dims: int) -> None:
        super().__init__()
        self.spatial_dims = spatial_dims

    def forward(self, x: Tensor) -> Tensor:
        """# [B, C, *spatial] -> [B, C, *(side // 2)]"""
        if self.spatial_dims == 3 and x.is_cuda:
            return max_pool_by_reshape(x)
        pool = F.max_pool2d if self.spatial_dims == 2 else F.max_pool3d
        return pool(x, 2)

    def extra_repr(self) -> str:
        return f"spatial_dims={self.spatial_dims}"
