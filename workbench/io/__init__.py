"""Scan I/O: read NIfTI, DICOM (files and series), PNG/JPEG/TIFF; iterate datasets; write exports.

URIs kept by a store (see ``read_uri``): an absolute file path, ``npz:/abs/f.npz#<split>/<i>``
or ``dicom:/abs/folder#<SeriesInstanceUID>``.
"""

from ._datasets import detect_dataset, iter_dataset
from ._dicom import DicomSeries, list_dicom_series, read_dicom_series
from ._hash import content_hash
from ._image import ScanImage, affine_from_spacing
from ._nifti import write_nifti
from ._raster import write_png
from ._read import read_label, read_scan, read_uri
from ._records import DatasetKind, DatasetRecord, DatasetReport
from ._uris import dicom_uri, npz_uri
from ._windowing import WINDOW_PRESETS, Window, apply_window, default_window, percentile_window

__all__ = [
    "WINDOW_PRESETS",
    "DatasetKind",
    "DatasetRecord",
    "DatasetReport",
    "DicomSeries",
    "ScanImage",
    "Window",
    "affine_from_spacing",
    "apply_window",
    "content_hash",
    "default_window",
    "detect_dataset",
    "dicom_uri",
    "iter_dataset",
    "list_dicom_series",
    "npz_uri",
    "percentile_window",
    "read_dicom_series",
    "read_label",
    "read_scan",
    "read_uri",
    "write_nifti",
    "write_png",
]
