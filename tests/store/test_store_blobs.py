"""Masks as content-addressed blobs: exact round trips and deduplication."""

from __future__ import annotations

import sqlite3
from contextlib import closing

import numpy as np
import pytest
from store_helpers import new_items

from workbench.errors import StoreError
from workbench.store import LabelSource, LabelSubmission, SQLiteStore
from workbench.store._blobs import array_hash


def _blob_count(store: SQLiteStore) -> int:
    with closing(sqlite3.connect(store.path)) as conn, conn:
        return int(conn.execute("SELECT COUNT(*) FROM blobs").fetchone()[0])


@pytest.mark.parametrize("shape", [(64, 48), (5, 32, 24)])
@pytest.mark.parametrize("dtype", [np.uint8, np.bool_, np.uint16, np.int32])
def test_mask_round_trip_is_exact(
    seg_store: SQLiteStore, shape: tuple[int, ...], dtype: type
) -> None:
    (item,) = seg_store.add_items(new_items(1, shape=shape))
    rng = np.random.default_rng(0)
    mask: np.ndarray = (rng.random(shape) > 0.7).astype(dtype)
    label = seg_store.submit_label(LabelSubmission(item, "ann", LabelSource.HUMAN, mask=mask))
    back = seg_store.get_mask(label.mask_hash or "")
    assert back.dtype == mask.dtype and back.shape == mask.shape
    assert np.array_equal(back, mask)
    back[0] = 1  # writable, and a copy
    assert np.array_equal(seg_store.get_mask(label.mask_hash or ""), mask)


def test_non_contiguous_mask_is_stored_as_its_values(seg_store: SQLiteStore) -> None:
    (item,) = seg_store.add_items(new_items(1, shape=(16, 16)))
    base = np.arange(32 * 16, dtype=np.uint8).reshape(16, 32) % 2
    view = base[:, ::2].T  # strided, Fortran-ordered view
    label = seg_store.submit_label(LabelSubmission(item, "ann", LabelSource.HUMAN, mask=view))
    assert np.array_equal(seg_store.get_mask(label.mask_hash or ""), view)
    assert label.mask_hash == array_hash(np.ascontiguousarray(view))


def test_equal_masks_are_stored_once(seg_store: SQLiteStore) -> None:
    a, b = seg_store.add_items(new_items(2, shape=(32, 32)))
    mask = np.zeros((32, 32), np.uint8)
    mask[4:9, 4:9] = 1
    first = seg_store.submit_label(LabelSubmission(a, "ann", LabelSource.HUMAN, mask=mask))
    second = seg_store.submit_label(LabelSubmission(b, "ann", LabelSource.HUMAN, mask=mask.copy()))
    assert first.mask_hash == second.mask_hash
    assert _blob_count(seg_store) == 1
    seg_store.submit_label(LabelSubmission(a, "ann", LabelSource.HUMAN, mask=mask.astype(bool)))
    assert _blob_count(seg_store) == 2  # same values, other dtype: another blob


def test_hash_depends_on_dtype_and_shape() -> None:
    values = np.zeros(12, np.uint8)
    assert array_hash(values.reshape(3, 4)) != array_hash(values.reshape(4, 3))
    assert array_hash(values) != array_hash(values.astype(bool))
    assert array_hash(values) == array_hash(values.copy())


def test_masks_are_compressed(seg_store: SQLiteStore) -> None:
    (item,) = seg_store.add_items(new_items(1, shape=(512, 512)))
    mask = np.zeros((512, 512), np.uint8)
    mask[100:200, 150:300] = 1
    seg_store.submit_label(LabelSubmission(item, "ann", LabelSource.HUMAN, mask=mask))
    with closing(sqlite3.connect(seg_store.path)) as conn, conn:
        stored, raw = conn.execute("SELECT length(data), nbytes FROM blobs").fetchone()
    assert raw == 512 * 512 and stored < raw / 50


def test_unknown_mask_hash(seg_store: SQLiteStore) -> None:
    with pytest.raises(StoreError) as caught:
        seg_store.get_mask("0" * 64)
    assert caught.value.field == "mask_hash"
