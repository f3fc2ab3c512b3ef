"""Helpers for the io tests: a small real volume and a DICOM series writer."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import cast

import nibabel as nib
import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, MRImageStorage, generate_uid

HIPPO_CASE = "hippocampus-msd/imagesTr/hippocampus_003.nii.gz"
LPS = np.diag([-1.0, -1.0, 1.0, 1.0])


@pytest.fixture(scope="session")
def hippo_path(shared_data: Path) -> Path:
    """A real hippocampus MRI in NIfTI (shared data)."""
    return shared_data / HIPPO_CASE


@pytest.fixture(scope="session")
def series_writer() -> Callable[..., str]:
    """``write_series`` (below), handed to tests as a fixture (no cross-conftest imports)."""
    return write_series


@pytest.fixture(scope="session")
def hippo_volume(shared_data: Path) -> tuple[np.ndarray, np.ndarray]:
    """A real hippocampus MRI (I, J, K) rounded to int16, and its RAS affine."""
    image = cast(nib.Nifti1Image, nib.load(shared_data / HIPPO_CASE))
    data = np.round(np.asanyarray(image.dataobj)).astype(np.int16)
    return data, np.asarray(image.affine)


def write_series(
    folder: Path,
    volume: np.ndarray,
    affine: np.ndarray,
    *,
    slope: float = 1.0,
    intercept: float = 0.0,
    k_positions: Sequence[float] | None = None,
    shear_per_slice: float = 0.0,
    seed: int = 0,
    description: str = "test series",
) -> str:
    """Write ``volume`` (I, J, K) as single-frame MR DICOM files with random names.

    Slice ``k`` sits at voxel coordinate ``(shear_per_slice * k, 0, k_positions[k])`` of
    ``affine``. Stored values are ``(volume - intercept) / slope``. Returns the SeriesInstanceUID.
    """
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    lps = LPS @ affine
    row_dir = lps[:3, 0] / np.linalg.norm(lps[:3, 0])
    col_dir = lps[:3, 1] / np.linalg.norm(lps[:3, 1])
    stored = np.round((volume.astype(np.float64) - intercept) / slope).astype(np.int16)
    series_uid, study_uid = generate_uid(), generate_uid()
    positions = list(k_positions) if k_positions is not None else list(range(volume.shape[2]))
    for k in range(volume.shape[2]):
        sop_uid = generate_uid()
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = MRImageStorage
        meta.MediaStorageSOPInstanceUID = sop_uid
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds = Dataset()
        ds.file_meta = meta
        ds.SOPClassUID, ds.SOPInstanceUID = MRImageStorage, sop_uid
        ds.PatientName, ds.PatientID, ds.PatientBirthDate = "Secret^Person", "ID-123", "19700101"
        ds.Modality, ds.SeriesDescription, ds.Manufacturer = "MR", description, "TestVendor"
        ds.SeriesInstanceUID, ds.StudyInstanceUID = series_uid, study_uid
        ds.InstanceNumber = int(rng.integers(1, 10_000))  # deliberately useless for ordering
        position = lps @ np.array([shear_per_slice * k, 0.0, positions[k], 1.0])
        ds.ImagePositionPatient = [f"{v:.6f}" for v in position[:3]]
        ds.ImageOrientationPatient = [f"{v:.6f}" for v in (*row_dir, *col_dir)]
        ds.PixelSpacing = [f"{np.linalg.norm(lps[:3, 1]):.6f}", f"{np.linalg.norm(lps[:3, 0]):.6f}"]
        ds.SliceThickness = "1.0"
        ds.RescaleSlope, ds.RescaleIntercept = f"{slope:g}", f"{intercept:g}"
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.Rows, ds.Columns = volume.shape[1], volume.shape[0]
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
        ds.PixelData = np.ascontiguousarray(stored[:, :, k].T).tobytes()
        pydicom.dcmwrite(
            folder / f"{rng.integers(0, 2**48):012x}.dcm", ds, enforce_file_format=True
        )
    return str(series_uid)
