"""Slice order and patient geometry of a DICOM series (LPS in, RAS affine out)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset

from ..errors import ScanReadError

LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])
_ORIENTATION_TOL = 1e-4
_DUPLICATE_MM = 1e-3
_TILT_DEGREES = 0.1


@dataclass(frozen=True)
class SliceGeometry:
    """Where one slice sits: ``row_dir`` is the direction of increasing column index."""

    position: np.ndarray  # (3,) ImagePositionPatient, LPS mm
    row_dir: np.ndarray  # (3,) ImageOrientationPatient[:3]
    col_dir: np.ndarray  # (3,) ImageOrientationPatient[3:]
    pixel_spacing: tuple[float, float]  # (between rows, between columns) mm

    @property
    def normal(self) -> np.ndarray:
        return np.cross(self.row_dir, self.col_dir)


@dataclass(frozen=True)
class VolumeGeometry:
    order: tuple[int, ...]  # indices into the input slices, in increasing position
    affine: np.ndarray  # (4, 4) maps (i=column, j=row, k=slice) to RAS mm
    spacing: tuple[float, float, float]
    warnings: tuple[str, ...]


def pixel_spacing(ds: Dataset) -> tuple[float, float]:
    """(row, column) spacing in mm from PixelSpacing (or ImagerPixelSpacing), else 1 mm."""
    value = ds.get("PixelSpacing") or ds.get("ImagerPixelSpacing")
    if value is not None and len(value) == 2:
        return float(value[0]), float(value[1])
    return 1.0, 1.0


def slice_geometry(ds: Dataset) -> SliceGeometry | None:
    """The slice's geometry, or ``None`` when position or orientation is missing."""
    position, orientation = ds.get("ImagePositionPatient"), ds.get("ImageOrientationPatient")
    if position is None or orientation is None or len(position) != 3 or len(orientation) != 6:
        return None
    iop = np.asarray([float(v) for v in orientation])
    return SliceGeometry(
        position=np.asarray([float(v) for v in position]),
        row_dir=iop[:3] / np.linalg.norm(iop[:3]),
        col_dir=iop[3:] / np.linalg.norm(iop[3:]),
        pixel_spacing=pixel_spacing(ds),
    )


def plane_affine(geom: SliceGeometry) -> np.ndarray:
    """Affine of one 2D slice mapping ``(row, column, 0, 1)`` to RAS mm."""
    lps = np.eye(4)
    lps[:3, 0] = geom.col_dir * geom.pixel_spacing[0]
    lps[:3, 1] = geom.row_dir * geom.pixel_spacing[1]
    lps[:3, 2] = geom.normal
    lps[:3, 3] = geom.position
    return LPS_TO_RAS @ lps


def _check_same_plane(geoms: Sequence[SliceGeometry], path: Path) -> None:
    first = geoms[0]
    for geom in geoms[1:]:
        same = np.allclose(geom.row_dir, first.row_dir, atol=_ORIENTATION_TOL) and np.allclose(
            geom.col_dir, first.col_dir, atol=_ORIENTATION_TOL
        )
        if not same:
            raise ScanReadError(
                "slices of the series have different orientations; cannot stack them",
                path=path,
                field="ImageOrientationPatient",
            )
        if not np.allclose(geom.pixel_spacing, first.pixel_spacing, rtol=1e-4):
            raise ScanReadError(
                "slices of the series have different pixel spacings",
                path=path,
                field="PixelSpacing",
            )


def stack_geometry(
    geoms: Sequence[SliceGeometry], path: Path, *, single_step: float = 1.0
) -> VolumeGeometry:
    """Sort slices along the slice normal and build the volume's RAS affine.

    Uneven steps and gantry tilt (slice positions not moving along the normal) are reported in
    ``warnings``; the affine then uses the mean step vector (first to last slice), so a tilted
    series gets a sheared affine. Two slices at the same position raise ``ScanReadError``.
    """
    _check_same_plane(geoms, path)
    first = geoms[0]
    normal = first.normal
    distances = np.asarray([float(np.dot(normal, g.position)) for g in geoms])
    order = tuple(int(i) for i in np.argsort(distances, kind="stable"))
    warnings: list[str] = []
    if len(geoms) == 1:
        step = normal * single_step
    else:
        steps = np.diff(distances[list(order)])
        if np.any(steps < _DUPLICATE_MM):
            raise ScanReadError(
                f"{int(np.sum(steps < _DUPLICATE_MM))} slice(s) share a position with another "
                "slice (several acquisitions in one series?); cannot stack them",
                path=path,
                field="ImagePositionPatient",
            )
        mean = float(steps.mean())
        if float(np.ptp(steps)) > max(_DUPLICATE_MM, 0.01 * mean):
            warnings.append(
                f"uneven slice spacing: steps from {steps.min():.4g} to {steps.max():.4g} mm; "
                f"the affine uses the mean step {mean:.4g} mm (resample before measuring)"
            )
        step = (geoms[order[-1]].position - geoms[order[0]].position) / (len(geoms) - 1)
        cosine = abs(float(np.dot(step, normal))) / float(np.linalg.norm(step))
        tilt = math.degrees(math.acos(min(1.0, cosine)))
        if tilt > _TILT_DEGREES:
            warnings.append(
                f"gantry tilt of {tilt:.2f} degrees: slices are sheared; the affine includes "
                "the shear (resample before measuring)"
            )
    origin = geoms[order[0]]
    lps = np.eye(4)
    lps[:3, 0] = origin.row_dir * origin.pixel_spacing[1]
    lps[:3, 1] = origin.col_dir * origin.pixel_spacing[0]
    lps[:3, 2] = step
    lps[:3, 3] = origin.position
    spacing = (origin.pixel_spacing[1], origin.pixel_spacing[0], float(np.linalg.norm(step)))
    return VolumeGeometry(order, LPS_TO_RAS @ lps, spacing, tuple(warnings))
