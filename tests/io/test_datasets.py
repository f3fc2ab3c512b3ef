"""Dataset readers: MedMNIST npz, MSD and nnU-Net folders, CSV manifests, image/DICOM folders."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import cast

import nibabel as nib
import numpy as np
import pytest

from workbench.errors import ManifestError, PathEscapeError, ScanReadError, WorkbenchError
from workbench.io import (
    DatasetKind,
    DatasetReport,
    detect_dataset,
    iter_dataset,
    read_uri,
    write_png,
)

CASES = ("hippocampus_001", "hippocampus_003", "hippocampus_004")
LABELS_MSD = {"0": "background", "1": "Anterior", "2": "Posterior"}


@pytest.mark.shared_data
def test_medmnist_2d_splits_labels_and_uri(shared_data: Path) -> None:
    path = shared_data / "medmnist" / "breastmnist.npz"
    assert detect_dataset(path) is DatasetKind.MEDMNIST
    report = DatasetReport(str(path))
    records = list(iter_dataset(path, report=report))
    assert [sum(r.split == s for r in records) for s in ("train", "val", "test")] == [546, 78, 156]
    assert report.n_records == 780 and not report.skipped and report.classes[0] == "malignant"
    record = records[12]
    assert record.key == "breastmnist/train/00012" and record.uri.endswith("npz#train/12")
    with np.load(path) as archive:
        expected, label = archive["train_images"][12], int(archive["train_labels"][12, 0])
    image = record.load()
    np.testing.assert_array_equal(image.array, expected)
    assert record.label == label and image.modality == "US" and image.spacing == (1.0, 1.0)
    assert record.load_label() is None
    with pytest.raises(ScanReadError, match="out of range"):
        read_uri(record.uri.replace("#train/12", "#train/546"))


@pytest.mark.shared_data
def test_medmnist_3d(shared_data: Path) -> None:
    path = shared_data / "medmnist" / "adrenalmnist3d.npz"
    first = next(iter_dataset(path))
    image = first.load()
    assert image.array.shape == (28, 28, 28) and image.ndim_spatial == 3
    assert first.label in (0, 1)


def test_bad_npz_is_manifest_error(tmp_path: Path) -> None:
    np.savez(tmp_path / "x.npz", images=np.zeros((2, 4, 4)))
    with pytest.raises(ManifestError, match="train_images"):
        iter_dataset(tmp_path / "x.npz")
    np.savez(tmp_path / "y.npz", train_images=np.zeros((2, 4, 4)), train_labels=np.zeros((3, 1)))
    with pytest.raises(ManifestError, match="train_labels"):
        iter_dataset(tmp_path / "y.npz")


def _msd_folder(root: Path, shared: Path, json_extra: list[dict[str, str]]) -> Path:
    for sub in ("imagesTr", "labelsTr"):
        (root / sub).mkdir(parents=True)
        for case in CASES:
            shutil.copy(shared / "hippocampus-msd" / sub / f"{case}.nii.gz", root / sub)
    training = [
        {"image": f"./imagesTr/{c}.nii.gz", "label": f"./labelsTr/{c}.nii.gz"} for c in CASES
    ]
    meta = {
        "name": "Hippocampus",
        "modality": {"0": "MRI"},
        "labels": LABELS_MSD,
        "training": training + json_extra,
        "test": [],
    }
    (root / "dataset.json").write_text(json.dumps(meta))
    return root


@pytest.mark.shared_data
def test_msd_folder_with_escapes_skipped(tmp_path: Path, shared_data: Path) -> None:
    outside = tmp_path / "secret.nii.gz"
    shutil.copy(shared_data / "hippocampus-msd" / "imagesTr" / f"{CASES[0]}.nii.gz", outside)
    root = tmp_path / "Task04"
    extra = [
        {"image": "../secret.nii.gz", "label": "./labelsTr/hippocampus_001.nii.gz"},
        {"image": str(outside)},
        {"image": "./imagesTr/missing.nii.gz"},
        {"label": "x"},
    ]
    _msd_folder(root, shared_data, extra)
    (root / "imagesTr" / "link.nii.gz").symlink_to(outside)
    extra_link = json.loads((root / "dataset.json").read_text())
    extra_link["training"].append({"image": "imagesTr/link.nii.gz"})
    (root / "dataset.json").write_text(json.dumps(extra_link))
    assert detect_dataset(root) is DatasetKind.MSD
    report = DatasetReport(str(root))
    records = list(iter_dataset(root, report=report))
    assert [r.key for r in records] == [f"imagesTr/{c}.nii.gz" for c in CASES]
    assert report.classes == ("background", "Anterior", "Posterior")
    reasons = [reason for _, reason in report.skipped]
    assert len(reasons) == 5
    assert "points outside the dataset root" in reasons[0] and "training[3].image" in reasons[0]
    assert all(r.startswith(f"[{PathEscapeError.code}]") for r in (reasons[0], reasons[1]))
    assert "points outside" in reasons[1] and "not found" in reasons[2]
    assert "needs an 'image'" in reasons[3] and "[manifest_error]" in reasons[3]
    assert "symlink" in reasons[4] and reasons[4].startswith("[path_escape]")
    assert all(str(root / "dataset.json") in r for r in reasons)
    image, mask = records[1].load(), records[1].load_label()
    assert image.modality == "MR" and mask is not None and mask.shape == image.array.shape
    assert set(np.unique(mask)) <= {0, 1, 2}
    reference = cast(
        nib.Nifti1Image,
        nib.load(shared_data / "hippocampus-msd" / "imagesTr" / f"{CASES[1]}.nii.gz"),
    )
    np.testing.assert_array_equal(image.affine, reference.affine)


def test_malformed_dataset_json(tmp_path: Path) -> None:
    (tmp_path / "dataset.json").write_text("{not json")
    with pytest.raises(ManifestError, match="dataset.json"):
        iter_dataset(tmp_path)
    (tmp_path / "dataset.json").write_text(json.dumps({"labels": LABELS_MSD, "training": {}}))
    with pytest.raises(ManifestError) as caught:
        iter_dataset(tmp_path)
    assert caught.value.field == "training" and caught.value.path == str(tmp_path / "dataset.json")
    (tmp_path / "dataset.json").write_text(json.dumps({"training": []}))
    with pytest.raises(ManifestError, match="labels"):
        iter_dataset(tmp_path)


@pytest.mark.shared_data
def test_nnunet_v2_layout(tmp_path: Path, shared_data: Path) -> None:
    for sub in ("imagesTr", "labelsTr", "imagesTs"):
        (tmp_path / sub).mkdir()
    src = shared_data / "hippocampus-msd"
    for case in CASES[:2]:
        shutil.copy(
            src / "imagesTr" / f"{case}.nii.gz", tmp_path / "imagesTr" / f"{case}_0000.nii.gz"
        )
        shutil.copy(src / "labelsTr" / f"{case}.nii.gz", tmp_path / "labelsTr" / f"{case}.nii.gz")
    shutil.copy(src / "imagesTr" / f"{CASES[2]}.nii.gz", tmp_path / "imagesTs" / "t_0000.nii.gz")
    meta = {
        "channel_names": {"0": "MRI"},
        "labels": {"background": 0, "Anterior": 1, "Posterior": 2},
        "numTraining": 2,
        "file_ending": ".nii.gz",
    }
    (tmp_path / "dataset.json").write_text(json.dumps(meta))
    assert detect_dataset(tmp_path) is DatasetKind.NNUNET
    report = DatasetReport(str(tmp_path))
    records = list(iter_dataset(tmp_path, report=report))
    assert [(r.key, r.split, r.label_uri is not None) for r in records] == [
        ("imagesTr/hippocampus_001_0000.nii.gz", "train", True),
        ("imagesTr/hippocampus_003_0000.nii.gz", "train", True),
        ("imagesTs/t_0000.nii.gz", "test", False),
    ]
    assert report.classes == ("background", "Anterior", "Posterior")
    mask = records[0].load_label()
    assert mask is not None and mask.shape == records[0].load().array.shape


def test_csv_manifest_escapes_and_labels(tmp_path: Path) -> None:
    root = tmp_path / "data"
    (root / "img").mkdir(parents=True)
    rng = np.random.default_rng(0)
    for name in ("a", "b", "c"):
        write_png(root / "img" / f"{name}.png", rng.integers(0, 256, (8, 8), dtype=np.uint8))
    write_png(tmp_path / "x.png", np.zeros((8, 8), np.uint8))
    (root / "img" / "link.png").symlink_to(tmp_path / "x.png")
    rows = [
        "path,label,split",
        "img/a.png,benign,train",
        "../x.png,benign,train",
        f"{tmp_path / 'x.png'},malignant,val",
        "img/link.png,benign,train",
        "img/b.png,malignant,test",
        "img/nope.png,benign,train",
        ",benign,train",
        f"{root / 'img' / 'c.png'},benign,",
        "img/a.png,benign,train",
    ]
    (root / "manifest.csv").write_text("\n".join(rows) + "\n")
    assert detect_dataset(root / "manifest.csv") is DatasetKind.CSV
    report = DatasetReport("csv")
    records = list(iter_dataset(root / "manifest.csv", report=report))
    assert [(r.key, r.label, r.split) for r in records] == [
        ("img/a.png", 0, "train"),
        ("img/b.png", 1, "test"),
        ("img/c.png", 0, None),
    ]
    assert report.classes == ("benign", "malignant")
    reasons = dict(report.skipped)
    assert set(reasons) == {f"{root / 'manifest.csv'}:{n}" for n in (3, 4, 5, 7, 8)} | {
        str(root / "img" / "a.png")
    }
    assert "outside the dataset root" in reasons[f"{root / 'manifest.csv'}:3"]
    assert "field 'path (line 4)'" in reasons[f"{root / 'manifest.csv'}:4"]
    assert "symlink" in reasons[f"{root / 'manifest.csv'}:5"]
    escapes = [reasons[f"{root / 'manifest.csv'}:{n}"] for n in (3, 4, 5)]
    assert all(r.startswith(f"[{PathEscapeError.code}]") for r in escapes)
    assert issubclass(PathEscapeError, WorkbenchError)
    assert records[1].load().array.shape == (8, 8)


def test_csv_masks_indices_and_bad_header(tmp_path: Path) -> None:
    write_png(tmp_path / "i.png", np.zeros((4, 4), np.uint8))
    write_png(tmp_path / "m.png", np.eye(4, dtype=np.uint8))
    (tmp_path / "masks.csv").write_text("path,label\ni.png,m.png\n")
    (record,) = iter_dataset(tmp_path / "masks.csv")
    np.testing.assert_array_equal(record.load_label(), np.eye(4))
    (tmp_path / "idx.csv").write_text("path,label\ni.png,3\n")
    assert next(iter_dataset(tmp_path / "idx.csv")).label == 3
    (tmp_path / "bad.csv").write_text("file,label\ni.png,1\n")
    with pytest.raises(ManifestError) as caught:
        iter_dataset(tmp_path / "bad.csv")
    assert caught.value.field == "path" and caught.value.path == str(tmp_path / "bad.csv")
    (tmp_path / "mixed.csv").write_text("path,label\ni.png,m.png\ni.png,cat\n")
    with pytest.raises(ManifestError, match="mixes"):
        iter_dataset(tmp_path / "mixed.csv")


@pytest.mark.shared_data
def test_image_folder_with_labels_and_dicom(
    series_writer, tmp_path: Path, shared_data: Path, hippo_volume
) -> None:
    nuclei = shared_data / "nuclei-bbbc038"
    names = sorted(p.name for p in (nuclei / "images").iterdir())[:2]
    for sub in ("images", "labels"):
        (tmp_path / sub).mkdir()
        for name in names:
            shutil.copy(nuclei / sub / name, tmp_path / sub / name)
    (tmp_path / "notes.txt").write_text("not an image")
    data, affine = hippo_volume
    uid = series_writer(tmp_path / "dicom" / "s1", data[:, :, :4], affine)
    (tmp_path / "bad.dcm").write_bytes(b"\x00" * 200)
    (tmp_path / "images" / "zz_link.png").symlink_to(nuclei / "images" / names[0])
    assert detect_dataset(tmp_path) is DatasetKind.IMAGE_FOLDER
    report = DatasetReport("folder")
    records = list(iter_dataset(tmp_path, report=report))
    assert [r.key for r in records] == [f"images/{n}" for n in names] + [f"dicom/s1/{uid}"]
    label = records[0].load_label()
    assert label is not None and label.dtype == np.uint16
    assert records[2].uri.startswith("dicom:") and records[2].load().array.shape[2] == 4
    assert [Path(p).name for p, _ in report.skipped] == ["zz_link.png", "bad.dcm"]
    assert report.skipped[0][1].startswith("[path_escape]")


@pytest.mark.shared_data
def test_dicom_folder_one_record_per_series(series_writer, tmp_path: Path, hippo_volume) -> None:
    data, affine = hippo_volume
    uids = {series_writer(tmp_path, data[:, :, :3], affine, seed=s) for s in (1, 2)}
    assert detect_dataset(tmp_path) is DatasetKind.DICOM_FOLDER
    records = list(iter_dataset(tmp_path))
    assert {r.key for r in records} == uids
    assert all(r.modality == "MR" for r in records)
    np.testing.assert_array_equal(read_uri(records[0].uri).array, data[:, :, :3])


def test_msd_folder_without_dataset_json_pairs_images_and_labels(shared_data: Path) -> None:
    from workbench.io import DatasetReport, iter_dataset

    report = DatasetReport("hippocampus")
    records = list(iter_dataset(shared_data / "hippocampus-msd", report=report))
    assert len(records) == 260 and not report.skipped
    assert all(r.label_uri and "labelsTr" in r.label_uri for r in records)
    first = records[0]
    label = first.load_label()
    assert label is not None and label.shape == first.load().spatial_shape
