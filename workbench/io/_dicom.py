"""DICOM files and series: header scan, grouping by SeriesInstanceUID, stacking, rescale."""

from __future__ import annotations

import os
import struct
import zlib
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pydicom
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError

from ..errors import ScanReadError, UnsupportedFormatError
from ._dicom_codecs import ensure_decoder
from ._dicom_geometry import plane_affine, slice_geometry, stack_geometry
from ._dicom_meta import modality_of, safe_metadata
from ._image import ScanImage, affine_from_spacing
from ._paths import walk_files
from ._uris import dicom_uri

_DICOM_ERRORS = (
    InvalidDicomError,
    OSError,
    EOFError,
    ValueError,
    KeyError,
    IndexError,
    TypeError,
    AttributeError,
    RuntimeError,
    struct.error,
    zlib.error,
)
_DICOMDIR_CLASS = "1.2.840.10008.1.3.10"


@dataclass(frozen=True)
class DicomSeries:
    """One series found under a folder (headers only; pixels are read by ``load``)."""

    folder: Path
    series_uid: str
    modality: str
    description: str
    series_number: int
    files: tuple[Path, ...]

    @property
    def uri(self) -> str:
        return dicom_uri(self.folder, self.series_uid)

    def load(self) -> ScanImage:
        return read_series_files(self.files, source=self.uri)


def has_dicom_magic(path: Path) -> bool:
    """True when the file has the 'DICM' marker after the 128-byte preamble."""
    try:
        with path.open("rb") as stream:
            head = stream.read(132)
    except OSError:
        return False
    return head[128:132] == b"DICM"


def read_dataset(path: Path, *, headers_only: bool = False) -> Dataset:
    """``pydicom.dcmread`` with every failure turned into ``ScanReadError`` naming the file."""
    try:
        return pydicom.dcmread(
            path, stop_before_pixels=headers_only, force=not has_dicom_magic(path)
        )
    except _DICOM_ERRORS as exc:
        raise ScanReadError(f"not a readable DICOM file ({exc})", path=path) from exc


def _pixels(ds: Dataset, path: Path) -> np.ndarray:
    if "PixelData" not in ds and "FloatPixelData" not in ds:
        sop = ds.get("SOPClassUID")
        name = getattr(sop, "name", sop) or "unknown SOP class"
        raise UnsupportedFormatError(f"DICOM object has no pixel data ({name})", path=path)
    meta = getattr(ds, "file_meta", None)
    transfer_syntax = getattr(meta, "TransferSyntaxUID", None)
    if transfer_syntax is not None:
        ensure_decoder(str(transfer_syntax), path)
    try:
        return np.asarray(ds.pixel_array)
    except _DICOM_ERRORS as exc:
        raise ScanReadError(f"cannot decode DICOM pixel data ({exc})", path=path) from exc


def _rescale_params(ds: Dataset) -> tuple[float, float]:
    slope = ds.get("RescaleSlope")
    intercept = ds.get("RescaleIntercept")
    return (
        float(slope) if slope not in (None, "") else 1.0,
        float(intercept) if intercept not in (None, "") else 0.0,
    )


def _apply_rescale(pixels: np.ndarray, params: Sequence[tuple[float, float]]) -> np.ndarray:
    """Per-slice ``slope * stored + intercept``; float32 unless every slice is identity.

    ``pixels`` has the slice index on its last axis, one ``(slope, intercept)`` per slice.
    """
    if all(p == (1.0, 0.0) for p in params):
        return pixels
    slopes = np.asarray([p[0] for p in params], dtype=np.float32)
    intercepts = np.asarray([p[1] for p in params], dtype=np.float32)
    return pixels.astype(np.float32) * slopes + intercepts


def _single_file_image(ds: Dataset, path: Path, source: str) -> ScanImage:
    pixels = _pixels(ds, path)
    frames = int(ds.get("NumberOfFrames", 1) or 1)
    colour = int(ds.get("SamplesPerPixel", 1) or 1) > 1
    geom = slice_geometry(ds)
    metadata = safe_metadata(ds)
    if frames == 1:
        spacing_2d = geom.pixel_spacing if geom else (1.0, 1.0)
        array = pixels
        if not colour:
            array = _apply_rescale(pixels[..., None], [_rescale_params(ds)])[..., 0]
        affine = plane_affine(geom) if geom else affine_from_spacing(spacing_2d)
        return ScanImage(array, spacing_2d, affine, modality_of(ds), metadata, source)
    if colour:
        raise UnsupportedFormatError(
            f"multi-frame colour DICOM ({frames} frames) is not supported", path=path
        )
    # (frames, rows, cols) -> (cols, rows, frames): NIfTI voxel order
    volume = _apply_rescale(np.moveaxis(pixels, 0, -1), [_rescale_params(ds)] * frames)
    step = float(ds.get("SpacingBetweenSlices") or ds.get("SliceThickness") or 1.0)
    warnings: tuple[str, ...] = (
        "multi-frame DICOM: per-frame positions are not read; frames assumed evenly spaced "
        f"{step:g} mm apart along the slice normal",
    )
    if geom is None:
        row_mm, col_mm = 1.0, 1.0
        spacing = (col_mm, row_mm, step)
        affine = affine_from_spacing(spacing)
    else:
        vol = stack_geometry([geom], path, single_step=step)
        spacing, affine = vol.spacing, vol.affine
    return ScanImage(
        np.ascontiguousarray(volume.transpose(1, 0, 2)),
        spacing,
        affine,
        modality_of(ds),
        metadata,
        source,
        warnings,
    )


def read_dicom_file(path: str | Path) -> ScanImage:
    """Read one DICOM file: a 2D image ``(H, W[, 3])`` or, when multi-frame, a volume.

    Stored values are rescaled (RescaleSlope/Intercept, float32 unless identity).
    MONOCHROME1 data keep their stored values (see ``metadata['PhotometricInterpretation']``).
    """
    file = Path(path)
    return _single_file_image(read_dataset(file), file, str(file))


def scan_dicom_folder(folder: str | Path) -> tuple[list[DicomSeries], list[tuple[str, str]]]:
    """Group the DICOM files under ``folder`` (recursively) by SeriesInstanceUID.

    Returns the series (sorted by SeriesNumber, then UID) and the DICOM-looking files that were
    skipped, with the reason. Non-DICOM files (no 'DICM' marker, no .dcm suffix) are ignored.
    """
    root = Path(folder)
    if not root.is_dir():
        raise ScanReadError("not a folder", path=root)
    skipped: list[tuple[str, str]] = []
    files = [
        p
        for p in walk_files(root, skipped)
        if has_dicom_magic(p) or p.suffix.lower() in (".dcm", ".dicom")
    ]
    series, bad = group_dicom_files(files)
    return series, skipped + bad


def group_dicom_files(
    files: Sequence[Path],
) -> tuple[list[DicomSeries], list[tuple[str, str]]]:
    """Read the headers of ``files`` and group them by SeriesInstanceUID.

    Each series' ``folder`` is the deepest folder holding all its files. DICOMDIR files are
    ignored; unreadable files and objects without an image are returned as ``(path, reason)``.
    """
    groups: dict[str, list[tuple[Path, Dataset]]] = defaultdict(list)
    skipped: list[tuple[str, str]] = []
    for path in files:
        try:
            ds = read_dataset(path, headers_only=True)
        except ScanReadError as exc:
            skipped.append((str(path), f"[{exc.code}] {exc.message}"))
            continue
        if path.name == "DICOMDIR" or str(ds.get("MediaStorageSOPClassUID", "")) == _DICOMDIR_CLASS:
            continue
        if "Rows" not in ds:
            skipped.append((str(path), "[unsupported_format] DICOM object holds no image"))
            continue
        uid = str(ds.get("SeriesInstanceUID", "") or "")
        if not uid:
            skipped.append((str(path), "[scan_read_error] no SeriesInstanceUID"))
            continue
        groups[uid].append((path, ds))
    series = []
    for uid, members in groups.items():
        first = members[0][1]
        paths = tuple(p for p, _ in members)
        series.append(
            DicomSeries(
                folder=Path(os.path.commonpath([p.absolute().parent for p in paths])),
                series_uid=uid,
                modality=modality_of(first),
                description=str(first.get("SeriesDescription", "") or ""),
                series_number=_int_or_zero(first.get("SeriesNumber")),
                files=paths,
            )
        )
    series.sort(key=lambda s: (s.series_number, s.series_uid))
    return series, skipped


def _int_or_zero(value: object) -> int:
    try:
        return int(str(value)) if value not in (None, "") else 0
    except ValueError:
        return 0


def list_dicom_series(folder: str | Path) -> list[DicomSeries]:
    """The image series under ``folder`` (recursively), one entry per SeriesInstanceUID."""
    return scan_dicom_folder(folder)[0]


def read_dicom_series(folder: str | Path, series_uid: str | None = None) -> list[ScanImage]:
    """Read every series under ``folder`` (or only ``series_uid``) as volumes, one per series."""
    series = list_dicom_series(folder)
    if series_uid is not None:
        series = [s for s in series if s.series_uid == series_uid]
        if not series:
            raise ScanReadError(
                f"no series {series_uid} in this folder", path=folder, field="SeriesInstanceUID"
            )
    if not series:
        raise ScanReadError("folder holds no DICOM image series", path=folder)
    return [s.load() for s in series]


def _instance_order(datasets: Sequence[Dataset], path: Path) -> tuple[int, ...]:
    numbers = [ds.get("InstanceNumber") for ds in datasets]
    if any(n in (None, "") for n in numbers):
        raise ScanReadError(
            "slices have neither ImagePositionPatient/ImageOrientationPatient nor "
            "InstanceNumber; cannot order them",
            path=path,
        )
    return tuple(int(i) for i in np.argsort([int(n) for n in numbers], kind="stable"))


def read_series_files(files: Sequence[Path], *, source: str) -> ScanImage:
    """Stack the files of one series into an ``(I, J, K)`` volume with a RAS affine.

    Slices are sorted by position along the slice normal (never by file name); a series of one
    file reads as that file does.
    """
    if len(files) == 1:
        return _single_file_image(read_dataset(files[0]), files[0], source)
    folder = files[0].parent
    datasets = [read_dataset(f) for f in files]
    first = datasets[0]
    shape = (first.get("Rows"), first.get("Columns"))
    for ds, f in zip(datasets, files, strict=True):
        if (ds.get("Rows"), ds.get("Columns")) != shape:
            raise ScanReadError(f"slice size differs from {shape} in the series", path=f)
        if int(ds.get("NumberOfFrames", 1) or 1) > 1 or int(ds.get("SamplesPerPixel", 1)) > 1:
            raise UnsupportedFormatError(
                "series of multi-frame or colour files cannot be stacked", path=f
            )
    geoms = [slice_geometry(ds) for ds in datasets]
    warnings: tuple[str, ...]
    if all(g is not None for g in geoms):
        vol = stack_geometry([g for g in geoms if g is not None], folder)
        order, spacing, affine, warnings = vol.order, vol.spacing, vol.affine, vol.warnings
    else:
        order = _instance_order(datasets, folder)
        row_mm, col_mm = geoms[0].pixel_spacing if geoms[0] else (1.0, 1.0)
        spacing = (col_mm, row_mm, float(first.get("SliceThickness") or 1.0))
        affine = affine_from_spacing(spacing)
        warnings = (
            "no ImagePositionPatient/ImageOrientationPatient: slices ordered by "
            "InstanceNumber; geometry is approximate",
        )
    stacked = np.stack([_pixels(datasets[i], files[i]) for i in order], axis=-1)
    volume = _apply_rescale(stacked, [_rescale_params(datasets[i]) for i in order])
    head = datasets[order[0]]
    metadata = {**safe_metadata(head), "NumberOfSlices": str(len(files))}
    return ScanImage(
        np.ascontiguousarray(volume.transpose(1, 0, 2)),
        spacing,
        affine,
        modality_of(head),
        metadata,
        source,
        warnings,
    )
