"""What dataset readers yield: one ``DatasetRecord`` per image, plus a ``DatasetReport``."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

import numpy as np

from ..errors import WorkbenchError
from ._image import ScanImage
from ._read import read_label, read_uri


class DatasetKind(str, Enum):
    MEDMNIST = "medmnist"  # .npz with {split}_images / {split}_labels
    MSD = "msd"  # Medical Segmentation Decathlon folder (dataset.json 'training' list)
    NNUNET = "nnunet"  # nnU-Net v2 raw folder (imagesTr/<case>_0000.ext, labelsTr/<case>.ext)
    CSV = "csv"  # manifest with columns path[, label][, split]
    DICOM_FOLDER = "dicom_folder"  # one record per series
    IMAGE_FOLDER = "image_folder"  # one record per image file (recursive)
    FILE = "file"  # a single image file


@dataclass(frozen=True)
class DatasetRecord:
    """One image of a dataset.

    ``key`` is stable and unique within the dataset (a relative path, or ``<stem>/<split>/<i>``
    for npz); ``uri`` reloads the image with ``read_uri``. ``label`` is a class index and
    ``label_uri`` a mask; at most one is set.
    """

    key: str
    uri: str
    split: str | None = None
    label: int | None = None
    label_uri: str | None = None
    modality: str | None = None  # known from the dataset (e.g. dataset.json) when not "OT"

    def load(self) -> ScanImage:
        """The image (modality filled in from the dataset when the file does not say)."""
        return read_uri(self.uri, modality=self.modality)

    def load_label(self) -> np.ndarray | None:
        """The mask array, or ``None`` when the record has no mask."""
        return read_label(self.label_uri) if self.label_uri else None


@dataclass
class DatasetReport:
    """Filled while a dataset is iterated: class names, counts and skipped entries."""

    source: str
    kind: DatasetKind | None = None
    classes: tuple[str, ...] = ()  # class (or label value) names by index
    n_records: int = 0
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (location, reason)
    notes: list[str] = field(default_factory=list)

    def skip(self, location: str, reason: str) -> None:
        self.skipped.append((location, reason))

    def skip_error(self, location: str, error: WorkbenchError) -> None:
        """Record a typed error as ``"[code] message"`` (e.g. ``[path_escape] ...``)."""
        self.skip(location, f"[{error.code}] {error}")
