"""Patches for scans too large for one forward pass: random training patches and sliding-window
inference (MONAI's ``sliding_window_inference``), the way nnU-Net and MONAI's bundles handle
whole CT and MRI volumes."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Literal

import torch
import torch.nn.functional as F
from monai.inferers import sliding_window_inference
from torch import Tensor

from workbench.models._errors import ModelError


@dataclass(frozen=True)
class SlidingWindow:
    """Inference over overlapping ``roi_size`` patches, ``batch_size`` patches per forward
    pass, blended with ``mode`` weights (``gaussian`` down-weights patch borders). The blended
    output is gathered on ``output_device`` (default: the input's device), so a GPU can run the
    patches while a whole volume's output sits in host memory."""

    roi_size: tuple[int, ...]
    overlap: float = 0.25
    batch_size: int = 4
    mode: Literal["gaussian", "constant"] = "gaussian"
    output_device: str | None = None

    def __post_init__(self) -> None:
        if not self.roi_size or any(int(s) < 1 for s in self.roi_size):
            raise ModelError(
                f"patch size must be positive per axis, got {self.roi_size}", field="patch_size"
            )
        if not 0.0 <= self.overlap < 1.0:
            raise ModelError(
                f"window overlap must be in [0, 1), got {self.overlap}", field="sw_overlap"
            )
        if self.batch_size < 1:
            raise ModelError(
                f"window batch size must be >= 1, got {self.batch_size}", field="sw_batch_size"
            )


def window_predict(fn: Callable[[Tensor], Tensor], x: Tensor, window: SlidingWindow) -> Tensor:
    """``fn`` over overlapping patches of ``x``, blended back to its full size; inputs smaller
    than a patch are padded for ``fn`` and cropped back.  # [B, C, *S] -> [B, K, *S]"""
    dims = x.ndim - 2
    if len(window.roi_size) != dims:
        raise ModelError(
            f"patch size {window.roi_size} has {len(window.roi_size)} axes but the "
            f"images have {dims} spatial dimensions",
            field="patch_size",
        )
    device = window.output_device or x.device
    out = sliding_window_inference(
        x,
        window.roi_size,
        window.batch_size,
        fn,
        overlap=window.overlap,
        mode=window.mode,
        device=device,
    )
    assert isinstance(out, Tensor)
    return out


def patch_start(
    shape: Sequence[int],
    roi: Sequence[int],
    *,
    foreground: Callable[[], Tensor],
    foreground_fraction: float,
    generator: torch.Generator | None,
) -> list[int]:
    """Where a random ``roi`` patch of a ``shape`` image starts: uniform, or, with probability
    ``foreground_fraction`` and when the image has foreground (``foreground()``: its voxels
    ``[F, dims]``, asked for only then), centred on one of them, clipped to the image.
    ``shape`` >= ``roi`` per axis."""
    u = torch.rand(2 + len(roi), generator=generator).tolist()  # foreground?, which voxel, corner
    start = [int(c * (s - r + 1)) for c, s, r in zip(u[2:], shape, roi, strict=True)]
    voxels = foreground() if u[0] < foreground_fraction else None
    if voxels is not None and len(voxels):
        centre = voxels[min(int(u[1] * len(voxels)), len(voxels) - 1)].tolist()
        start = [
            min(max(int(c) - r // 2, 0), s - r) for c, s, r in zip(centre, shape, roi, strict=True)
        ]
    return start


def random_patches(
    x: Tensor,
    y: Tensor,
    roi_size: Sequence[int],
    *,
    foreground_fraction: float = 1 / 3,
    generator: torch.Generator | None = None,
    keys: Tensor | None = None,
) -> tuple[Tensor, Tensor]:
    """One random ``roi_size`` patch per image and the same patch of its mask. With probability
    ``foreground_fraction`` the patch is centred on a random foreground voxel (mask > 0) of the
    image, as nnU-Net oversamples foreground; images smaller than a patch are zero-padded first
    (the mask as background). With int64 ``keys`` ``[B]`` each image's patch depends on its key
    only (not on ``generator`` or the batch it is in).
    # x [B, C, *S], y [B, 1, *S] -> [B, C, *roi], [B, 1, *roi]"""
    roi = tuple(int(s) for s in roi_size)
    dims = x.ndim - 2
    if len(roi) != dims:
        raise ModelError(
            f"patch size {roi} has {len(roi)} axes but the images have {dims} spatial dimensions",
            field="patch_size",
        )
    x, y = pad_to(x, roi), pad_to(y, roi)
    shape = tuple(x.shape[2:])
    if shape == roi:
        return x, y
    xs, ys = [], []
    if keys is not None and len(keys) != x.shape[0]:
        raise ModelError(f"{len(keys)} patch keys for a batch of {x.shape[0]} images")
    for b in range(x.shape[0]):
        if keys is not None:
            generator = torch.Generator().manual_seed(int(keys[b]))
        start = patch_start(
            shape,
            roi,
            foreground=partial(torch.nonzero, y[b, 0] > 0),
            foreground_fraction=foreground_fraction,
            generator=generator,
        )
        box = (slice(None), *(slice(a, a + r) for a, r in zip(start, roi, strict=True)))
        xs.append(x[b][box])
        ys.append(y[b][box])
    return torch.stack(xs), torch.stack(ys)


def pad_to(t: Tensor, roi: tuple[int, ...]) -> Tensor:
    """Zero-pad the spatial axes (centred) up to at least ``roi``.  # [B, C, *S] -> [B, C, *S']"""
    short = [max(r - s, 0) for s, r in zip(t.shape[2:], roi, strict=True)]
    if not any(short):
        return t
    pads: list[int] = []
    for gap in reversed(short):  # F.pad lists the last axis first
        pads += [gap // 2, gap - gap // 2]
    return F.pad(t, pads)
