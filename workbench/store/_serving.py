"""Choosing and reserving the next item for an annotator (inside a write transaction).

Serving only reads what rounds and scoring jobs wrote; it never waits for a model.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence

# an item is unlabelled while it has no label version other than hidden ground truth
_UNLABELLED = (
    "NOT EXISTS (SELECT 1 FROM label_versions lv "
    "WHERE lv.item_id = i.id AND lv.source <> 'ground_truth')"
)


def reserve_next(
    conn: sqlite3.Connection,
    annotator: str,
    *,
    now: float,
    lease_seconds: float,
    split: str | None,
    exclude: Sequence[int] = (),
) -> int | None:
    """Reserve an item for ``annotator`` until ``now + lease_seconds``; return its id.

    The caller holds the write lock (``BEGIN IMMEDIATE``), so no other process can reserve the
    same item between the choice and the insert. Items in ``exclude`` (e.g. ones the annotator
    just skipped) are passed over.
    """
    excluded = json.dumps([int(i) for i in exclude])
    conn.execute("DELETE FROM assignments WHERE expires_at <= ?", (now,))
    expires = now + lease_seconds
    held = conn.execute(
        f"SELECT a.item_id FROM assignments a JOIN items i ON i.id = a.item_id "
        f"WHERE a.annotator = ? AND {_UNLABELLED} AND (? IS NULL OR i.split = ?) "
        f"AND a.item_id NOT IN (SELECT value FROM json_each(?)) "
        f"ORDER BY a.served_at, a.item_id LIMIT 1",
        (annotator, split, split, excluded),
    ).fetchone()
    if held is not None:
        item_id = int(held["item_id"])
        conn.execute(
            "DELETE FROM assignments WHERE annotator = ? AND item_id <> ?", (annotator, item_id)
        )
        conn.execute("UPDATE assignments SET expires_at = ? WHERE item_id = ?", (expires, item_id))
        return item_id
    conn.execute("DELETE FROM assignments WHERE annotator = ?", (annotator,))
    round_id, model_id, strategy = _priorities(conn)
    row = conn.execute(
        f"SELECT i.id FROM items i "
        f"LEFT JOIN round_items ri ON ri.round_id = ? AND ri.item_id = i.id "
        f"LEFT JOIN scores s ON s.model_version_id = ? AND s.strategy = ? AND s.item_id = i.id "
        f"WHERE {_UNLABELLED} "
        f"AND NOT EXISTS (SELECT 1 FROM assignments a WHERE a.item_id = i.id) "
        f"AND (? IS NULL OR i.split = ?) "
        f"AND i.id NOT IN (SELECT value FROM json_each(?)) "
        f"ORDER BY (ri.position IS NULL), ri.position, (s.score IS NULL), s.score DESC, i.id "
        f"LIMIT 1",
        (round_id, model_id, strategy, split, split, excluded),
    ).fetchone()
    if row is None:
        return None
    item_id = int(row["id"])
    conn.execute(
        "INSERT INTO assignments (item_id, annotator, served_at, expires_at) VALUES (?, ?, ?, ?)",
        (item_id, annotator, now, expires),
    )
    return item_id


def _priorities(conn: sqlite3.Connection) -> tuple[int | None, int | None, str | None]:
    """The latest finished round, the latest ready model, and that model's newest scores."""
    latest_round = conn.execute(
        "SELECT id FROM rounds WHERE status = 'done' ORDER BY finished_at DESC, id DESC LIMIT 1"
    ).fetchone()
    latest_model = conn.execute(
        "SELECT id FROM model_versions WHERE status = 'ready' ORDER BY id DESC LIMIT 1"
    ).fetchone()
    strategy = None
    if latest_model is not None:
        newest = conn.execute(
            "SELECT strategy FROM scores WHERE model_version_id = ? "
            "ORDER BY written_at DESC, strategy LIMIT 1",
            (latest_model["id"],),
        ).fetchone()
        strategy = None if newest is None else newest["strategy"]
    return (
        None if latest_round is None else latest_round["id"],
        None if latest_model is None else latest_model["id"],
        strategy,
    )
