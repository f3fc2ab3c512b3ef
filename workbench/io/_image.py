"""The one image type every reader returns."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class ScanImage:
    """A scan: voxels plus the geometry needed to put them back in patient space.

    Axis conventions:
      * 2D images: ``array`` is ``(H, W)`` or ``(H, W, C)`` for RGB(A), rows first, as displayed.
        ``spacing`` is ``(row_mm, col_mm)``.
      * 3D volumes: ``array`` is ``(I, J, K)`` in NIfTI voxel order; ``affine`` maps
        ``(i, j, k, 1)`` to RAS+ millimetres (as nibabel does). DICOM series are converted to this
        convention (LPS -> RAS). ``spacing`` is the voxel size along I, J, K in mm.

    ``metadata`` only holds safe, non-identifying fields (no patient name, ID or birth date).
    ``warnings`` lists geometry problems found while reading (gantry tilt, uneven spacing).
    """

    array: np.ndarray
    spacing: tuple[float, ...]
    affine: np.ndarray
    modality: str = "OT"
    metadata: Mapping[str, str] = field(default_factory=dict)
    source: str = ""
    warnings: tuple[str, ...] = ()

    @property
    def ndim_spatial(self) -> int:
        """2 for images (including RGB), 3 for volumes."""
        if self.array.ndim == 3 and len(self.spacing) == 2:
            return 2
        return len(self.spacing)

    @property
    def is_rgb(self) -> bool:
        return self.ndim_spatial == 2 and self.array.ndim == 3

    @property
    def spatial_shape(self) -> tuple[int, ...]:
        return tuple(int(s) for s in self.array.shape[: self.ndim_spatial])


def affine_from_spacing(spacing: tuple[float, ...]) -> np.ndarray:
    """A diagonal 4x4 affine for data that carries only a voxel size."""
    affine = np.eye(4)
    for axis, size in enumerate(spacing[:3]):
        affine[axis, axis] = float(size)
    return affine
