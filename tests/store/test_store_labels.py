"""Items and label versions: history, immutability, hidden ground truth, validation."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from dataclasses import replace

import numpy as np
import pytest
from store_helpers import new_items

from workbench.errors import StoreError
from workbench.store import LabelSource, LabelSubmission, NewItem, SQLiteStore


def _table_counts(store: SQLiteStore) -> dict[str, int]:
    with closing(sqlite3.connect(store.path)) as conn, conn:
        tables = [
            r[0]
            for r in conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
            )
        ]
        return {t: conn.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0] for t in tables}


# items -------------------------------------------------------------------------------------
def test_items_round_trip(cls_store: SQLiteStore) -> None:
    new = new_items(3, shape=(4, 5, 6))
    ids = cls_store.add_items(new)
    assert ids == sorted(ids) and len(set(ids)) == 3
    item = cls_store.get_item(ids[1])
    assert (item.key, item.shape, item.spacing) == ("case-0001", (4, 5, 6), (1.0, 1.0, 1.0))
    assert item.metadata == {"site": "a"} and item.split == "train" and item.created_at > 0
    assert cls_store.find_item("case-0002") == cls_store.get_item(ids[2])
    assert cls_store.find_item("missing") is None
    cls_store.add_items(new_items(2, split="val", prefix="v"))
    assert [i.key for i in cls_store.list_items("val")] == ["v-0000", "v-0001"]
    assert len(cls_store.list_items()) == 5


def test_duplicate_key_fails_the_whole_call(cls_store: SQLiteStore) -> None:
    cls_store.add_items(new_items(1))
    before = _table_counts(cls_store)
    with pytest.raises(StoreError, match="case-0000") as caught:
        cls_store.add_items(new_items(1, prefix="other") + new_items(1))
    assert caught.value.field == "key"
    with pytest.raises(StoreError, match="duplicate"):
        cls_store.add_items(new_items(1, prefix="x") + new_items(1, prefix="x"))
    assert _table_counts(cls_store) == before


def test_item_ids_are_never_reused(cls_store: SQLiteStore) -> None:
    first = cls_store.add_items(new_items(2))
    # even if a row were removed by hand:
    with closing(sqlite3.connect(cls_store.path)) as conn, conn:
        conn.execute("DELETE FROM items WHERE id = ?", (first[-1],))
    again = cls_store.add_items(new_items(1, prefix="new"))
    assert again[0] > first[-1]


def test_unknown_item(cls_store: SQLiteStore) -> None:
    for call in (
        lambda: cls_store.get_item(99),
        lambda: cls_store.current_label(99),
        lambda: cls_store.label_history(99),
    ):
        with pytest.raises(StoreError) as caught:
            call()
        assert caught.value.field == "item_id"


# labels ------------------------------------------------------------------------------------
def test_versions_history_and_current(cls_store: SQLiteStore) -> None:
    a, b = cls_store.add_items(new_items(2))
    assert cls_store.current_label(a) is None
    first = cls_store.submit_label(
        LabelSubmission(
            a,
            "ann",
            LabelSource.HUMAN,
            class_index=1,
            started_at=10.0,
            seconds_spent=4.5,
            comment="looks benign",
        )
    )
    second = cls_store.submit_label(
        LabelSubmission(a, "rev", LabelSource.HUMAN, class_index=2, replaces_id=first.id)
    )
    assert second.id > first.id and second.replaces_id == first.id
    assert cls_store.current_label(a) == second
    assert cls_store.label_history(a) == [first, second]
    assert first.seconds_spent == 4.5 and first.comment == "looks benign"
    assert first.started_at == 10.0 and first.submitted_at > 0
    other = cls_store.submit_label(LabelSubmission(b, "ann", LabelSource.IMPORTED, class_index=0))
    assert cls_store.current_labels() == [second, other]


def test_label_versions_are_immutable_in_the_database(cls_store: SQLiteStore) -> None:
    (a,) = cls_store.add_items(new_items(1))
    label = cls_store.submit_label(LabelSubmission(a, "ann", LabelSource.HUMAN, class_index=1))
    with closing(sqlite3.connect(cls_store.path)) as conn, conn:
        with pytest.raises(sqlite3.IntegrityError, match="immutable"):
            conn.execute("UPDATE label_versions SET class_index = 0")
        with pytest.raises(sqlite3.IntegrityError, match="immutable"):
            conn.execute("DELETE FROM label_versions")
    assert cls_store.label_history(a) == [label]


def test_ground_truth_is_hidden(cls_store: SQLiteStore) -> None:
    a, b = cls_store.add_items(new_items(2, split="train"))
    truth = cls_store.submit_labels(
        [
            LabelSubmission(a, "oracle", LabelSource.GROUND_TRUTH, class_index=2),
            LabelSubmission(b, "oracle", LabelSource.GROUND_TRUTH, class_index=0),
        ]
    )
    assert cls_store.current_label(a) is None
    assert cls_store.current_labels() == []
    assert cls_store.current_label(a, include_ground_truth=True) == truth[0]
    assert cls_store.current_labels(include_ground_truth=True) == truth
    human = cls_store.submit_label(LabelSubmission(b, "ann", LabelSource.HUMAN, class_index=1))
    assert cls_store.current_labels() == [human]
    assert cls_store.label_history(b) == [truth[1], human]
    assert cls_store.next_item("ann") == cls_store.get_item(a)  # only ground truth: unlabelled


def test_current_labels_by_split(cls_store: SQLiteStore) -> None:
    (t,) = cls_store.add_items(new_items(1))
    (v,) = cls_store.add_items(new_items(1, split="val", prefix="v"))
    cls_store.submit_labels(
        [LabelSubmission(i, "ann", LabelSource.HUMAN, class_index=0) for i in (t, v)]
    )
    assert [lv.item_id for lv in cls_store.current_labels(split="val")] == [v]
    assert [lv.item_id for lv in cls_store.current_labels(split="train")] == [t]


def test_numpy_class_index_is_accepted(cls_store: SQLiteStore) -> None:
    (a,) = cls_store.add_items(new_items(1))
    label = cls_store.submit_label(
        LabelSubmission(a, "ann", LabelSource.HUMAN, class_index=np.int64(2))  # type: ignore[arg-type]
    )
    assert label.class_index == 2 and type(label.class_index) is int


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"class_index": 3}, "class_index"),
        ({"class_index": -1}, "class_index"),
        ({"class_index": None}, "class_index"),
        ({"class_index": True}, "class_index"),
        ({"class_index": 1.5}, "class_index"),
        ({"class_index": None, "mask": np.zeros((8, 8), np.uint8)}, "mask"),
        ({"item_id": 999}, "item_id"),
        ({"annotator": ""}, "annotator"),
        ({"source": "robot"}, "source"),
        ({"model_version_id": 42}, "model_version_id"),
        ({"replaces_id": 42}, "replaces_id"),
    ],
)
def test_bad_classification_label_writes_nothing(
    cls_store: SQLiteStore, change: dict[str, object], field: str
) -> None:
    a, b = cls_store.add_items(new_items(2))
    good = LabelSubmission(a, "ann", LabelSource.HUMAN, class_index=1)
    cls_store.next_item("ann")
    before = _table_counts(cls_store)
    with pytest.raises(StoreError) as caught:
        cls_store.submit_label(replace(good, **change))  # type: ignore[arg-type]
    assert caught.value.field == field
    with pytest.raises(StoreError) as caught:  # one bad submission in a batch: none written
        cls_store.submit_labels([good, replace(good, **{"item_id": b, **change})])  # type: ignore[arg-type]
    assert caught.value.field == field
    assert _table_counts(cls_store) == before
    assert cls_store.list_assignments()[0].item_id == a  # the lease survives a failed submit


def test_replaces_id_must_belong_to_the_same_item(cls_store: SQLiteStore) -> None:
    a, b = cls_store.add_items(new_items(2))
    label = cls_store.submit_label(LabelSubmission(a, "ann", LabelSource.HUMAN, class_index=1))
    with pytest.raises(StoreError) as caught:
        cls_store.submit_label(
            LabelSubmission(b, "ann", LabelSource.HUMAN, class_index=1, replaces_id=label.id)
        )
    assert caught.value.field == "replaces_id"


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"mask": np.zeros((8, 9), np.uint8)}, "mask"),
        ({"mask": np.zeros((8, 8, 1), np.uint8)}, "mask"),
        ({"mask": np.zeros((8, 8), np.float32)}, "mask"),
        ({"mask": np.full((8, 8), -1, np.int16)}, "mask"),
        ({"mask": None}, "mask"),
        ({"mask": [[0] * 8] * 8}, "mask"),
        ({"class_index": 1}, "class_index"),
    ],
)
def test_bad_segmentation_label_writes_nothing(
    seg_store: SQLiteStore, change: dict[str, object], field: str
) -> None:
    (a,) = seg_store.add_items(new_items(1, shape=(8, 8)))
    good = LabelSubmission(a, "ann", LabelSource.HUMAN, mask=np.ones((8, 8), np.uint8))
    before = _table_counts(seg_store)
    with pytest.raises(StoreError) as caught:
        seg_store.submit_label(replace(good, **change))  # type: ignore[arg-type]
    assert caught.value.field == field
    assert _table_counts(seg_store) == before
    seg_store.submit_label(good)


def test_bad_items(cls_store: SQLiteStore) -> None:
    base = new_items(1)[0]
    for change, field in (
        ({"key": ""}, "key"),
        ({"shape": (0, 4)}, "shape"),
        ({"metadata": {"a": 1}}, "metadata"),
    ):
        with pytest.raises(StoreError) as caught:
            cls_store.add_items([replace(base, **change)])
        assert caught.value.field == field
    assert cls_store.list_items() == []
    assert isinstance(base, NewItem)
