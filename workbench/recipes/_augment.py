"""Batch augmentation in torch, applied on the device after transfer (cheap on CPU and GPU)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor


def augment_images(
    x: Tensor,
    *,
    flip_axes: tuple[int, ...],
    rotate: float,
    shift: float,
    scale: float,
    intensity: float,
) -> Tensor:
    """Random flips, a small affine (2D: rotation/shift/scale) and intensity jitter per image.
    # [B, C, *spatial] -> [B, C, *spatial]"""
    b = x.shape[0]
    x = flip(x, flip_axes)[0]
    if x.ndim == 4 and (rotate or shift or scale):
        angle = (torch.rand(b, device=x.device) * 2 - 1) * rotate
        zoom = 1 + (torch.rand(b, device=x.device) * 2 - 1) * scale
        cos, sin = torch.cos(angle) / zoom, torch.sin(angle) / zoom
        offset = (torch.rand(b, 2, device=x.device) * 2 - 1) * shift * 2
        theta = torch.stack(
            [torch.stack([cos, -sin, offset[:, 0]], 1), torch.stack([sin, cos, offset[:, 1]], 1)],
            1,
        )  # [B, 2, 3]
        grid = F.affine_grid(theta, list(x.shape), align_corners=False)
        x = F.grid_sample(x, grid, padding_mode="zeros", align_corners=False)
    if intensity:
        gain = 1 + (torch.rand(b, *([1] * (x.ndim - 1)), device=x.device) * 2 - 1) * intensity
        bias = (torch.rand(b, *([1] * (x.ndim - 1)), device=x.device) * 2 - 1) * intensity
        x = x * gain + bias
    return x


def flip(x: Tensor, axes: tuple[int, ...], *others: Tensor) -> tuple[Tensor, ...]:
    """Flip each image (and the same items of ``others``, e.g. masks) along each spatial axis in
    ``axes`` (0 = first spatial axis) with probability 1/2.  # [B, C, *spatial] each"""
    outs = [x, *others]
    for axis in axes:
        pick = torch.rand(x.shape[0], device=x.device) < 0.5  # [B]
        if not bool(pick.any()):
            continue
        dim = axis + 2
        outs = [torch.where(_bcast(pick, t), torch.flip(t, (dim,)), t) for t in outs]
    return tuple(outs)


def _bcast(mask: Tensor, like: Tensor) -> Tensor:
    return mask.view(-1, *([1] * (like.ndim - 1)))


DEFAULT_ROTATE = math.radians(15)
