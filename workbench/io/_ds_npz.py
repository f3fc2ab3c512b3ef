"""Dataset reader for MedMNIST ``.npz`` archives (2D and 3D)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np

from ..errors import ManifestError
from ._npz import SPLITS, load_npz_array, npz_array_shapes, npz_modality
from ._records import DatasetRecord, DatasetReport
from ._uris import npz_uri

_CLASS_NAMES = {
    "breastmnist": ("malignant", "normal, benign"),
    "pneumoniamnist": ("normal", "pneumonia"),
    "adrenalmnist3d": ("normal", "hyperplasia"),
}


def open_npz(path: Path, report: DatasetReport) -> Iterator[DatasetRecord]:
    """Validate the archive now; yield one record per image (``<stem>/<split>/<index:05d>``)."""
    shapes = npz_array_shapes(path)
    splits = [s for s in SPLITS if f"{s}_images" in shapes]
    if not splits:
        raise ManifestError(
            "no '<split>_images' array (train/val/test)", path=path, field="train_images"
        )
    for split in splits:
        n_images = shapes[f"{split}_images"][0]
        labels = shapes.get(f"{split}_labels")
        if labels is not None and labels[0] != n_images:
            raise ManifestError(
                f"{labels[0]} labels for {n_images} images", path=path, field=f"{split}_labels"
            )
    report.classes = _CLASS_NAMES.get(path.stem.lower(), ())
    return _records(path, splits, shapes, report)


def _records(
    path: Path, splits: list[str], shapes: dict[str, tuple[int, ...]], report: DatasetReport
) -> Iterator[DatasetRecord]:
    modality = npz_modality(path)
    for split in splits:
        labels: np.ndarray | None = None
        if f"{split}_labels" in shapes:
            labels = np.asarray(load_npz_array(path, f"{split}_labels")).reshape(
                shapes[f"{split}_images"][0], -1
            )
            if labels.shape[1] != 1:
                report.notes.append(f"{split}: multi-label targets ({labels.shape[1]}) not kept")
                labels = None
        for index in range(shapes[f"{split}_images"][0]):
            yield DatasetRecord(
                key=f"{path.stem}/{split}/{index:05d}",
                uri=npz_uri(path, split, index),
                split=split,
                label=int(labels[index, 0]) if labels is not None else None,
                modality=modality,
            )
