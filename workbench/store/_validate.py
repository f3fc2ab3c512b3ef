"""Checks run inside a write transaction before anything is written; errors name the field."""

from __future__ import annotations

import json
import operator
import sqlite3
from collections.abc import Sequence

import numpy as np

from workbench.errors import StoreError
from workbench.store._records import LabelSource, LabelSubmission, NewItem, ProjectConfig, Task


def check_new_items(conn: sqlite3.Connection, items: Sequence[NewItem]) -> None:
    """Every key non-empty and unique (within the batch and against the project)."""
    seen: set[str] = set()
    for n, new in enumerate(items):
        where = f"items[{n}]"
        if not isinstance(new.key, str) or not new.key:
            raise StoreError(f"{where}: key must be a non-empty string", field="key")
        if new.key in seen:
            raise StoreError(f"{where}: duplicate key {new.key!r} in this batch", field="key")
        seen.add(new.key)
        if conn.execute("SELECT 1 FROM items WHERE key = ?", (new.key,)).fetchone():
            raise StoreError(f"{where}: an item with key {new.key!r} already exists", field="key")
        if not new.shape or any(int(side) <= 0 for side in new.shape):
            raise StoreError(
                f"{where}: shape must be positive sizes, got {new.shape}", field="shape"
            )
        if not all(isinstance(v, str) for v in new.metadata.values()):
            raise StoreError(f"{where}: metadata values must be strings", field="metadata")


def item_shape(conn: sqlite3.Connection, item_id: object, *, where: str = "") -> tuple[int, ...]:
    """The spatial shape of an existing item (an RGB image's channel axis dropped, as a mask has
    none); StoreError naming ``item_id`` if there is none."""
    row = None
    if isinstance(item_id, int) and not isinstance(item_id, bool):
        row = conn.execute("SELECT shape, spacing FROM items WHERE id = ?", (item_id,)).fetchone()
    if row is None:
        raise StoreError(f"{where}no item with id {item_id!r}", field="item_id")
    shape, spacing = json.loads(row["shape"]), json.loads(row["spacing"])
    return tuple(shape[: len(spacing)] if spacing else shape)


def check_submission(
    conn: sqlite3.Connection, config: ProjectConfig, sub: LabelSubmission, *, where: str = ""
) -> None:
    """Raise StoreError (naming the field) unless ``sub`` is a valid label for this project."""
    shape = item_shape(conn, sub.item_id, where=where)
    if not isinstance(sub.annotator, str) or not sub.annotator:
        raise StoreError(f"{where}annotator must be a non-empty string", field="annotator")
    try:
        LabelSource(sub.source)
    except ValueError as error:
        raise StoreError(f"{where}unknown label source {sub.source!r}", field="source") from error
    if config.task is Task.CLASSIFICATION:
        _check_class(config, sub, where)
    else:
        _check_mask(sub, shape, where)
        if sub.mask is not None and sub.mask.size and int(sub.mask.max()) >= len(config.classes):
            raise StoreError(
                f"{where}mask value {int(sub.mask.max())} is not one of the "
                f"{len(config.classes)} classes {list(config.classes)}",
                field="mask",
            )
    if (
        sub.model_version_id is not None
        and conn.execute(
            "SELECT 1 FROM model_versions WHERE id = ?", (sub.model_version_id,)
        ).fetchone()
        is None
    ):
        raise StoreError(
            f"{where}no model version with id {sub.model_version_id!r}", field="model_version_id"
        )
    if sub.replaces_id is not None:
        row = conn.execute(
            "SELECT item_id FROM label_versions WHERE id = ?", (sub.replaces_id,)
        ).fetchone()
        if row is None or row["item_id"] != sub.item_id:
            raise StoreError(
                f"{where}label version {sub.replaces_id!r} is not a label of item {sub.item_id}",
                field="replaces_id",
            )


def _check_class(config: ProjectConfig, sub: LabelSubmission, where: str) -> None:
    if sub.mask is not None:
        raise StoreError(
            f"{where}a classification project takes class_index, not a mask", field="mask"
        )
    if sub.class_index is None or isinstance(sub.class_index, bool):
        raise StoreError(f"{where}class_index is required", field="class_index")
    try:
        index = operator.index(sub.class_index)
    except TypeError as error:
        raise StoreError(
            f"{where}class_index must be an integer, got {sub.class_index!r}", field="class_index"
        ) from error
    if not 0 <= index < len(config.classes):
        raise StoreError(
            f"{where}class_index {index} is outside the project's "
            f"{len(config.classes)} classes {list(config.classes)}",
            field="class_index",
        )


def _check_mask(sub: LabelSubmission, shape: tuple[int, ...], where: str) -> None:
    if sub.class_index is not None:
        raise StoreError(
            f"{where}a segmentation project takes a mask, not class_index", field="class_index"
        )
    if not isinstance(sub.mask, np.ndarray):
        raise StoreError(f"{where}mask is required (a numpy array)", field="mask")
    if sub.mask.dtype.kind not in "biu":
        raise StoreError(
            f"{where}mask must be bool or integer, got dtype {sub.mask.dtype}", field="mask"
        )
    if tuple(sub.mask.shape) != shape:
        raise StoreError(
            f"{where}mask shape {tuple(sub.mask.shape)} differs from the item's shape {shape}",
            field="mask",
        )
    if sub.mask.dtype.kind == "i" and sub.mask.size and int(sub.mask.min()) < 0:
        raise StoreError(f"{where}mask values must be class indices (>= 0)", field="mask")
