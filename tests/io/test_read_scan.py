"""read_scan on NIfTI and raster files; typed errors on bad input; writers; content_hash."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import cast

import nibabel as nib
import numpy as np
import pytest
import tifffile
from PIL import Image

from workbench.errors import ScanReadError, UnsupportedFormatError
from workbench.io import content_hash, read_label, read_scan, write_nifti, write_png

NUCLEUS = "00071198d059ba7f5914a526d124d28e6d010c92466da21d4a04cd5413362552.png"


@pytest.mark.shared_data
def test_nifti_keeps_voxels_affine_and_spacing(hippo_path: Path, shared_data: Path) -> None:
    path = hippo_path
    reference = cast(nib.Nifti1Image, nib.load(path))
    image = read_scan(path)
    np.testing.assert_array_equal(image.array, np.asanyarray(reference.dataobj))
    np.testing.assert_array_equal(image.affine, reference.affine)
    assert image.spacing == (1.0, 1.0, 1.0) and image.ndim_spatial == 3


@pytest.mark.shared_data
def test_nuclei_png_rgba_and_uint16_label(shared_data: Path) -> None:
    image = read_scan(shared_data / "nuclei-bbbc038" / "images" / NUCLEUS)
    assert image.is_rgb and image.array.shape[-1] == 4 and image.array.dtype == np.uint8
    label = read_scan(shared_data / "nuclei-bbbc038" / "labels" / NUCLEUS)
    assert label.array.dtype == np.uint16 and label.array.shape == image.array.shape[:2]
    assert label.array.max() > 1


def test_png_jpeg_tiff_round_trips(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    grey8 = rng.integers(0, 256, (20, 30), dtype=np.uint8)
    grey16 = rng.integers(0, 65536, (20, 30), dtype=np.uint16)
    rgb = rng.integers(0, 256, (20, 30, 3), dtype=np.uint8)
    arrays: dict[str, np.ndarray] = {"g8.png": grey8, "g16.png": grey16, "rgb.png": rgb}
    for name, array in arrays.items():
        written = write_png(tmp_path / name, array)
        image = read_scan(written)
        assert image.array.dtype == array.dtype and image.spacing == (1.0, 1.0)
        np.testing.assert_array_equal(image.array, array)
    tifffile.imwrite(tmp_path / "g16.tif", grey16)
    np.testing.assert_array_equal(read_scan(tmp_path / "g16.tif").array, grey16)
    Image.fromarray(rgb).save(tmp_path / "photo.jpg", quality=95)
    jpeg = read_scan(tmp_path / "photo.jpg")
    assert jpeg.array.shape == (20, 30, 3) and jpeg.is_rgb


def test_palette_png_label_keeps_indices(tmp_path: Path) -> None:
    mask = np.zeros((8, 8), dtype=np.uint8)
    mask[2:5, 3:6] = 2
    image = Image.fromarray(mask, mode="P")
    image.putpalette([0, 0, 0, 255, 0, 0, 0, 255, 0])
    image.save(tmp_path / "mask.png")
    np.testing.assert_array_equal(read_label(str(tmp_path / "mask.png")), mask)
    assert read_scan(tmp_path / "mask.png").array.shape == (8, 8, 3)


def test_write_nifti_round_trip_atomic(tmp_path: Path) -> None:
    array = np.arange(24, dtype=np.int64).reshape(2, 3, 4)
    affine = np.diag([0.5, 0.7, 2.0, 1.0])
    affine[:3, 3] = [10, -20, 5]
    path = write_nifti(tmp_path / "out" / "m.nii.gz", array, affine)
    image = read_scan(path)
    assert image.array.dtype == np.int32
    np.testing.assert_array_equal(image.array, array)
    np.testing.assert_allclose(image.affine, affine)
    assert image.spacing == pytest.approx((0.5, 0.7, 2.0))
    assert sorted(p.name for p in path.parent.iterdir()) == ["m.nii.gz"]  # no temp left over
    with pytest.raises(ValueError):
        write_png(tmp_path / "bad.png", np.full((2, 2), -1))
    assert not list(tmp_path.glob("*.png*"))


@pytest.fixture()
def good_files(hippo_path: Path, tmp_path: Path, shared_data: Path) -> dict[str, Path]:
    files = {"nii.gz": tmp_path / "a.nii.gz", "png": tmp_path / "a.png"}
    shutil.copy(hippo_path, files["nii.gz"])
    write_png(files["png"], np.random.default_rng(1).integers(0, 256, (64, 64), dtype=np.uint8))
    files["tif"] = tmp_path / "a.tif"
    tifffile.imwrite(files["tif"], np.arange(4096, dtype=np.uint16).reshape(64, 64))
    files["nii"] = tmp_path / "b.nii"
    nib.save(nib.load(files["nii.gz"]), files["nii"])
    return files


@pytest.mark.shared_data
@pytest.mark.parametrize("kind", ["nii.gz", "nii", "png", "tif"])
def test_corrupt_copies_raise_scan_read_error(
    tmp_path: Path, good_files: dict[str, Path], kind: str
) -> None:
    data = good_files[kind].read_bytes()
    variants = {
        "truncated": data[: len(data) // 2],
        "wrong_magic": b"\x00" * 16 + data[16:],
        "zero": b"",
    }
    for variant, content in variants.items():
        bad = tmp_path / f"bad_{variant}.{kind}"
        bad.write_bytes(content)
        with pytest.raises(ScanReadError) as caught:
            read_scan(bad)
        assert str(bad) in str(caught.value), (variant, caught.value)
        assert caught.value.path == str(bad)


def test_missing_and_unsupported(tmp_path: Path) -> None:
    with pytest.raises(ScanReadError, match="not found"):
        read_scan(tmp_path / "nothing.nii.gz")
    other = tmp_path / "scan.mha"
    other.write_bytes(b"ObjectType = Image\n")
    with pytest.raises(UnsupportedFormatError, match="unsupported file type '.mha'"):
        read_scan(other)


def test_content_hash_is_format_independent(tmp_path: Path) -> None:
    array = np.arange(12, dtype=np.uint16).reshape(3, 4)
    png = read_scan(write_png(tmp_path / "x.png", array))
    assert content_hash(png) == content_hash(array) == content_hash(array.astype(">u2"))
    assert content_hash(array) != content_hash(array.reshape(4, 3))
    assert content_hash(array) != content_hash(array.astype(np.int32))


def test_read_uri_fills_in_a_modality_the_file_does_not_carry(tmp_path: Path) -> None:
    from workbench.io import default_window, read_uri

    hu = np.linspace(-1000, 1000, 4 * 5 * 6, dtype=np.float32).reshape(4, 5, 6)
    path = tmp_path / "ct.nii.gz"
    nib.save(nib.Nifti1Image(hu, np.eye(4)), path)
    assert read_uri(str(path)).modality == "OT"  # NIfTI says nothing of the modality
    image = read_uri(str(path), modality="CT")
    assert image.modality == "CT"
    assert default_window(image).name == "soft_tissue"
    np.testing.assert_array_equal(image.array, hu)
