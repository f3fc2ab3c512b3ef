"""Import and export through the real ``workbench`` command and real files; export then re-import
gives identical labels."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import cast

import nibabel as nib
import numpy as np
import pytest
from PIL import Image

from workbench.cli import main
from workbench.export import file_stem
from workbench.store import LabelSource, open_project

DEMO = Path(__file__).resolve().parents[2] / "workbench" / "demo_data"


def run(*args: str | Path) -> int:
    return main([str(a) for a in args])


def load_nifti(path: Path) -> nib.Nifti1Image:
    """``nib.load`` of a ``.nii.gz`` file, typed as the NIfTI-1 image it returns."""
    return cast(nib.Nifti1Image, nib.load(path))


def labels_by_key(project: Path, *, reimported: bool = False) -> dict[str, object]:
    """Current labels as name -> class or mask, named as the export names files.

    An original project's item is named by ``file_stem(key)``; a re-imported one by its file's
    stem, so both sides of an export -> import round trip use the same names.
    """
    with open_project(project) as store:
        out: dict[str, object] = {}
        for label in store.current_labels():
            key = store.get_item(label.item_id).key
            name = (
                file_stem(key.split("/")[-1]).removesuffix("_0000")
                if reimported
                else (file_stem(key))
            )
            out[name] = (
                label.class_index if label.mask_hash is None else store.get_mask(label.mask_hash)
            )
        return out


def assert_same_labels(first: dict[str, object], second: dict[str, object]) -> None:
    assert first.keys() == second.keys()
    for name, value in first.items():
        np.testing.assert_array_equal(np.asarray(second[name]), np.asarray(value), err_msg=name)


def test_init_import_status_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    project = tmp_path / "breast"
    assert run("init", project, "--task", "classification", "--classes", "malignant", "benign") == 0
    assert run("import", project, DEMO / "breastmnist" / "breastmnist.npz") == 0
    capsys.readouterr()
    assert run("status", project, "--json") == 0
    status = json.loads(capsys.readouterr().out)
    assert status["items"]["by_split"] == {"train": 546, "val": 78, "test": 156}
    assert status["labelled"]["by_source"] == {"imported": 780}
    assert status["labelled"]["by_class"] == {"malignant": 210, "benign": 570}
    # importing again adds nothing and says so
    assert run("import", project, DEMO / "breastmnist" / "breastmnist.npz", "--json") == 0
    report = json.loads(capsys.readouterr().out)
    assert report["added"] == 0 and report["already_present"] == 780


def test_labels_as_ground_truth_are_hidden(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    project = tmp_path / "hippo"
    run("init", project, "--task", "segmentation", "--classes", "anterior", "posterior")
    assert run("import", project, DEMO / "hippocampus", "--labels-as-ground-truth") == 0
    with open_project(project) as store:
        assert store.config.classes == ("background", "anterior", "posterior")
        assert store.current_labels() == []
        hidden = store.current_labels(include_ground_truth=True)
        assert len(hidden) == 6 and {h.source for h in hidden} == {LabelSource.GROUND_TRUTH}
        assert store.next_item("ann") is not None  # ground truth does not count as labelled


def test_msd_export_reimports_to_identical_masks_with_original_affine(tmp_path: Path) -> None:
    project, out, again = tmp_path / "p", tmp_path / "msd", tmp_path / "p2"
    run("init", project, "--task", "segmentation", "--classes", "anterior", "posterior")
    run("import", project, DEMO / "hippocampus")
    assert run("export", project, "--format", "msd", "--out", out) == 0
    dataset = json.loads((out / "dataset.json").read_text())
    assert dataset["labels"] == {"background": 0, "anterior": 1, "posterior": 2}
    assert dataset["numTraining"] == 6 and dataset["file_ending"] == ".nii.gz"
    exported = load_nifti(out / "labelsTr" / "hippocampus_hippocampus_001.nii.gz")
    original = load_nifti(DEMO / "hippocampus" / "labelsTr" / "hippocampus_001.nii.gz")
    np.testing.assert_allclose(exported.affine, original.affine)
    np.testing.assert_array_equal(np.asarray(exported.dataobj), np.asarray(original.dataobj))

    run("init", again, "--task", "segmentation", "--classes", "anterior", "posterior")
    assert run("import", again, out) == 0
    first = labels_by_key(project)
    assert len(first) == 6
    assert_same_labels(first, labels_by_key(again, reimported=True))


def test_nifti_export_keeps_affine_and_masks(tmp_path: Path) -> None:
    project, out = tmp_path / "p", tmp_path / "nifti"
    run("init", project, "--task", "segmentation", "--classes", "anterior", "posterior")
    run("import", project, DEMO / "hippocampus")
    assert run("export", project, "--format", "nifti", "--out", out) == 0
    for case in ("001", "008"):
        written = load_nifti(out / "labels" / f"hippocampus_hippocampus_{case}.nii.gz")
        original = load_nifti(DEMO / "hippocampus" / "labelsTr" / f"hippocampus_{case}.nii.gz")
        np.testing.assert_allclose(written.affine, original.affine)
        np.testing.assert_array_equal(
            np.asarray(written.dataobj, dtype=np.uint8),
            np.asarray(original.dataobj, dtype=np.uint8),
        )
    again = tmp_path / "p2"
    run("init", again, "--task", "segmentation", "--classes", "anterior", "posterior")
    assert run("import", again, out / "manifest.csv") == 0
    assert_same_labels(labels_by_key(project), labels_by_key(again, reimported=True))


def test_csv_export_reimports_to_identical_classes(tmp_path: Path) -> None:
    project, out, again = tmp_path / "p", tmp_path / "csv", tmp_path / "p2"
    run("init", project, "--task", "classification", "--classes", "malignant", "benign")
    run("import", project, DEMO / "breastmnist" / "breastmnist.npz", "--split", "train")
    assert run("export", project, "--format", "csv", "--out", out) == 0
    header = (out / "labels.csv").read_text().splitlines()[0].split(",")
    assert header[:5] == ["key", "path", "label", "label_name", "split"]
    assert "annotator" in header and "source" in header
    run("init", again, "--task", "classification", "--classes", "malignant", "benign")
    assert run("import", again, out / "labels.csv") == 0
    first = labels_by_key(project)
    assert len(first) == 780
    assert_same_labels(first, labels_by_key(again, reimported=True))


def test_png_export_of_2d_masks_round_trips(tmp_path: Path, shared_data: Path) -> None:
    nuclei = shared_data / "nuclei-bbbc038"
    source = tmp_path / "nuclei"
    (source / "images").mkdir(parents=True)
    (source / "masks").mkdir()
    rows = ["path,label"]
    for image in sorted((nuclei / "images").iterdir())[:4]:
        shutil.copy(image, source / "images" / image.name)
        instances = np.asarray(Image.open(nuclei / "labels" / image.name))
        Image.fromarray((instances > 0).astype(np.uint8)).save(source / "masks" / image.name)
        rows.append(f"images/{image.name},masks/{image.name}")
    (source / "manifest.csv").write_text("\n".join(rows) + "\n")

    project, out, again = tmp_path / "p", tmp_path / "png", tmp_path / "p2"
    run("init", project, "--task", "segmentation", "--classes", "nucleus")
    assert run("import", project, source / "manifest.csv") == 0
    assert run("export", project, "--format", "png", "--out", out) == 0
    run("init", again, "--task", "segmentation", "--classes", "nucleus")
    assert run("import", again, out / "manifest.csv") == 0
    first = labels_by_key(project)
    assert len(first) == 4 and all(np.asarray(mask).any() for mask in first.values())
    assert_same_labels(first, labels_by_key(again, reimported=True))


def test_bad_files_are_skipped_and_reported(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "scans"
    folder.mkdir()
    Image.fromarray(np.arange(64, dtype=np.uint8).reshape(8, 8)).save(folder / "good.png")
    good = (folder / "good.png").read_bytes()
    (folder / "truncated.png").write_bytes(good[: len(good) // 2])
    (folder / "empty.png").write_bytes(b"")
    (folder / "wrong_magic.nii.gz").write_bytes(b"this is not gzip")
    project = tmp_path / "p"
    run("init", project, "--task", "classification")
    capsys.readouterr()
    assert run("import", project, folder, "--json") == 0
    report = json.loads(capsys.readouterr().out)
    assert report["added"] == 1
    reasons = {Path(s["record"]).name.split("/")[-1]: s["reason"] for s in report["skipped"]}
    assert len(report["skipped"]) == 3, report
    for name in ("truncated.png", "empty.png", "wrong_magic.nii.gz"):
        assert any(name in where or name in why for where, why in reasons.items()), reasons


def test_path_escape_in_manifest_is_refused_and_the_rest_imported(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = tmp_path / "data"
    root.mkdir()
    Image.fromarray(np.zeros((4, 4), np.uint8)).save(root / "ok.png")
    Image.fromarray(np.zeros((4, 4), np.uint8)).save(tmp_path / "outside.png")
    (root / "link.png").symlink_to(tmp_path / "outside.png")
    (root / "m.csv").write_text(
        f"path,label\nok.png,0\n../outside.png,1\n{tmp_path / 'outside.png'},1\nlink.png,0\n"
    )
    project = tmp_path / "p"
    run("init", project, "--task", "classification")
    capsys.readouterr()
    assert run("import", project, root / "m.csv", "--json") == 0
    report = json.loads(capsys.readouterr().out)
    assert report["added"] == 1 and len(report["skipped"]) == 3, report
    assert all("root" in s["reason"] or "outside" in s["reason"] for s in report["skipped"])


def test_errors_are_clear_and_exit_nonzero(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run("status", tmp_path / "nothing-here") == 1
    assert "nothing-here" in capsys.readouterr().err
    project = tmp_path / "p"
    run("init", project, "--task", "classification")
    assert run("init", project, "--task", "classification") == 1
    assert run("export", project, "--format", "csv", "--out", tmp_path / "o") == 1
    assert "no labels" in capsys.readouterr().err
    assert run("export", project, "--format", "msd", "--out", tmp_path / "o") == 1
    assert "classification" in capsys.readouterr().err


def test_killed_import_adds_nothing_or_everything(tmp_path: Path) -> None:
    """SIGKILL `workbench import` at several moments: the project holds 0 or all 780 items."""
    import os
    import signal
    import time

    counts = set()
    for n, delay in enumerate((0.3, 0.8, 1.3, 1.8, 2.5, 3.5, None)):
        project = tmp_path / f"p{n}"
        run("init", project, "--task", "classification")
        child = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "workbench.cli",
                "import",
                str(project),
                str(DEMO / "breastmnist" / "breastmnist.npz"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        if delay is None:  # the last run is left to finish
            assert child.wait(timeout=300) == 0
        else:
            time.sleep(delay)
            if child.poll() is None:
                os.kill(child.pid, signal.SIGKILL)
            child.wait()
        with open_project(project) as store:
            assert store.integrity_check() == "ok"
            items, labels = len(store.list_items()), len(store.current_labels())
        assert (items, labels) in {(0, 0), (780, 780)}, (delay, items, labels)
        counts.add(items)
    assert 780 in counts  # the run left alone finished
