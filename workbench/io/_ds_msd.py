"""Dataset reader for Medical Segmentation Decathlon and nnU-Net v2 raw folders."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from ..errors import ManifestError, WorkbenchError
from ._paths import relative_key, resolve_inside
from ._records import DatasetKind, DatasetRecord, DatasetReport
from ._uris import file_uri

_MODALITY_CODES = {
    "ct": "CT",
    "mri": "MR",
    "mr": "MR",
    "t1": "MR",
    "t2": "MR",
    "flair": "MR",
    "t1w": "MR",
    "t2w": "MR",
    "adc": "MR",
    "pet": "PT",
    "us": "US",
}
_CHANNEL = re.compile(r"_(\d{4})$")


def load_dataset_json(path: Path) -> dict[str, Any]:
    """The parsed dataset.json object; ``ManifestError`` when unreadable or not an object."""
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ManifestError(f"cannot parse dataset.json ({exc})", path=path) from exc
    if not isinstance(meta, dict):
        raise ManifestError("dataset.json must hold a JSON object", path=path)
    return meta


def json_kind(meta: Mapping[str, Any]) -> DatasetKind:
    return DatasetKind.MSD if "training" in meta else DatasetKind.NNUNET


def _classes(meta: Mapping[str, Any], path: Path) -> tuple[str, ...]:
    labels = meta.get("labels")
    if not isinstance(labels, dict) or not labels:
        raise ManifestError("missing or empty 'labels' mapping", path=path, field="labels")
    by_value: dict[int, str] = {}
    try:
        for key, value in labels.items():
            if isinstance(value, int):  # nnU-Net v2: {"background": 0, ...}
                by_value[value] = str(key)
            else:  # MSD: {"0": "background", ...}
                by_value[int(key)] = str(value)
    except (TypeError, ValueError) as exc:
        raise ManifestError(
            f"labels must map values to names ({exc}); region labels are not supported",
            path=path,
            field="labels",
        ) from exc
    if min(by_value) < 0:
        raise ManifestError("negative label value", path=path, field="labels")
    return tuple(by_value.get(i, f"unused_{i}") for i in range(max(by_value) + 1))


def _modality(meta: Mapping[str, Any]) -> str | None:
    channels = meta.get("modality") or meta.get("channel_names")
    if isinstance(channels, dict) and channels:
        first = str(channels.get("0", next(iter(channels.values()))))
        return _MODALITY_CODES.get(first.strip().lower())
    return None


def open_segmentation_folder(root: Path, report: DatasetReport) -> Iterator[DatasetRecord]:
    """Validate dataset.json now; yield train records (with masks) then test records."""
    json_path = root / "dataset.json"
    meta = load_dataset_json(json_path)
    report.kind = json_kind(meta)
    report.classes = _classes(meta, json_path)
    modality = _modality(meta)
    if report.kind is DatasetKind.MSD:
        training, test = meta.get("training"), meta.get("test", [])
        if not isinstance(training, list):
            raise ManifestError("'training' must be a list", path=json_path, field="training")
        if not isinstance(test, list):
            raise ManifestError("'test' must be a list", path=json_path, field="test")
        return _msd_records(root, json_path, training, test, modality, report)
    ending = meta.get("file_ending", ".nii.gz")
    if not isinstance(ending, str) or not ending.startswith("."):
        raise ManifestError(
            "'file_ending' must look like '.nii.gz'", path=json_path, field="file_ending"
        )
    if not (root / "imagesTr").is_dir():
        raise ManifestError("no imagesTr folder next to dataset.json", path=json_path)
    return _nnunet_records(root, ending, modality, report)


def _msd_records(
    root: Path,
    json_path: Path,
    training: list[Any],
    test: list[Any],
    modality: str | None,
    report: DatasetReport,
) -> Iterator[DatasetRecord]:
    for index, entry in enumerate(training):
        where = f"training[{index}]"
        try:
            if not isinstance(entry, dict) or not isinstance(entry.get("image"), str):
                raise ManifestError("entry needs an 'image' path", path=json_path, field=where)
            image = resolve_inside(root, entry["image"], source=json_path, field=f"{where}.image")
            label = entry.get("label")
            mask = (
                resolve_inside(root, label, source=json_path, field=f"{where}.label")
                if isinstance(label, str)
                else None
            )
        except WorkbenchError as exc:
            report.skip_error(f"{json_path}:{where}", exc)
            continue
        yield DatasetRecord(
            relative_key(root, image),
            file_uri(image),
            "train",
            None,
            file_uri(mask) if mask else None,
            modality,
        )
    for index, entry in enumerate(test):
        where = f"test[{index}]"
        try:
            if not isinstance(entry, str):
                raise ManifestError("test entry must be a path", path=json_path, field=where)
            image = resolve_inside(root, entry, source=json_path, field=where)
        except WorkbenchError as exc:
            report.skip_error(f"{json_path}:{where}", exc)
            continue
        yield DatasetRecord(relative_key(root, image), file_uri(image), "test", modality=modality)


def _cases(folder: Path, ending: str) -> dict[str, list[Path]]:
    cases: dict[str, list[Path]] = {}
    if folder.is_dir():
        for path in sorted(folder.iterdir()):
            if path.name.startswith(".") or not path.name.endswith(ending):
                continue
            stem = path.name[: -len(ending)]
            match = _CHANNEL.search(stem)
            case = stem[: match.start()] if match else stem
            cases.setdefault(case, []).append(path)
    return cases


def _nnunet_records(
    root: Path, ending: str, modality: str | None, report: DatasetReport
) -> Iterator[DatasetRecord]:
    for folder, split in (("imagesTr", "train"), ("imagesTs", "test")):
        for case, channels in _cases(root / folder, ending).items():
            image = channels[0]
            if len(channels) > 1:
                report.notes.append(f"{folder}/{case}: {len(channels)} channels, channel 0 used")
            try:
                image = resolve_inside(root, relative_key(root, image), source=image, field="image")
                mask: Path | None = None
                if split == "train":
                    label = root / "labelsTr" / f"{case}{ending}"
                    mask = (
                        resolve_inside(root, relative_key(root, label), source=label, field="label")
                        if label.exists()
                        else None
                    )
                    if mask is None:
                        report.notes.append(f"{folder}/{case}: no label in labelsTr")
            except WorkbenchError as exc:
                report.skip_error(str(image), exc)
                continue
            yield DatasetRecord(
                relative_key(root, image),
                file_uri(image),
                split,
                None,
                file_uri(mask) if mask else None,
                modality,
            )
