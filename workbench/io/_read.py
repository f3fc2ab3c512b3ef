"""``read_scan``, ``read_uri`` and ``read_label``: one entry point per way of naming an image."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from ..errors import ScanReadError, UnsupportedFormatError
from ._dicom import list_dicom_series, read_dicom_file, read_dicom_series
from ._image import ScanImage
from ._nifti import read_nifti
from ._npz import read_npz_image
from ._raster import read_pillow, read_tiff
from ._sniff import FileFormat, sniff_format
from ._uris import parse_npz_fragment, parse_uri


def _read_file(path: Path, *, keep_palette: bool = False) -> ScanImage:
    fmt = sniff_format(path)
    if fmt is FileFormat.NIFTI:
        return read_nifti(path)
    if fmt in (FileFormat.PNG, FileFormat.JPEG):
        return read_pillow(path, keep_palette=keep_palette)
    if fmt is FileFormat.TIFF:
        return read_tiff(path)
    if fmt is FileFormat.DICOM:
        return read_dicom_file(path)
    raise UnsupportedFormatError(
        "an .npz archive holds many images; read one with an 'npz:' URI", path=path
    )


def read_scan(path: str | Path) -> ScanImage:
    """Read a scan from a file or a one-series DICOM folder, choosing the reader by content.

    NIfTI (.nii, .nii.gz), PNG, JPEG, TIFF and DICOM files; a folder is read as a DICOM series
    (it must hold exactly one; see ``read_dicom_series``). Every failure is a ``ScanReadError``
    (or subclass) naming the file and the reason.
    """
    target = Path(path)
    if target.is_dir():
        series = list_dicom_series(target)
        if len(series) != 1:
            raise ScanReadError(
                f"folder holds {len(series)} DICOM series; read them with read_dicom_series",
                path=target,
            )
        return series[0].load()
    return _read_file(target)


def read_uri(uri: str, *, modality: str | None = None) -> ScanImage:
    """Read the image a URI names: ``/abs/file``, ``npz:/abs/f.npz#split/i``, ``dicom:/dir#UID``.

    ``modality`` (e.g. a project item's, from MSD's ``dataset.json``) fills in where the file
    says nothing ("OT": NIfTI, PNG, TIFF), so a NIfTI CT gets CT windowing like a DICOM one.
    """
    image = _read_uri(uri)
    if modality and modality != "OT" and image.modality in ("", "OT"):
        image = dataclasses.replace(image, modality=modality)
    return image


def _read_uri(uri: str) -> ScanImage:
    parsed = parse_uri(uri)
    if parsed.scheme == "npz":
        split, index = parse_npz_fragment(uri, parsed.fragment)
        return read_npz_image(parsed.path, split, index, source=uri)
    if parsed.scheme == "dicom":
        return read_dicom_series(parsed.path, parsed.fragment)[0]
    return read_scan(parsed.path)


def read_label(uri: str) -> np.ndarray:
    """A label map (mask) from a URI; palette PNG masks keep their indices."""
    parsed = parse_uri(uri)
    if parsed.scheme == "file" and parsed.path.is_file():
        return _read_file(parsed.path, keep_palette=True).array
    return read_uri(uri).array
