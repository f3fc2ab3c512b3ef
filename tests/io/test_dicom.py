"""DICOM: pydicom's real test files, series written from a real MRI volume, codecs."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file

from workbench.errors import MissingCodecError, ScanReadError
from workbench.io import list_dicom_series, read_dicom_series, read_scan, read_uri

TEST_FILES = Path(get_testdata_file("CT_small.dcm")).parent  # type: ignore[arg-type]
REPO = Path(__file__).resolve().parents[2]


def test_ct_small_rescaled_to_hounsfield() -> None:
    path = TEST_FILES / "CT_small.dcm"
    ds = pydicom.dcmread(path)
    image = read_scan(path)
    assert image.modality == "CT" and image.array.shape == (128, 128)
    expected = ds.pixel_array * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
    assert image.array.dtype == np.float32
    np.testing.assert_array_equal(image.array, expected.astype(np.float32))
    assert image.spacing == pytest.approx([float(v) for v in ds.PixelSpacing])
    for secret in ("PatientName", "PatientID", "PatientBirthDate"):
        assert secret not in image.metadata
    assert image.metadata["Modality"] == "CT"


def test_mr_small_identity_rescale_keeps_int() -> None:
    image = read_scan(TEST_FILES / "MR_small.dcm")
    assert image.modality == "MR" and image.array.dtype == np.int16


def test_ct5n_sorted_by_position_not_file_name() -> None:
    folder = TEST_FILES / "dicomdirtests" / "98892001" / "CT5N"
    (volume,) = read_dicom_series(folder)
    files = sorted(folder.iterdir())
    z = [float(pydicom.dcmread(f).ImagePositionPatient[2]) for f in files]
    lowest = pydicom.dcmread(files[int(np.argmin(z))])
    assert volume.array.shape == (16, 16, 5)
    assert sorted(z) != z  # name order differs from position order
    np.testing.assert_array_equal(
        volume.array[:, :, 0], (lowest.pixel_array.T * 1.0 - 1024).astype(np.float32)
    )
    assert volume.spacing[2] == pytest.approx(2.5)
    assert volume.affine[2, 3] == pytest.approx(min(z))
    assert not volume.warnings


def test_non_parallel_slices_refused() -> None:
    folder = TEST_FILES / "dicomdirtests" / "98892003" / "MR700"
    with pytest.raises(ScanReadError, match="different orientations"):
        read_scan(folder)


@pytest.mark.shared_data
def test_written_series_matches_nifti(series_writer, tmp_path: Path, hippo_volume) -> None:
    data, affine = hippo_volume
    uid = series_writer(tmp_path / "s", data, affine)
    (series,) = list_dicom_series(tmp_path / "s")
    assert series.series_uid == uid and len(series.files) == data.shape[2]
    image = read_uri(series.uri)
    assert image.array.dtype == np.int16
    np.testing.assert_array_equal(image.array, data)
    np.testing.assert_allclose(image.affine, affine, atol=1e-4)
    assert image.spacing == pytest.approx((1.0, 1.0, 1.0))
    assert not image.warnings
    assert "PatientName" not in image.metadata and image.metadata["Manufacturer"] == "TestVendor"


@pytest.mark.shared_data
def test_two_series_one_folder_with_rescale(series_writer, tmp_path: Path, hippo_volume) -> None:
    data, affine = hippo_volume
    plain = series_writer(tmp_path, data, affine, seed=1)
    scaled = series_writer(tmp_path, data, affine, slope=0.5, intercept=-100, seed=2)
    images = {im.metadata["SeriesInstanceUID"]: im for im in read_dicom_series(tmp_path)}
    assert set(images) == {plain, scaled}
    assert images[scaled].array.dtype == np.float32
    np.testing.assert_array_equal(images[scaled].array, data.astype(np.float32))
    np.testing.assert_array_equal(images[plain].array, data)
    with pytest.raises(ScanReadError, match="2 DICOM series"):
        read_scan(tmp_path)


@pytest.mark.shared_data
def test_uneven_spacing_is_reported(series_writer, tmp_path: Path, hippo_volume) -> None:
    data, affine = hippo_volume
    keep = [k for k in range(data.shape[2]) if k != 5]
    series_writer(tmp_path, data[:, :, keep], affine, k_positions=keep)
    (image,) = read_dicom_series(tmp_path)
    np.testing.assert_array_equal(image.array, data[:, :, keep])
    assert any("uneven slice spacing" in w for w in image.warnings)


@pytest.mark.shared_data
def test_gantry_tilt_is_reported_and_kept_in_affine(
    series_writer, tmp_path: Path, hippo_volume
) -> None:
    data, affine = hippo_volume
    series_writer(tmp_path, data, affine, shear_per_slice=0.2)
    (image,) = read_dicom_series(tmp_path)
    np.testing.assert_array_equal(image.array, data)
    assert any("gantry tilt of 11.31 degrees" in w for w in image.warnings)
    np.testing.assert_allclose(image.affine[:3, 2], affine[:3, :3] @ [0.2, 0, 1], atol=1e-4)


@pytest.mark.shared_data
def test_flipped_slice_axis_keeps_world_geometry(
    series_writer, tmp_path: Path, hippo_volume
) -> None:
    data, affine = hippo_volume
    flipped = affine @ np.diag([1.0, 1.0, -1.0, 1.0])  # k runs inferior: reader re-sorts
    series_writer(tmp_path, data, flipped)
    (image,) = read_dicom_series(tmp_path)
    np.testing.assert_array_equal(image.array, data[:, :, ::-1])
    last = flipped @ [0, 0, data.shape[2] - 1, 1]
    np.testing.assert_allclose(image.affine @ [0, 0, 0, 1], last, atol=1e-4)


def test_compressed_files_decode_with_plugins() -> None:
    reference = read_scan(TEST_FILES / "MR_small.dcm").array
    for name in ("MR_small_jpeg_ls_lossless.dcm", "MR_small_RLE.dcm", "MR_small_jp2klossless.dcm"):
        np.testing.assert_array_equal(read_scan(TEST_FILES / name).array, reference)
    rgb = read_scan(TEST_FILES / "SC_rgb_jpeg_dcmtk.dcm")
    assert rgb.is_rgb and rgb.array.shape == (100, 100, 3)


_BLOCKED = """
import sys
for name in ("pylibjpeg", "libjpeg", "openjpeg", "gdcm", "jpeg_ls", "PIL"):
    sys.modules[name] = None
from workbench.errors import MissingCodecError
from workbench.io import read_scan
for path in sys.argv[1:]:
    try:
        read_scan(path)
    except MissingCodecError as exc:
        print("MISSING", exc.field, exc)
    else:
        print("DECODED", path)
"""


def test_missing_codec_names_syntax_and_package() -> None:
    names = [
        "MR_small_jpeg_ls_lossless.dcm",
        "JPEG2000.dcm",
        "SC_rgb_jpeg_dcmtk.dcm",
        "MR_small_RLE.dcm",
    ]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run(
        [sys.executable, "-c", _BLOCKED, *(str(TEST_FILES / n) for n in names)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=True,
    )
    lines = done.stdout.splitlines()
    assert len(lines) == 4, done.stdout + done.stderr
    jls, j2k, jpeg, rle = lines
    assert "JPEG-LS Lossless" in jls and "1.2.840.10008.1.2.4.80" in jls
    assert "pip install pylibjpeg pylibjpeg-libjpeg" in jls and "TransferSyntaxUID" in jls
    assert "MR_small_jpeg_ls_lossless.dcm" in jls
    assert "JPEG 2000" in j2k and "1.2.840.10008.1.2.4.91" in j2k and "pylibjpeg-openjpeg" in j2k
    assert "JPEG Baseline" in jpeg and "1.2.840.10008.1.2.4.50" in jpeg
    assert rle.startswith("DECODED")  # RLE is decoded by pydicom itself
    assert MissingCodecError.code == "missing_codec"


def test_dicom_without_pixels_and_truncated(tmp_path: Path) -> None:
    with pytest.raises(ScanReadError, match="no pixel data"):
        read_scan(TEST_FILES / "rtplan.dcm")
    source = (TEST_FILES / "CT_small.dcm").read_bytes()
    truncated = tmp_path / "ct.dcm"
    truncated.write_bytes(source[: len(source) // 2])
    with pytest.raises(ScanReadError, match="ct.dcm"):
        read_scan(truncated)
