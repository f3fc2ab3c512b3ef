"""Database rows to plain records (no sqlite types leave the store)."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Mapping

from workbench.errors import StoreError
from workbench.store._records import (
    Assignment,
    Flag,
    Item,
    LabelSource,
    LabelVersion,
    ModelStatus,
    ModelVersion,
    ProjectConfig,
    Round,
    RoundStatus,
    Task,
)


def to_json(value: Mapping[str, object], *, field: str) -> str:
    """Serialise a mapping for a JSON column, naming ``field`` when it cannot be."""
    try:
        return json.dumps(dict(value), sort_keys=True, allow_nan=True)
    except (TypeError, ValueError) as error:
        raise StoreError(f"not JSON-serialisable: {error}", field=field) from error


def config_to_json(config: ProjectConfig) -> str:
    return json.dumps(
        {
            "name": config.name,
            "task": config.task.value,
            "classes": list(config.classes),
            "created_at": config.created_at,
        }
    )


def config_from_json(text: str) -> ProjectConfig:
    data = json.loads(text)
    return ProjectConfig(
        name=data["name"],
        task=Task(data["task"]),
        classes=tuple(data["classes"]),
        created_at=float(data["created_at"]),
    )


def item(row: sqlite3.Row) -> Item:
    return Item(
        id=row["id"],
        key=row["key"],
        source_uri=row["source_uri"],
        content_hash=row["content_hash"],
        modality=row["modality"],
        shape=tuple(json.loads(row["shape"])),
        spacing=tuple(json.loads(row["spacing"])),
        split=row["split"],
        created_at=row["created_at"],
        metadata=json.loads(row["metadata"]),
    )


def label(row: sqlite3.Row) -> LabelVersion:
    return LabelVersion(
        id=row["id"],
        item_id=row["item_id"],
        annotator=row["annotator"],
        source=LabelSource(row["source"]),
        class_index=row["class_index"],
        mask_hash=row["mask_hash"],
        started_at=row["started_at"],
        submitted_at=row["submitted_at"],
        seconds_spent=row["seconds_spent"],
        model_version_id=row["model_version_id"],
        replaces_id=row["replaces_id"],
        comment=row["comment"],
    )


def model_version(row: sqlite3.Row, trained_on: tuple[int, ...]) -> ModelVersion:
    return ModelVersion(
        id=row["id"],
        name=row["name"],
        status=ModelStatus(row["status"]),
        created_at=row["created_at"],
        checkpoint=row["checkpoint"],
        metrics=json.loads(row["metrics"]),
        trained_on=trained_on,
        params=json.loads(row["params"]),
        error=row["error"],
    )


def round_(row: sqlite3.Row, selected: tuple[int, ...]) -> Round:
    return Round(
        id=row["id"],
        strategy=row["strategy"],
        params=json.loads(row["params"]),
        model_version_id=row["model_version_id"],
        selected=selected,
        status=RoundStatus(row["status"]),
        created_at=row["created_at"],
        error=row["error"],
    )


def flag(row: sqlite3.Row) -> Flag:
    return Flag(
        id=row["id"],
        item_id=row["item_id"],
        annotator=row["annotator"],
        kind=row["kind"],
        comment=row["comment"],
        created_at=row["created_at"],
    )


def assignment(row: sqlite3.Row) -> Assignment:
    return Assignment(
        item_id=row["item_id"],
        annotator=row["annotator"],
        served_at=row["served_at"],
        expires_at=row["expires_at"],
    )
