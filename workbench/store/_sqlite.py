"""``SQLiteStore``: the default :class:`~workbench.store.ProjectStore`, one SQLite file.

Safe for many processes at once (WAL, ``BEGIN IMMEDIATE`` writes with retry while busy) and for
the threads of one process (one connection under a lock). Open one store per process; do not
share an open store across ``fork``.
"""

from __future__ import annotations

import dataclasses
import json
import math
import sqlite3
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from types import TracebackType

import numpy as np

from workbench.errors import StoreError
from workbench.store import _rows
from workbench.store._blobs import get_array, put_array
from workbench.store._db import Database
from workbench.store._records import (
    Assignment,
    Flag,
    Item,
    LabelSource,
    LabelSubmission,
    LabelVersion,
    ModelStatus,
    ModelVersion,
    NewItem,
    Prediction,
    ProjectConfig,
    Round,
    RoundStatus,
    Task,
)
from workbench.store._schema import SCHEMA_VERSION, create_schema, migrate, schema_version
from workbench.store._serving import reserve_next
from workbench.store._validate import check_new_items, check_submission, item_shape

_GT = LabelSource.GROUND_TRUTH.value


class SQLiteStore:
    """A project's state in one SQLite database file. Every write is one durable transaction."""

    config: ProjectConfig

    def __init__(self, path: str | Path) -> None:
        """Open an existing workbench database (migrating an older schema)."""
        self.path = Path(path)
        if not self.path.is_file():
            raise StoreError("no project database here", path=self.path)
        self._db = Database(self.path)
        try:
            with self._db.read() as conn:
                found = schema_version(conn)
            if found != SCHEMA_VERSION:
                with self._db.write() as conn:  # check again under the write lock
                    found = schema_version(conn)
                    if found is None:
                        raise StoreError("not a workbench project database", path=self.path)
                    if found != SCHEMA_VERSION:
                        migrate(conn, found)
            with self._db.read() as conn:
                row = conn.execute("SELECT value FROM meta WHERE key = 'config'").fetchone()
            self.config = _rows.config_from_json(row["value"])
        except BaseException:
            self._db.close()
            raise

    @classmethod
    def create(cls, path: str | Path, config: ProjectConfig) -> SQLiteStore:
        """Create a new database at ``path`` (which must not exist) holding ``config``."""
        path = Path(path)
        if path.exists():
            raise StoreError("a file already exists here", path=path)
        config = _checked_config(config)
        db = Database(path)
        try:
            with db.write() as conn:
                create_schema(conn)
                conn.execute(
                    "INSERT INTO meta (key, value) VALUES ('config', ?)",
                    (_rows.config_to_json(config),),
                )
        finally:
            db.close()
        return cls(path)

    @property
    def root(self) -> Path:
        """The folder that holds the database (the project folder)."""
        return self.path.parent

    # items -------------------------------------------------------------------------------
    def add_items(self, items: Sequence[NewItem]) -> list[int]:
        """Add items in one transaction; returns their ids. A duplicate key fails the whole call."""
        with self._db.write() as conn:
            return self._insert_items(conn, items, time.time())

    @staticmethod
    def _insert_items(conn: sqlite3.Connection, items: Sequence[NewItem], now: float) -> list[int]:
        check_new_items(conn, items)
        ids = []
        for new in items:
            cursor = conn.execute(
                "INSERT INTO items (key, source_uri, content_hash, modality, shape, spacing, "
                "split, metadata, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    new.key,
                    new.source_uri,
                    new.content_hash,
                    new.modality,
                    json.dumps([int(s) for s in new.shape]),
                    json.dumps([float(s) for s in new.spacing]),
                    new.split,
                    _rows.to_json(new.metadata, field="metadata"),
                    now,
                ),
            )
            ids.append(int(cursor.lastrowid or 0))
        return ids

    def add_items_with_labels(
        self, items: Sequence[NewItem], labels: Sequence[LabelSubmission | None]
    ) -> list[int]:
        """Add items and their first labels in ONE transaction (imports): all or nothing.

        ``labels[i]`` belongs to ``items[i]`` (its ``item_id`` is ignored) or is ``None``.
        """
        if len(labels) != len(items):
            raise StoreError("one label (or None) per item is required", field="labels")
        now = time.time()
        with self._db.write() as conn:
            ids = self._insert_items(conn, items, now)
            subs = [
                dataclasses.replace(sub, item_id=item_id)
                for item_id, sub in zip(ids, labels, strict=True)
                if sub is not None
            ]
            for n, sub in enumerate(subs):
                check_submission(conn, self.config, sub, where=f"labels[{n}]: ")
            for sub in subs:
                self._insert_label(conn, sub, now)
        return ids

    def get_item(self, item_id: int) -> Item:
        with self._db.read() as conn:
            row = conn.execute("SELECT * FROM items WHERE id = ?", (item_id,)).fetchone()
        if row is None:
            raise StoreError(f"no item with id {item_id!r}", field="item_id")
        return _rows.item(row)

    def find_item(self, key: str) -> Item | None:
        with self._db.read() as conn:
            row = conn.execute("SELECT * FROM items WHERE key = ?", (key,)).fetchone()
        return None if row is None else _rows.item(row)

    def list_items(self, split: str | None = None) -> list[Item]:
        with self._db.read() as conn:
            rows = conn.execute(
                "SELECT * FROM items WHERE (? IS NULL OR split = ?) ORDER BY id", (split, split)
            ).fetchall()
        return [_rows.item(row) for row in rows]

    # labels ------------------------------------------------------------------------------
    def submit_label(self, submission: LabelSubmission) -> LabelVersion:
        """Write a new immutable label version (and end the annotator's assignment)."""
        return self.submit_labels([submission])[0]

    def submit_labels(self, submissions: Sequence[LabelSubmission]) -> list[LabelVersion]:
        """Many label versions in one transaction (imports); one bad submission writes none."""
        now = time.time()
        with self._db.write() as conn:
            for n, sub in enumerate(submissions):
                where = f"submissions[{n}]: " if len(submissions) > 1 else ""
                check_submission(conn, self.config, sub, where=where)
            return [self._insert_label(conn, sub, now) for sub in submissions]

    def _insert_label(
        self, conn: sqlite3.Connection, sub: LabelSubmission, now: float
    ) -> LabelVersion:
        mask_hash = None if sub.mask is None else put_array(conn, sub.mask, field="mask")
        class_index = None if sub.class_index is None else int(sub.class_index)
        source = LabelSource(sub.source)
        cursor = conn.execute(
            "INSERT INTO label_versions (item_id, annotator, source, class_index, mask_hash, "
            "started_at, submitted_at, seconds_spent, model_version_id, replaces_id, comment) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                sub.item_id,
                sub.annotator,
                source.value,
                class_index,
                mask_hash,
                sub.started_at,
                now,
                sub.seconds_spent,
                sub.model_version_id,
                sub.replaces_id,
                sub.comment,
            ),
        )
        conn.execute(
            "DELETE FROM assignments WHERE item_id = ? AND annotator = ?",
            (sub.item_id, sub.annotator),
        )
        return LabelVersion(
            id=int(cursor.lastrowid or 0),
            item_id=sub.item_id,
            annotator=sub.annotator,
            source=source,
            class_index=class_index,
            mask_hash=mask_hash,
            started_at=sub.started_at,
            submitted_at=now,
            seconds_spent=sub.seconds_spent,
            model_version_id=sub.model_version_id,
            replaces_id=sub.replaces_id,
            comment=sub.comment,
        )

    def current_label(
        self, item_id: int, *, include_ground_truth: bool = False
    ) -> LabelVersion | None:
        """The newest label version of an item (hidden ground truth excluded unless asked)."""
        with self._db.read() as conn:
            item_shape(conn, item_id)
            row = conn.execute(
                "SELECT * FROM label_versions WHERE item_id = ? AND (? = 1 OR source <> ?) "
                "ORDER BY id DESC LIMIT 1",
                (item_id, int(include_ground_truth), _GT),
            ).fetchone()
        return None if row is None else _rows.label(row)

    def label_history(self, item_id: int) -> list[LabelVersion]:
        """Every label version of an item, oldest first, hidden ground truth included."""
        with self._db.read() as conn:
            item_shape(conn, item_id)
            rows = conn.execute(
                "SELECT * FROM label_versions WHERE item_id = ? ORDER BY id", (item_id,)
            ).fetchall()
        return [_rows.label(row) for row in rows]

    def current_labels(
        self, *, split: str | None = None, include_ground_truth: bool = False
    ) -> list[LabelVersion]:
        """The newest label version of every labelled item, by item id."""
        with self._db.read() as conn:
            rows = conn.execute(
                "SELECT lv.* FROM label_versions lv JOIN items i ON i.id = lv.item_id "
                "WHERE lv.id IN (SELECT MAX(id) FROM label_versions "
                "                WHERE ? = 1 OR source <> ? GROUP BY item_id) "
                "AND (? IS NULL OR i.split = ?) ORDER BY lv.item_id",
                (int(include_ground_truth), _GT, split, split),
            ).fetchall()
        return [_rows.label(row) for row in rows]

    def get_mask(self, mask_hash: str) -> np.ndarray:
        """The exact mask array stored under ``mask_hash`` (dtype and shape as submitted)."""
        with self._db.read() as conn:
            return get_array(conn, mask_hash)

    # flags -------------------------------------------------------------------------------
    def flag_item(self, item_id: int, annotator: str, kind: str, comment: str = "") -> Flag:
        if not kind:
            raise StoreError("a flag needs a kind", field="kind")
        now = time.time()
        with self._db.write() as conn:
            item_shape(conn, item_id)
            cursor = conn.execute(
                "INSERT INTO flags (item_id, annotator, kind, comment, created_at) "
                "VALUES (?, ?, ?, ?, ?)",
                (item_id, annotator, kind, comment, now),
            )
        return Flag(
            id=int(cursor.lastrowid or 0),
            item_id=item_id,
            annotator=annotator,
            kind=kind,
            comment=comment,
            created_at=now,
        )

    def list_flags(self, item_id: int | None = None) -> list[Flag]:
        with self._db.read() as conn:
            rows = conn.execute(
                "SELECT * FROM flags WHERE (? IS NULL OR item_id = ?) ORDER BY id",
                (item_id, item_id),
            ).fetchall()
        return [_rows.flag(row) for row in rows]

    # models, predictions, scores ---------------------------------------------------------
    def add_model_version(
        self, name: str, params: Mapping[str, object] | None = None, trained_on: Iterable[int] = ()
    ) -> ModelVersion:
        """Register a model version (status TRAINING) and the label versions it trains on."""
        label_ids = sorted({int(i) for i in trained_on})
        params_json = _rows.to_json(params or {}, field="params")
        now = time.time()
        with self._db.write() as conn:
            known = {row[0] for row in _in_chunks(conn, "SELECT id FROM label_versions", label_ids)}
            missing = [i for i in label_ids if i not in known]
            if missing:
                raise StoreError(f"unknown label version ids {missing[:10]}", field="trained_on")
            cursor = conn.execute(
                "INSERT INTO model_versions (name, status, created_at, checkpoint, metrics, "
                "params, error) VALUES (?, ?, ?, NULL, '{}', ?, NULL)",
                (name, ModelStatus.TRAINING.value, now, params_json),
            )
            model_id = int(cursor.lastrowid or 0)
            conn.executemany(
                "INSERT INTO model_training_labels (model_version_id, "
                "label_version_id) VALUES (?, ?)",
                [(model_id, i) for i in label_ids],
            )
            return self._model_version(conn, model_id)

    def update_model_version(
        self,
        model_version_id: int,
        *,
        status: ModelStatus,
        checkpoint: str | None = None,
        metrics: Mapping[str, float] | None = None,
        error: str | None = None,
    ) -> ModelVersion:
        """Set the status; checkpoint, metrics and error change only when given."""
        try:
            status = ModelStatus(status)
        except ValueError as bad:
            raise StoreError(f"unknown model status {status!r}", field="status") from bad
        metrics_json = (
            None
            if metrics is None
            else _rows.to_json({k: float(v) for k, v in metrics.items()}, field="metrics")
        )
        with self._db.write() as conn:
            _require(conn, "model_versions", model_version_id, "model_version_id")
            conn.execute(
                "UPDATE model_versions SET status = ?, checkpoint = COALESCE(?, checkpoint), "
                "metrics = COALESCE(?, metrics), error = COALESCE(?, error) WHERE id = ?",
                (status.value, checkpoint, metrics_json, error, model_version_id),
            )
            return self._model_version(conn, model_version_id)

    def list_model_versions(self) -> list[ModelVersion]:
        with self._db.read() as conn:
            ids = [row[0] for row in conn.execute("SELECT id FROM model_versions ORDER BY id")]
            return [self._model_version(conn, i) for i in ids]

    @staticmethod
    def _model_version(conn: sqlite3.Connection, model_id: int) -> ModelVersion:
        row = conn.execute("SELECT * FROM model_versions WHERE id = ?", (model_id,)).fetchone()
        trained = conn.execute(
            "SELECT label_version_id FROM model_training_labels "
            "WHERE model_version_id = ? ORDER BY label_version_id",
            (model_id,),
        ).fetchall()
        return _rows.model_version(row, tuple(r[0] for r in trained))

    def add_predictions(self, model_version_id: int, predictions: Iterable[Prediction]) -> None:
        """Store (or replace) a model version's predictions, arrays as content-addressed blobs."""
        now = time.time()
        with self._db.write() as conn:
            _require(conn, "model_versions", model_version_id, "model_version_id")
            for n, pred in enumerate(predictions):
                item_shape(conn, pred.item_id, where=f"predictions[{n}]: ")
                arrays = (pred.probs, pred.mask, pred.uncertainty_map)
                if all(a is None for a in arrays):
                    raise StoreError(
                        f"predictions[{n}]: no probs, mask or uncertainty map", field="predictions"
                    )
                hashes = [
                    None if a is None else put_array(conn, np.asarray(a), field="predictions")
                    for a in arrays
                ]
                conn.execute(
                    "INSERT INTO predictions (model_version_id, item_id, probs_hash, mask_hash, "
                    "uncertainty_hash, created_at) VALUES (?, ?, ?, ?, ?, ?) "
                    "ON CONFLICT (model_version_id, item_id) DO UPDATE SET "
                    "probs_hash = excluded.probs_hash, mask_hash = excluded.mask_hash, "
                    "uncertainty_hash = excluded.uncertainty_hash, "
                    "created_at = excluded.created_at",
                    (model_version_id, pred.item_id, *hashes, now),
                )

    def get_prediction(self, model_version_id: int, item_id: int) -> Prediction | None:
        with self._db.read() as conn:
            row = conn.execute(
                "SELECT * FROM predictions WHERE model_version_id = ? AND item_id = ?",
                (model_version_id, item_id),
            ).fetchone()
            if row is None:
                return None
            probs, mask, unc = (
                None if row[c] is None else get_array(conn, row[c])
                for c in ("probs_hash", "mask_hash", "uncertainty_hash")
            )
        return Prediction(item_id=item_id, probs=probs, mask=mask, uncertainty_map=unc)

    def add_scores(self, model_version_id: int, strategy: str, scores: Mapping[int, float]) -> None:
        """Store (or replace) one strategy's score per item for a model version."""
        if not strategy:
            raise StoreError("a strategy name is required", field="strategy")
        rows = [(int(i), float(s)) for i, s in scores.items()]
        bad = [i for i, s in rows if not math.isfinite(s)]
        if bad:
            raise StoreError(f"non-finite scores for items {bad[:10]}", field="scores")
        now = time.time()
        with self._db.write() as conn:
            _require(conn, "model_versions", model_version_id, "model_version_id")
            ids = [i for i, _ in rows]
            known = {row[0] for row in _in_chunks(conn, "SELECT id FROM items", ids)}
            missing = [i for i in ids if i not in known]
            if missing:
                raise StoreError(f"unknown item ids {missing[:10]}", field="scores")
            conn.executemany(
                "INSERT INTO scores (model_version_id, strategy, item_id, score, written_at) "
                "VALUES (?, ?, ?, ?, ?) ON CONFLICT (model_version_id, strategy, item_id) "
                "DO UPDATE SET score = excluded.score, written_at = excluded.written_at",
                [(model_version_id, strategy, i, s, now) for i, s in rows],
            )

    def get_scores(self, model_version_id: int, strategy: str) -> dict[int, float]:
        with self._db.read() as conn:
            rows = conn.execute(
                "SELECT item_id, score FROM scores WHERE model_version_id = ? "
                "AND strategy = ? ORDER BY item_id",
                (model_version_id, strategy),
            ).fetchall()
        return {row[0]: row[1] for row in rows}

    # rounds ------------------------------------------------------------------------------
    def start_round(
        self, strategy: str, params: Mapping[str, object], model_version_id: int | None
    ) -> Round:
        params_json = _rows.to_json(params, field="params")
        now = time.time()
        with self._db.write() as conn:
            if model_version_id is not None:
                _require(conn, "model_versions", model_version_id, "model_version_id")
            cursor = conn.execute(
                "INSERT INTO rounds (strategy, params, model_version_id, status, created_at) "
                "VALUES (?, ?, ?, ?, ?)",
                (strategy, params_json, model_version_id, RoundStatus.RUNNING.value, now),
            )
            return self._round(conn, int(cursor.lastrowid or 0))

    def finish_round(
        self,
        round_id: int,
        *,
        status: RoundStatus,
        selected: Sequence[int] = (),
        error: str | None = None,
    ) -> Round:
        """Close a running round with its selection (in serving order)."""
        try:
            status = RoundStatus(status)
        except ValueError as bad:
            raise StoreError(f"unknown round status {status!r}", field="status") from bad
        if status is RoundStatus.RUNNING:
            raise StoreError("finish a round as done or failed", field="status")
        picked = [int(i) for i in selected]
        if len(set(picked)) != len(picked):
            raise StoreError("an item is selected twice", field="selected")
        with self._db.write() as conn:
            row = conn.execute("SELECT status FROM rounds WHERE id = ?", (round_id,)).fetchone()
            if row is None:
                raise StoreError(f"no round with id {round_id!r}", field="round_id")
            if row["status"] != RoundStatus.RUNNING.value:
                raise StoreError(f"round {round_id} is already {row['status']}", field="round_id")
            known = {r[0] for r in _in_chunks(conn, "SELECT id FROM items", picked)}
            missing = [i for i in picked if i not in known]
            if missing:
                raise StoreError(f"unknown item ids {missing[:10]}", field="selected")
            conn.executemany(
                "INSERT INTO round_items (round_id, position, item_id) VALUES (?, ?, ?)",
                [(round_id, n, i) for n, i in enumerate(picked)],
            )
            conn.execute(
                "UPDATE rounds SET status = ?, error = ?, finished_at = ? WHERE id = ?",
                (status.value, error, time.time(), round_id),
            )
            return self._round(conn, round_id)

    def list_rounds(self) -> list[Round]:
        with self._db.read() as conn:
            ids = [row[0] for row in conn.execute("SELECT id FROM rounds ORDER BY id")]
            return [self._round(conn, i) for i in ids]

    @staticmethod
    def _round(conn: sqlite3.Connection, round_id: int) -> Round:
        row = conn.execute("SELECT * FROM rounds WHERE id = ?", (round_id,)).fetchone()
        picked = conn.execute(
            "SELECT item_id FROM round_items WHERE round_id = ? ORDER BY position", (round_id,)
        ).fetchall()
        return _rows.round_(row, tuple(r[0] for r in picked))

    # serving -----------------------------------------------------------------------------
    def next_item(
        self,
        annotator: str,
        *,
        lease_seconds: float = 900.0,
        split: str | None = None,
        exclude: Sequence[int] = (),
    ) -> Item | None:
        """Reserve and return the next unlabelled item for this annotator.

        Order: the latest finished round's selection first (in its order), then the latest
        ready model's scores (highest first; its most recently written strategy), then item id.
        Never returns an item reserved by another annotator whose lease has not expired; an
        annotator who asks again gets the item they already hold (and the lease is renewed).
        Items whose only labels are hidden ground truth count as unlabelled; items in
        ``exclude`` (e.g. just skipped) are passed over.
        """
        if not annotator:
            raise StoreError("annotator must be a non-empty string", field="annotator")
        with self._db.write() as conn:
            item_id = reserve_next(
                conn,
                annotator,
                now=time.time(),
                lease_seconds=float(lease_seconds),
                split=split,
                exclude=exclude,
            )
            if item_id is None:
                return None
            row = conn.execute("SELECT * FROM items WHERE id = ?", (item_id,)).fetchone()
        return _rows.item(row)

    def peek_next(
        self, annotator: str, *, split: str | None = None, exclude: Sequence[int] = ()
    ) -> Item | None:
        """The item ``next_item`` would serve now, without reserving it (so a widget can load
        it ahead). The choice runs the same query inside a savepoint that is rolled back."""
        with self._db.write() as conn:
            conn.execute("SAVEPOINT peek")
            try:
                item_id = reserve_next(
                    conn,
                    annotator,
                    now=time.time(),
                    lease_seconds=1.0,
                    split=split,
                    exclude=exclude,
                )
                row = (
                    None
                    if item_id is None
                    else conn.execute("SELECT * FROM items WHERE id = ?", (item_id,)).fetchone()
                )
            finally:
                conn.execute("ROLLBACK TO peek")
                conn.execute("RELEASE peek")
        return None if row is None else _rows.item(row)

    def release(self, item_id: int, annotator: str) -> None:
        """End ``annotator``'s reservation of ``item_id`` (no-op when they hold none)."""
        with self._db.write() as conn:
            conn.execute(
                "DELETE FROM assignments WHERE item_id = ? AND annotator = ?", (item_id, annotator)
            )

    def list_assignments(self) -> list[Assignment]:
        """Live (unexpired) reservations, by item id."""
        with self._db.read() as conn:
            rows = conn.execute(
                "SELECT * FROM assignments WHERE expires_at > ? ORDER BY item_id", (time.time(),)
            ).fetchall()
        return [_rows.assignment(row) for row in rows]

    # lifecycle ---------------------------------------------------------------------------
    def integrity_check(self) -> str:
        """SQLite's ``PRAGMA integrity_check``: ``'ok'`` when the file is sound."""
        with self._db.read() as conn:
            return "; ".join(str(row[0]) for row in conn.execute("PRAGMA integrity_check"))

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> SQLiteStore:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"SQLiteStore({str(self.path)!r}, task={self.config.task.value})"


def _checked_config(config: ProjectConfig) -> ProjectConfig:
    """Validate a new project's config; stamp ``created_at`` when it is unset."""
    if not config.name:
        raise StoreError("a project needs a name", field="name")
    try:
        task = Task(config.task)
    except ValueError as error:
        raise StoreError(f"unknown task {config.task!r}", field="task") from error
    classes = tuple(config.classes)
    if not classes or not all(isinstance(c, str) and c for c in classes):
        raise StoreError("classes must be non-empty names", field="classes")
    if len(set(classes)) != len(classes):
        raise StoreError("class names must be unique", field="classes")
    created = config.created_at or time.time()
    return ProjectConfig(name=config.name, task=task, classes=classes, created_at=created)


def _require(conn: sqlite3.Connection, table: str, row_id: int, field: str) -> None:
    if conn.execute(f"SELECT 1 FROM {table} WHERE id = ?", (row_id,)).fetchone() is None:
        raise StoreError(f"no {table[:-1].replace('_', ' ')} with id {row_id!r}", field=field)


def _in_chunks(
    conn: sqlite3.Connection, select: str, ids: Sequence[int], size: int = 500
) -> list[sqlite3.Row]:
    """Rows of ``select ... WHERE id IN (ids)``, in chunks under SQLite's parameter limit."""
    out: list[sqlite3.Row] = []
    for start in range(0, len(ids), size):
        chunk = ids[start : start + size]
        marks = ", ".join("?" * len(chunk))
        out.extend(conn.execute(f"{select} WHERE id IN ({marks})", chunk).fetchall())
    return out
