"""Scans of their own shapes, each kept once in its stored dtype (uint8 from the loop, or a
read-only memory map), and training patches cut from them one draw at a time: patch training
holds no padded or float copy of the labelled set, so its memory grows by one byte per labelled
voxel rather than by five."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset

from workbench.models import ModelError
from workbench.models._windows import pad_to, patch_start
from workbench.recipes._data import as_images


def check_masks(images: Sequence[np.ndarray], masks: Sequence[np.ndarray]) -> None:
    """ModelError naming the first mask whose shape is not its image's ``[C, *spatial]``."""
    for n, (image, mask) in enumerate(zip(images, masks, strict=True)):
        if tuple(image.shape[1:]) != tuple(mask.shape):
            raise ModelError(
                f"label mask {n} has shape {tuple(mask.shape)} but its image "
                f"{tuple(image.shape[1:])}",
                field="mask",
            )


def mask_tensor(mask: np.ndarray) -> Tensor:
    """A mask of class indices as a tensor: uint8 (or bool) stays uint8, 8x less to hold and hand
    over than int64 (the training step casts it); other dtypes become int64."""
    a = np.asarray(mask)
    return torch.from_numpy(a.astype(np.uint8 if a.dtype in (np.uint8, np.bool_) else np.int64))


class ScanList(Dataset[dict[str, Any]]):
    """Images ``[C, *S_i]`` and masks ``[*S_i]`` of per-scan shapes, batches of one scan each
    (``{"image" [1, C, *S], "label" [1, 1, *S], "id" [1]}``): validation over sliding windows."""

    def __init__(
        self, images: Sequence[np.ndarray], labels: Sequence[np.ndarray], spatial_dims: int
    ) -> None:
        if len(images) != len(labels):
            raise ModelError(f"{len(images)} images but {len(labels)} masks", field="mask")
        self.images = [a if a.ndim == spatial_dims + 1 else a[None] for a in images]
        self.labels = list(labels)
        for n, image in enumerate(self.images):
            if image.ndim != spatial_dims + 1:
                raise ModelError(
                    f"image {n} has shape {image.shape}; expected [(C,) *spatial] "
                    f"with {spatial_dims} spatial dims",
                    field="spatial_dims",
                )
        check_masks(self.images, self.labels)
        self.spatial_dims = spatial_dims

    @property
    def in_channels(self) -> int:
        return int(self.images[0].shape[0]) if self.images else 1

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> dict[str, Any]:
        return self.__getitems__([index])

    def __getitems__(self, indices: list[int]) -> dict[str, Any]:
        if len(indices) != 1:
            raise ModelError("scans of different shapes are served one per batch")
        (n,) = indices
        return {
            "image": as_images(self.images[n][None], self.spatial_dims),
            "label": mask_tensor(self.labels[n])[None, None],
            "id": torch.tensor([n], dtype=torch.int64),
        }


class PatchDraws(Dataset[dict[str, Any]]):
    """Training patches of ``roi`` cut from `ScanList` scans per ``(index, draw)`` pair (what
    `GlobalBatchSampler` yields): a third (``foreground_fraction``) centred on a foreground voxel,
    the rest uniform; scans smaller than a patch are zero-padded (background). The patch of a
    draw depends only on (seed, index, draw), so every process of a distributed run cuts the same
    one. Patches of uint8 scans and masks stay uint8 (the training step converts them), so that
    worker processes hand over little; other scans' patches are converted to float.
    Batches: ``{"image" [B, C, *roi], "label" [B, 1, *roi], "id" [B], "draw" [B]}``."""

    serves_draws = True

    def __init__(
        self, scans: ScanList, roi: Sequence[int], *, seed: int, foreground_fraction: float = 1 / 3
    ) -> None:
        self.scans, self.roi = scans, tuple(int(r) for r in roi)
        if len(self.roi) != scans.spatial_dims:
            raise ModelError(
                f"patch size {self.roi} has {len(self.roi)} axes but the images "
                f"have {scans.spatial_dims} spatial dimensions",
                field="patch_size",
            )
        self.seed, self.foreground_fraction = seed, foreground_fraction
        self._foreground: dict[int, Tensor] = {}

    def __len__(self) -> int:
        return len(self.scans)

    def __getitem__(self, index: int) -> dict[str, Any]:
        raise TypeError("PatchDraws serves whole batches of (index, draw) via __getitems__")

    def _voxels(self, n: int) -> Tensor:
        """Scan ``n``'s foreground voxels ``[F, dims]``, found once (int32 where they fit)."""
        if n not in self._foreground:
            found = np.argwhere(np.asarray(self.scans.labels[n]) > 0)
            self._foreground[n] = torch.from_numpy(found.astype(np.int32))
        return self._foreground[n]

    def patch(self, n: int, draw: int) -> tuple[Tensor, Tensor]:
        """Draw ``draw``'s patch of scan ``n``: image ``[C, *roi]``, mask ``[1, *roi]``."""
        image, mask = self.scans.images[n], self.scans.labels[n]
        shape = tuple(mask.shape)
        state = np.random.SeedSequence([self.seed & 0xFFFFFFFF, n, draw]).generate_state(2)
        generator = torch.Generator().manual_seed(int(state[0]) << 32 | int(state[1]))
        fits = tuple(min(s, r) for s, r in zip(shape, self.roi, strict=True))
        start = patch_start(
            shape,
            fits,
            foreground=lambda: self._voxels(n),
            foreground_fraction=self.foreground_fraction,
            generator=generator,
        )
        box = tuple(slice(a, a + r) for a, r in zip(start, fits, strict=True))
        cut = image[(None, slice(None), *box)]  # [1, C, *fits]
        # uint8 stays uint8 until the training step (`pixels_as_float`): 4x less to hand over
        x = torch.from_numpy(np.array(cut)) if cut.dtype == np.uint8 else as_images(cut, len(box))
        y = mask_tensor(mask[box])[None, None]
        if fits != self.roi:  # a scan smaller than the patch: pad, centred, with background
            x, y = pad_to(x, self.roi), pad_to(y, self.roi)
        return x[0], y[0]

    def __getitems__(self, pairs: list[tuple[int, int]]) -> dict[str, Any]:
        patches = [self.patch(n, draw) for n, draw in pairs]
        return {
            "image": torch.stack([x for x, _ in patches]),
            "label": torch.stack([y for _, y in patches]),
            "id": torch.tensor([n for n, _ in pairs], dtype=torch.int64),
            "draw": torch.tensor([d for _, d in pairs], dtype=torch.int64),
        }
