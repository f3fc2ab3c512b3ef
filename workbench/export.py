"""Export a project's current labels as files other tools read.

Every format writes a self-contained dataset (images and labels) into a temporary folder beside
``out`` and renames it into place at the end, so a failed export leaves nothing half-written.
Formats:
  * ``csv``   classification: ``labels.csv`` (path, label, label_name, split, provenance) + images.
  * ``png``   2D segmentation: ``masks/*.png`` + ``images/`` + ``manifest.csv``.
  * ``nifti`` segmentation: ``labels/*.nii.gz`` with each scan's original affine + ``images/``.
  * ``msd``   segmentation: an nnU-Net v2 raw dataset folder, the successor of the Medical
              Segmentation Decathlon layout (``imagesTr/<case>_0000.nii.gz``,
              ``labelsTr/<case>.nii.gz``, ``dataset.json`` with channel_names, labels,
              numTraining, file_ending).
Each output re-imports with ``workbench import`` to the same labels.
"""

from __future__ import annotations

import csv
import json
import re
import shutil
import tempfile
from collections.abc import Callable
from enum import Enum
from pathlib import Path

import numpy as np

from workbench.errors import WorkbenchError
from workbench.io import ScanImage, read_uri, write_nifti, write_png
from workbench.store import Item, LabelVersion, SQLiteStore, Task

ProgressCallback = Callable[[int, int], None]


class ExportFormat(str, Enum):
    CSV = "csv"
    PNG = "png"
    NIFTI = "nifti"
    MSD = "msd"


class ExportError(WorkbenchError):
    """The export cannot be made (wrong format for the task, target exists...)."""

    code = "export_error"


_PROVENANCE_COLUMNS = ("source", "annotator", "submitted_at", "seconds_spent", "model_version_id")


def export_labels(
    store: SQLiteStore,
    fmt: ExportFormat | str,
    out: str | Path,
    *,
    progress: ProgressCallback | None = None,
) -> int:
    """Write the current (non-ground-truth) labels to ``out``; returns how many were written."""
    fmt = ExportFormat(fmt)
    out = Path(out)
    _check_format(store.config.task, fmt)
    if out.exists() and any(out.iterdir()):
        raise ExportError("the output folder exists and is not empty", path=out)
    labelled = [(store.get_item(label.item_id), label) for label in store.current_labels()]
    if not labelled:
        raise ExportError("the project has no labels to export", path=store.root)
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        writer = _WRITERS[fmt]
        writer(store, labelled, staging, progress)
        if out.exists():
            out.rmdir()
        staging.rename(out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return len(labelled)


def _check_format(task: Task, fmt: ExportFormat) -> None:
    if task is Task.CLASSIFICATION and fmt is not ExportFormat.CSV:
        raise ExportError(
            f"format '{fmt.value}' exports masks; use 'csv' for a classification project",
            field="format",
        )
    if task is Task.SEGMENTATION and fmt is ExportFormat.CSV:
        raise ExportError(
            "format 'csv' exports classes; use png, nifti or msd for segmentation", field="format"
        )


_IMAGE_SUFFIXES = (".nii.gz", ".nii", ".png", ".jpg", ".jpeg", ".tif", ".tiff", ".dcm", ".npz")
_IMAGE_FOLDERS = {"imagesTr", "imagesTs", "images"}


def file_stem(key: str) -> str:
    """A safe, readable file name stem for an item key (extensions and image folders dropped)."""
    for suffix in _IMAGE_SUFFIXES:
        if key.lower().endswith(suffix):
            key = key[: -len(suffix)]
            break
    parts = [part for part in key.split("/") if part not in _IMAGE_FOLDERS]
    return re.sub(r"[^A-Za-z0-9._-]+", "_", "_".join(parts)).strip("._") or "item"


def _image_file(image: ScanImage, folder: Path, stem: str) -> Path:
    if image.ndim_spatial == 2:
        path = folder / f"{stem}.png"
        write_png(path, image.array)
    else:
        path = folder / f"{stem}.nii.gz"
        write_nifti(path, image.array, image.affine)
    return path


def _provenance(label: LabelVersion) -> list[object]:
    return [
        label.source.value,
        label.annotator,
        f"{label.submitted_at:.3f}",
        "" if label.seconds_spent is None else f"{label.seconds_spent:.1f}",
        "" if label.model_version_id is None else label.model_version_id,
    ]


def _write_csv(
    store: SQLiteStore,
    labelled: list[tuple[Item, LabelVersion]],
    root: Path,
    progress: ProgressCallback | None,
) -> None:
    images = root / "images"
    images.mkdir()
    with open(root / "labels.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["key", "path", "label", "label_name", "split", *_PROVENANCE_COLUMNS])
        for done, (item, label) in enumerate(labelled, 1):
            image = read_uri(item.source_uri, modality=item.modality)
            path = _image_file(image, images, file_stem(item.key))
            assert label.class_index is not None
            writer.writerow(
                [
                    item.key,
                    path.relative_to(root).as_posix(),
                    label.class_index,
                    store.config.classes[label.class_index],
                    item.split,
                    *_provenance(label),
                ]
            )
            if progress:
                progress(done, len(labelled))


def _write_masks(
    store: SQLiteStore,
    labelled: list[tuple[Item, LabelVersion]],
    root: Path,
    progress: ProgressCallback | None,
    *,
    as_png: bool,
) -> None:
    images, masks = root / "images", root / ("masks" if as_png else "labels")
    images.mkdir()
    masks.mkdir()
    with open(root / "manifest.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["key", "path", "label", "split", *_PROVENANCE_COLUMNS])
        for done, (item, label) in enumerate(labelled, 1):
            image = read_uri(item.source_uri, modality=item.modality)
            mask = _mask_of(store, label)
            stem = file_stem(item.key)
            image_path = _image_file(image, images, stem)
            if as_png:
                if mask.ndim != 2:
                    raise ExportError(
                        "PNG masks are 2D; export 3D masks as nifti or msd",
                        path=item.source_uri,
                        field="format",
                    )
                mask_path = masks / f"{stem}.png"
                write_png(mask_path, mask)
            else:
                mask_path = masks / f"{stem}.nii.gz"
                write_nifti(mask_path, mask, image.affine)
            writer.writerow(
                [
                    item.key,
                    image_path.relative_to(root).as_posix(),
                    mask_path.relative_to(root).as_posix(),
                    item.split,
                    *_provenance(label),
                ]
            )
            if progress:
                progress(done, len(labelled))


def _write_msd(
    store: SQLiteStore,
    labelled: list[tuple[Item, LabelVersion]],
    root: Path,
    progress: ProgressCallback | None,
) -> None:
    images, labels = root / "imagesTr", root / "labelsTr"
    images.mkdir()
    labels.mkdir()
    training = []
    provenance = {}
    for done, (item, label) in enumerate(labelled, 1):
        image = read_uri(item.source_uri, modality=item.modality)
        if image.ndim_spatial != 3 and image.is_rgb:
            raise ExportError(
                "RGB images cannot be written as one NIfTI channel",
                path=item.source_uri,
                field="format",
            )
        case = file_stem(item.key)
        write_nifti(images / f"{case}_0000.nii.gz", image.array, image.affine)
        write_nifti(labels / f"{case}.nii.gz", _mask_of(store, label), image.affine)
        training.append(case)
        provenance[case] = dict(zip(_PROVENANCE_COLUMNS, _provenance(label), strict=True))
        if progress:
            progress(done, len(labelled))
    modality = labelled[0][0].modality
    document = {
        "name": store.config.name,
        "description": "Exported by workbench",
        "channel_names": {"0": modality},
        "labels": {name: index for index, name in enumerate(store.config.classes)},
        "numTraining": len(training),
        "numTest": 0,
        "file_ending": ".nii.gz",
        "workbench_provenance": provenance,
    }
    (root / "dataset.json").write_text(json.dumps(document, indent=2))


def _mask_of(store: SQLiteStore, label: LabelVersion) -> np.ndarray:
    assert label.mask_hash is not None
    return store.get_mask(label.mask_hash).astype(np.uint8)


_WRITERS: dict[ExportFormat, Callable[..., None]] = {
    ExportFormat.CSV: _write_csv,
    ExportFormat.PNG: lambda s, lab, r, p: _write_masks(s, lab, r, p, as_png=True),
    ExportFormat.NIFTI: lambda s, lab, r, p: _write_masks(s, lab, r, p, as_png=False),
    ExportFormat.MSD: _write_msd,
}
