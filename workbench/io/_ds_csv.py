"""Dataset reader for a CSV manifest: ``path`` column, optional ``label`` and ``split``.

``label`` is read column-wide as class indices (all integers), mask paths (all end in an image
suffix) or class names (anything else; indexed in sorted order).
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path

from ..errors import ManifestError, WorkbenchError
from ._atomic import full_suffix
from ._ds_folder import dicom_records_under
from ._paths import relative_key, resolve_inside
from ._records import DatasetRecord, DatasetReport
from ._sniff import SUFFIX_FORMATS
from ._uris import file_uri


def _read_rows(path: Path) -> tuple[list[str], list[tuple[int, dict[str, str]]]]:
    try:
        with path.open(newline="", encoding="utf-8-sig") as stream:
            reader = csv.DictReader(stream)
            header = [h.strip() for h in (reader.fieldnames or [])]
            rows = [
                (reader.line_num, {k.strip(): (v or "").strip() for k, v in row.items() if k})
                for row in reader
            ]
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise ManifestError(f"cannot parse CSV ({exc})", path=path) from exc
    if "path" not in header:
        raise ManifestError(f"no 'path' column (columns: {header})", path=path, field="path")
    return header, rows


def _label_mode(values: list[str], path: Path) -> str:
    if not values:
        return "none"
    if all(v.lstrip("-").isdigit() for v in values):
        if any(int(v) < 0 for v in values):
            raise ManifestError("negative class index", path=path, field="label")
        return "index"
    is_mask = [full_suffix(Path(v)) in SUFFIX_FORMATS for v in values]
    if all(is_mask):
        return "mask"
    if any(is_mask):
        raise ManifestError("label column mixes mask paths and classes", path=path, field="label")
    return "name"


def open_csv(path: Path, report: DatasetReport) -> Iterator[DatasetRecord]:
    """Validate the header and label column now; yield one record per usable row."""
    header, rows = _read_rows(path)
    labels = [row.get("label", "") for _, row in rows if row.get("label")]
    mode = _label_mode(labels, path) if "label" in header else "none"
    names = sorted(set(labels)) if mode == "name" else []
    report.classes = tuple(names)
    return _records(path, rows, mode, {n: i for i, n in enumerate(names)}, report)


def _records(
    path: Path,
    rows: list[tuple[int, dict[str, str]]],
    mode: str,
    index_of: dict[str, int],
    report: DatasetReport,
) -> Iterator[DatasetRecord]:
    root = path.parent
    for line, row in rows:
        where = f"{path}:{line}"
        value, label, split = row.get("path", ""), row.get("label", ""), row.get("split") or None
        try:
            if not value:
                raise ManifestError("empty path", path=path, field=f"path (line {line})")
            image = resolve_inside(root, value, source=path, field=f"path (line {line})")
            mask = (
                resolve_inside(root, label, source=path, field=f"label (line {line})")
                if mode == "mask" and label
                else None
            )
        except WorkbenchError as exc:
            report.skip_error(where, exc)
            continue
        class_index = None
        if label and mode == "index":
            class_index = int(label)
        elif label and mode == "name":
            class_index = index_of[label]
        if image.is_dir():
            for record in dicom_records_under(root, image, report):
                yield DatasetRecord(record.key, record.uri, split, class_index, None)
            continue
        yield DatasetRecord(
            relative_key(root, image),
            file_uri(image),
            split,
            class_index,
            file_uri(mask) if mask else None,
        )
