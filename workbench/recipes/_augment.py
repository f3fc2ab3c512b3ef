"""Batch augmentation in torch, applied on the device after transfer (cheap on CPU and GPU).

Random values come from ``torch.rand`` or, given ``keys`` (one 32-bit key per image, e.g.
`draw_keys` of (seed, item id, draw number)), from a hash of the key: then an image's
augmentation does not depend on which batch or process it lands in (data parallel training).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from workbench.models._dropout import keyed_uniform


class _Uniforms:
    """Columns of uniform [0, 1) values per image, drawn in a fixed order.  # [B, k] each"""

    def __init__(self, x: Tensor, keys: Tensor | None, total: int) -> None:
        self.b, self.device = x.shape[0], x.device
        self.table = None if keys is None else keyed_uniform(keys, total).to(x.device)
        self.used = 0

    def take(self, k: int) -> Tensor:
        if self.table is None:
            return torch.rand(self.b, k, device=self.device)
        out = self.table[:, self.used : self.used + k]
        self.used += k
        return out


def augment_images(
    x: Tensor,
    *,
    flip_axes: tuple[int, ...],
    rotate: float,
    shift: float,
    scale: float,
    intensity: float,
    keys: Tensor | None = None,
) -> Tensor:
    """Random flips, a small affine (2D: rotation/shift/scale) and intensity jitter per image;
    with ``keys`` [B] the random values are hashed from each image's key.
    # [B, C, *spatial] -> [B, C, *spatial]"""
    b = x.shape[0]
    affine = x.ndim == 4 and bool(rotate or shift or scale)
    u = _Uniforms(x, keys, len(flip_axes) + 4 * affine + 2 * bool(intensity))
    x = flip(x, flip_axes, uniform=u.take(len(flip_axes)))[0]
    if affine:
        r = u.take(4) * 2 - 1  # [B, 4]: angle, zoom, shift y, shift x
        angle = r[:, 0] * rotate
        zoom = 1 + r[:, 1] * scale
        cos, sin = torch.cos(angle) / zoom, torch.sin(angle) / zoom
        offset = r[:, 2:] * shift * 2
        theta = torch.stack(
            [torch.stack([cos, -sin, offset[:, 0]], 1), torch.stack([sin, cos, offset[:, 1]], 1)],
            1,
        )  # [B, 2, 3]
        grid = F.affine_grid(theta, list(x.shape), align_corners=False)
        x = F.grid_sample(x, grid, padding_mode="zeros", align_corners=False)
    if intensity:
        r = (u.take(2) * 2 - 1).view(b, 2, *([1] * (x.ndim - 1)))
        x = x * (1 + r[:, 0] * intensity) + r[:, 1] * intensity
    return x


def augment_scans(
    x: Tensor,
    y: Tensor,
    *,
    flip_axes: tuple[int, ...],
    intensity: float,
    keys: Tensor | None = None,
) -> tuple[Tensor, Tensor]:
    """Segmentation: random flips of image and mask together, and intensity jitter of the image;
    with ``keys`` [B] the random values are hashed from each scan's key (a patch's augmentation
    then does not depend on its batch, worker or process).
    # x [B, C, *spatial], y [B, 1, *spatial] -> the same shapes"""
    axes = tuple(a for a in flip_axes if a < x.ndim - 2)
    u = _Uniforms(x, keys, len(axes) + 2 * bool(intensity))
    x, y = flip(x, axes, y, uniform=u.take(len(axes)))
    if intensity:
        r = (u.take(2) * 2 - 1).view(x.shape[0], 2, *([1] * (x.ndim - 1)))
        x = x * (1 + r[:, 0] * intensity) + r[:, 1] * intensity
    return x, y


def flip(
    x: Tensor, axes: tuple[int, ...], *others: Tensor, uniform: Tensor | None = None
) -> tuple[Tensor, ...]:
    """Flip each image (and the same items of ``others``, e.g. masks) along each spatial axis in
    ``axes`` (0 = first spatial axis) with probability 1/2; ``uniform`` [B, len(axes)] gives the
    random values (``torch.rand`` when None).  # [B, C, *spatial] each"""
    outs = [x, *others]
    u = torch.rand(x.shape[0], len(axes), device=x.device) if uniform is None else uniform
    for j, axis in enumerate(axes):
        pick = u[:, j] < 0.5  # [B]
        if not bool(pick.any()):
            continue
        dim = axis + 2
        outs = [torch.where(_bcast(pick, t), torch.flip(t, (dim,)), t) for t in outs]
    return tuple(outs)


def _bcast(mask: Tensor, like: Tensor) -> Tensor:
    return mask.view(-1, *([1] * (like.ndim - 1)))


DEFAULT_ROTATE = math.radians(15)
