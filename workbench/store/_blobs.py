"""Content-addressed, zlib-compressed arrays (masks, probability and uncertainty maps)."""

from __future__ import annotations

import hashlib
import json
import sqlite3
import zlib

import numpy as np

from workbench.errors import StoreError

ZLIB_LEVEL = 3  # masks are mostly runs of one value; higher levels cost time, gain little


def _raw(array: np.ndarray) -> memoryview:
    """The bytes of a C-contiguous array, without copying."""
    return array.reshape(-1).view(np.uint8).data


def array_hash(array: np.ndarray) -> str:
    """sha256 over dtype, shape and the raw C-order bytes: equal arrays get equal hashes."""
    array = np.ascontiguousarray(array)
    digest = hashlib.sha256()
    digest.update(f"{array.dtype.str}|{json.dumps(list(array.shape))}|".encode())
    digest.update(_raw(array))
    return digest.hexdigest()


def put_array(conn: sqlite3.Connection, array: np.ndarray, *, field: str) -> str:
    """Store ``array`` (once per content) inside the caller's transaction; return its hash."""
    if array.dtype.hasobject or array.dtype.fields is not None:
        raise StoreError(f"arrays of dtype {array.dtype} cannot be stored", field=field)
    array = np.ascontiguousarray(array)
    key = array_hash(array)
    exists = conn.execute("SELECT 1 FROM blobs WHERE hash = ?", (key,)).fetchone()
    if exists is None:
        conn.execute(
            "INSERT INTO blobs (hash, dtype, shape, codec, nbytes, data) VALUES (?, ?, ?, ?, ?, ?)",
            (
                key,
                array.dtype.str,
                json.dumps(list(array.shape)),
                "zlib",
                array.nbytes,
                zlib.compress(_raw(array), ZLIB_LEVEL),
            ),
        )
    return key


def get_array(conn: sqlite3.Connection, key: str) -> np.ndarray:
    """The exact array stored under ``key`` (same dtype, shape and values; writable)."""
    row = conn.execute(
        "SELECT dtype, shape, codec, data FROM blobs WHERE hash = ?", (key,)
    ).fetchone()
    if row is None:
        raise StoreError(f"no stored array with hash {key!r}", field="mask_hash")
    if row["codec"] != "zlib":
        raise StoreError(f"unknown blob codec {row['codec']!r}", field="mask_hash")
    raw = zlib.decompress(row["data"])
    shape = tuple(json.loads(row["shape"]))
    return np.frombuffer(bytearray(raw), dtype=np.dtype(row["dtype"])).reshape(shape)
