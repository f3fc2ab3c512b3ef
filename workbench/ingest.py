"""Import scans (and the labels that come with them) into a project, all or nothing.

Reading is done first, in a thread pool (decoders release the GIL); every readable record is then
written in ONE store transaction, so an interrupted import leaves the project as it was. Records
that cannot be read are skipped and reported with the reason; keys already in the project are
skipped too, so re-running an import is safe.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path

import numpy as np

from workbench.errors import ManifestError, WorkbenchError
from workbench.io import DatasetRecord, DatasetReport, content_hash, iter_dataset
from workbench.store import LabelSource, LabelSubmission, NewItem, SQLiteStore, Task

SPLITS = ("train", "val", "test")
IMPORT_ANNOTATOR = "import"


class LabelPolicy(str, Enum):
    """What to do with labels found in a source."""

    IMPORT = "import"  # keep them as `imported` label versions
    GROUND_TRUTH = "ground-truth"  # hold them back as hidden ground truth (simulation oracle)
    IGNORE = "ignore"


@dataclass
class ImportReport:
    """What an import did: counts, and every record it skipped with the reason."""

    added: int = 0
    labels: int = 0
    already_present: int = 0
    skipped: list[tuple[str, str]] = field(default_factory=list)

    def as_dict(self) -> dict[str, object]:
        return {
            "added": self.added,
            "labels": self.labels,
            "already_present": self.already_present,
            "skipped": [{"record": where, "reason": why} for where, why in self.skipped],
        }


@dataclass(frozen=True)
class _Prepared:
    item: NewItem
    class_index: int | None
    mask: np.ndarray | None


ProgressCallback = Callable[[int, int | None], None]


def import_sources(
    store: SQLiteStore,
    sources: Sequence[str | Path],
    *,
    split: str | None = None,
    labels: LabelPolicy = LabelPolicy.IMPORT,
    workers: int = 4,
    progress: ProgressCallback | None = None,
) -> ImportReport:
    """Import every readable record of ``sources`` into ``store`` in one transaction.

    ``split`` overrides the split a source declares (MedMNIST and MSD declare theirs).
    ``progress(done, total)`` is called as records are read (total is None when unknown).
    """
    if split is not None and split not in SPLITS:
        raise ManifestError(
            f"unknown split '{split}'; use one of {', '.join(SPLITS)}", field="split"
        )
    report = ImportReport()
    records: list[DatasetRecord] = []
    for source in sources:
        found, skipped = _list_records(Path(source))
        records.extend(found)
        report.skipped.extend(skipped)

    seen: set[str] = set()
    fresh: list[DatasetRecord] = []
    for record in records:
        if record.key in seen or store.find_item(record.key) is not None:
            report.already_present += 1
            continue
        seen.add(record.key)
        fresh.append(record)

    prepared: list[_Prepared] = []
    done = 0
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        for record, outcome in zip(
            fresh, pool.map(lambda r: _prepare(r, store, split, labels), fresh), strict=True
        ):
            done += 1
            if progress is not None:
                progress(done, len(fresh))
            if isinstance(outcome, str):
                report.skipped.append((record.key, outcome))
            else:
                prepared.append(outcome)

    if not prepared:
        return report
    label_source = (
        LabelSource.IMPORTED if labels is LabelPolicy.IMPORT else LabelSource.GROUND_TRUTH
    )
    item_labels = [
        None
        if p.class_index is None and p.mask is None
        else LabelSubmission(
            item_id=0,
            annotator=IMPORT_ANNOTATOR,
            source=label_source,
            class_index=p.class_index,
            mask=p.mask,
        )
        for p in prepared
    ]
    store.add_items_with_labels([p.item for p in prepared], item_labels)
    report.added = len(prepared)
    report.labels = sum(label is not None for label in item_labels)
    return report


def _list_records(source: Path) -> tuple[list[DatasetRecord], list[tuple[str, str]]]:
    """All records of one source (keys prefixed with the source's name), plus skipped entries."""
    report = DatasetReport(str(source))
    records = list(iter_dataset(source, report=report))
    prefix = source.name.split(".")[0]
    keyed = [
        r if r.key.startswith(f"{prefix}/") else dataclasses.replace(r, key=f"{prefix}/{r.key}")
        for r in records
    ]
    return keyed, [(str(where), why) for where, why in report.skipped]


def _prepare(
    record: DatasetRecord, store: SQLiteStore, split: str | None, labels: LabelPolicy
) -> _Prepared | str:
    """Read one record into an item (and its label); a string is the reason it was skipped."""
    try:
        image = record.load()
        class_index, mask = None, None
        if labels is not LabelPolicy.IGNORE:
            class_index, mask = _label_of(record, image.spatial_shape, store)
    except WorkbenchError as error:
        return str(error)
    except (OSError, ValueError) as error:  # decoders raise these for damaged files
        return f"{record.uri}: {error}"
    item = NewItem(
        key=record.key,
        source_uri=record.uri,
        content_hash=content_hash(image),
        modality=image.modality,
        shape=tuple(int(s) for s in image.array.shape),
        spacing=tuple(float(s) for s in image.spacing),
        split=split or record.split or "train",
        metadata=dict(image.metadata),
    )
    return _Prepared(item=item, class_index=class_index, mask=mask)


def _label_of(
    record: DatasetRecord, spatial_shape: tuple[int, ...], store: SQLiteStore
) -> tuple[int | None, np.ndarray | None]:
    task = store.config.task
    if record.label is not None:
        if task is not Task.CLASSIFICATION:
            raise ManifestError(
                "has a class label but the project is for segmentation",
                path=record.uri,
                field="label",
            )
        n_classes = len(store.config.classes)
        if not 0 <= record.label < n_classes:
            raise ManifestError(
                f"class {record.label} is outside the project's {n_classes} classes",
                path=record.uri,
                field="label",
            )
        return int(record.label), None
    mask = record.load_label()
    if mask is None:
        return None, None
    if task is not Task.SEGMENTATION:
        raise ManifestError(
            "has a mask but the project is for classification", path=record.uri, field="label"
        )
    if tuple(mask.shape) != tuple(spatial_shape):
        raise ManifestError(
            f"mask shape {mask.shape} differs from image shape {spatial_shape}",
            path=record.label_uri or record.uri,
            field="label",
        )
    if mask.size and int(mask.max()) >= len(store.config.classes):
        raise ManifestError(
            f"mask value {int(mask.max())} is outside the project's {len(store.config.classes)} "
            "classes (background included)",
            path=record.label_uri or record.uri,
            field="label",
        )
    return None, np.ascontiguousarray(mask.astype(np.uint8))
