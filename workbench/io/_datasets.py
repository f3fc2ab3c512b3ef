"""``detect_dataset`` and ``iter_dataset``: pick the reader for a path and iterate its records."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from ..errors import ManifestError, ScanReadError
from ._atomic import full_suffix
from ._ds_csv import open_csv
from ._ds_folder import IMAGE_SUFFIXES, open_folder
from ._ds_msd import json_kind, load_dataset_json, open_segmentation_folder
from ._ds_npz import open_npz
from ._paths import walk_files
from ._records import DatasetKind, DatasetRecord, DatasetReport
from ._sniff import FileFormat, sniff_format
from ._uris import file_uri


def detect_dataset(path: str | Path) -> DatasetKind:
    """The reader for ``path``: npz, folder with dataset.json, csv, DICOM/image folder, file."""
    target = Path(path)
    if target.is_dir():
        if (target / "dataset.json").is_file():
            return json_kind(load_dataset_json(target / "dataset.json"))
        for file in walk_files(target):
            if full_suffix(file) in IMAGE_SUFFIXES:
                return DatasetKind.IMAGE_FOLDER
        return DatasetKind.DICOM_FOLDER
    suffix = full_suffix(target)
    if suffix == ".csv":
        return DatasetKind.CSV
    if target.name == "dataset.json":
        return json_kind(load_dataset_json(target))
    if sniff_format(target) is FileFormat.NPZ:
        return DatasetKind.MEDMNIST
    return DatasetKind.FILE


def _single_file(path: Path) -> Iterator[DatasetRecord]:
    yield DatasetRecord(path.name, file_uri(path))


def _open(path: Path, kind: DatasetKind, report: DatasetReport) -> Iterator[DatasetRecord]:
    if kind is DatasetKind.MEDMNIST:
        return open_npz(path, report)
    if kind in (DatasetKind.MSD, DatasetKind.NNUNET):
        return open_segmentation_folder(path.parent if path.is_file() else path, report)
    if kind is DatasetKind.CSV:
        return open_csv(path, report)
    if kind in (DatasetKind.DICOM_FOLDER, DatasetKind.IMAGE_FOLDER):
        return open_folder(path, report)
    return _single_file(path)


def iter_dataset(
    source: str | Path, *, report: DatasetReport | None = None, kind: DatasetKind | None = None
) -> Iterator[DatasetRecord]:
    """Records of the dataset at ``source`` (reader from ``detect_dataset`` unless ``kind``).

    The manifest (npz arrays, dataset.json, CSV header) is checked before this returns and a
    malformed one raises ``ManifestError``. A bad entry (path escape, missing file, unreadable
    DICOM, duplicate key) is skipped and listed in ``report.skipped`` with its reason; pass a
    ``DatasetReport`` to see it (it also gets the kind, class names and record count).
    """
    path = Path(source).absolute()
    if not path.exists():
        raise ScanReadError("dataset not found", path=path)
    report = report if report is not None else DatasetReport(str(path))
    report.kind = kind or detect_dataset(path)
    records = _open(path, report.kind, report)
    if report.kind is DatasetKind.FILE and path.is_dir():
        raise ManifestError("a folder is not a single file", path=path)
    return _unique(records, report)


def _unique(records: Iterator[DatasetRecord], report: DatasetReport) -> Iterator[DatasetRecord]:
    seen: set[str] = set()
    for record in records:
        if record.key in seen:
            report.skip(record.uri, f"duplicate key '{record.key}'")
            continue
        seen.add(record.key)
        report.n_records += 1
        yield record
