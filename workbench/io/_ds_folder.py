"""Dataset reader for a folder of images (recursive) and/or DICOM files (one record per series).

When the folder has ``images/`` and ``labels/`` (or ``masks/``) sub-folders, or ``imagesTr/`` and
``labelsTr/`` (an MSD folder without dataset.json), each image gets the file with the same relative
name (any image suffix) in the labels folder as its mask.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

from ._atomic import full_suffix
from ._dicom import group_dicom_files, has_dicom_magic
from ._paths import relative_key, walk_files
from ._records import DatasetRecord, DatasetReport
from ._sniff import SUFFIX_FORMATS, FileFormat

IMAGE_SUFFIXES = frozenset(
    s for s, f in SUFFIX_FORMATS.items() if f not in (FileFormat.DICOM, FileFormat.NPZ)
)
_DICOM_SUFFIXES = frozenset((".dcm", ".dicom"))


def is_dicom_file(path: Path) -> bool:
    return full_suffix(path) in _DICOM_SUFFIXES or (
        full_suffix(path) not in IMAGE_SUFFIXES and has_dicom_magic(path)
    )


_PAIRED_FOLDERS = (("images", ("labels", "masks")), ("imagesTr", ("labelsTr",)))


def _paired_folders(root: Path) -> tuple[Path, Path] | None:
    """``(images, labels)`` sub-folders whose files pair by name (``imagesTr``/``labelsTr`` too:
    an MSD folder without its dataset.json)."""
    for images, label_names in _PAIRED_FOLDERS:
        if (root / images).is_dir():
            for name in label_names:
                if (root / name).is_dir():
                    return root / images, root / name
    return None


def _stem(path: Path) -> str:
    return path.name[: -len(full_suffix(path))]


def dicom_records_under(root: Path, folder: Path, report: DatasetReport) -> Iterator[DatasetRecord]:
    """One record per DICOM series under ``folder``; keys are ``<relative dir>/<SeriesUID>``."""
    files = [p for p in walk_files(folder, report.skipped) if is_dicom_file(p)]
    return _series_records(root, files, report)


def _series_records(
    root: Path, files: list[Path], report: DatasetReport
) -> Iterator[DatasetRecord]:
    series, skipped = group_dicom_files(files)
    report.skipped.extend(skipped)
    for item in series:
        where = relative_key(root, item.folder)
        key = item.series_uid if where == "." else f"{where}/{item.series_uid}"
        yield DatasetRecord(key, item.uri, None, None, None, item.modality)


def open_folder(root: Path, report: DatasetReport) -> Iterator[DatasetRecord]:
    """Image files (sorted by relative path) then DICOM series."""
    return _records(root, report)


def _records(root: Path, report: DatasetReport) -> Iterator[DatasetRecord]:
    pair = _paired_folders(root)
    images, labels = pair if pair is not None else (None, None)
    masks: dict[str, Path] = {}
    if labels is not None:
        masks = {
            os.path.join(os.path.relpath(p.parent, labels), _stem(p)): p
            for p in walk_files(labels)
            if full_suffix(p) in IMAGE_SUFFIXES
        }
    dicom_files: list[Path] = []
    for path in walk_files(root, report.skipped):
        if labels is not None and path.is_relative_to(labels):
            continue
        if full_suffix(path) not in IMAGE_SUFFIXES:
            if is_dicom_file(path):
                dicom_files.append(path)
            continue
        mask = None
        if images is not None and path.is_relative_to(images):
            rel = os.path.join(os.path.relpath(path.parent, images), _stem(path))
            mask = masks.get(rel)
        yield DatasetRecord(
            relative_key(root, path),
            str(path.absolute()),
            None,
            None,
            str(mask.absolute()) if mask else None,
        )
    yield from _series_records(root, dicom_files, report)
