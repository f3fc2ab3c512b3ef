"""Displayed planes of 2D images and 3D volumes, and the map from plane pixels to mask voxels.

Volumes are ``(I, J, K)`` in NIfTI voxel order (RAS+ for a diagonal affine). Planes are shown in
the neurological convention (patient right on screen right), superior / anterior up:

* ``axial``    fixes K; rows run along J (reversed), columns along I.
* ``coronal``  fixes J; rows run along K (reversed), columns along I.
* ``sagittal`` fixes I; rows run along K (reversed), columns along J.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

AXES = ("axial", "coronal", "sagittal")
# fixed axis, row axis, column axis
_LAYOUT = {"axial": (2, 1, 0), "coronal": (1, 2, 0), "sagittal": (0, 2, 1)}


@dataclass(frozen=True)
class Plane:
    """One displayed plane: ``axis`` ("image" for 2D) and ``index`` of the fixed voxel axis."""

    shape: tuple[int, ...]  # spatial shape of the whole mask
    axis: str = "image"
    index: int = 0

    @property
    def fixed_axis(self) -> int | None:
        return None if self.axis == "image" else _LAYOUT[self.axis][0]

    @property
    def size(self) -> tuple[int, int]:
        """(rows, cols) of the displayed plane."""
        if self.axis == "image":
            return int(self.shape[0]), int(self.shape[1])
        _, row_ax, col_ax = _LAYOUT[self.axis]
        return int(self.shape[row_ax]), int(self.shape[col_ax])

    @property
    def n_slices(self) -> int:
        fixed = self.fixed_axis
        return 1 if fixed is None else int(self.shape[fixed])

    @property
    def key(self) -> str:
        return f"{self.axis}:{self.index}"

    def take(self, volume: np.ndarray) -> np.ndarray:
        """[rows, cols, ...] the plane of ``volume`` (a view where possible)."""
        if self.axis == "image":
            return volume
        fixed, row_ax, col_ax = _LAYOUT[self.axis]
        sl = volume[(slice(None),) * fixed + (self.index,)]  # a view (np.take copies slowly)
        # remaining axes keep their order; map row/col axes into the 2D slice's axes
        remaining = [a for a in range(3) if a != fixed]
        out = np.moveaxis(sl, (remaining.index(row_ax), remaining.index(col_ax)), (0, 1))
        return out[::-1]

    def take_range(self, volume: np.ndarray, start: int, stop: int) -> np.ndarray:
        """[n, rows, cols, ...] planes ``start..stop-1`` along the fixed axis, one copy (much
        faster than ``take`` per plane when the fixed axis is the fastest-varying one)."""
        if self.axis == "image":
            return np.ascontiguousarray(volume[None])
        fixed, row_ax, col_ax = _LAYOUT[self.axis]
        sl = volume[(slice(None),) * fixed + (slice(start, stop),)]
        out = np.moveaxis(sl, (fixed, row_ax, col_ax), (0, 1, 2))
        return np.ascontiguousarray(out[:, ::-1])

    def spacing(self, spacing: tuple[float, ...]) -> tuple[float, float]:
        """(row_mm, col_mm) of the plane."""
        if self.axis == "image":
            return float(spacing[0]), float(spacing[1])
        _, row_ax, col_ax = _LAYOUT[self.axis]
        return float(spacing[row_ax]), float(spacing[col_ax])

    def to_mask_index(self, plane_flat: np.ndarray) -> np.ndarray:
        """Flat mask indices of flat plane indices."""
        plane_flat = np.asarray(plane_flat, np.int64)
        if self.axis == "image":
            return plane_flat
        rows, cols = self.size
        r, c = np.divmod(plane_flat, cols)
        fixed, row_ax, col_ax = _LAYOUT[self.axis]
        ijk: list[np.ndarray] = [plane_flat] * 3
        ijk[fixed] = np.full(plane_flat.shape, self.index, np.int64)
        ijk[row_ax] = rows - 1 - r
        ijk[col_ax] = c
        return np.asarray(np.ravel_multi_index(tuple(ijk), self.shape[:3]), np.int64)

    def from_mask_index(self, mask_flat: np.ndarray) -> np.ndarray:
        """Flat plane indices of the given flat mask indices that lie on this plane."""
        mask_flat = np.asarray(mask_flat, np.int64)
        if self.axis == "image":
            return mask_flat
        ijk = np.unravel_index(mask_flat, self.shape[:3])
        fixed, row_ax, col_ax = _LAYOUT[self.axis]
        on = ijk[fixed] == self.index
        rows, cols = self.size
        return (rows - 1 - ijk[row_ax][on]) * cols + ijk[col_ax][on]

    def on_plane(self, mask_flat: np.ndarray) -> np.ndarray:
        """Bool per flat mask index: does it lie on this plane?"""
        fixed = self.fixed_axis
        if fixed is None:
            return np.ones(np.shape(mask_flat), bool)
        ijk = np.unravel_index(np.asarray(mask_flat, np.int64), self.shape[:3])
        return np.asarray(ijk[fixed] == self.index)
