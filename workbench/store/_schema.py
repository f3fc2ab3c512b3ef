"""The database schema, its version, and the migration hook.

SQL is kept close to what PostgreSQL also accepts (JSON as text, ``ON CONFLICT`` upserts); the
immutability triggers are SQLite's and would be rewritten for another backend.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable

from workbench.errors import StoreError

SCHEMA_VERSION = 1

SCHEMA = """
CREATE TABLE meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

CREATE TABLE items (
    id INTEGER PRIMARY KEY AUTOINCREMENT,  -- AUTOINCREMENT: ids are never reused
    key TEXT NOT NULL UNIQUE,
    source_uri TEXT NOT NULL,
    content_hash TEXT NOT NULL,
    modality TEXT NOT NULL,
    shape TEXT NOT NULL,                   -- JSON list of ints
    spacing TEXT NOT NULL,                 -- JSON list of floats
    split TEXT NOT NULL,
    metadata TEXT NOT NULL,                -- JSON object of strings
    created_at REAL NOT NULL
);
CREATE INDEX items_split ON items (split, id);

CREATE TABLE blobs (
    hash TEXT PRIMARY KEY,                 -- sha256 of dtype, shape and raw C-order bytes
    dtype TEXT NOT NULL,                   -- numpy dtype.str, e.g. '|u1', '<f4', '|b1'
    shape TEXT NOT NULL,                   -- JSON list of ints
    codec TEXT NOT NULL,                   -- 'zlib'
    nbytes INTEGER NOT NULL,               -- raw size
    data BLOB NOT NULL
);

CREATE TABLE model_versions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL,
    status TEXT NOT NULL,
    created_at REAL NOT NULL,
    checkpoint TEXT,
    metrics TEXT NOT NULL,                 -- JSON object name -> float
    params TEXT NOT NULL,                  -- JSON object
    error TEXT
);

CREATE TABLE label_versions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    item_id INTEGER NOT NULL REFERENCES items (id),
    annotator TEXT NOT NULL,
    source TEXT NOT NULL,
    class_index INTEGER,
    mask_hash TEXT REFERENCES blobs (hash),
    started_at REAL,
    submitted_at REAL NOT NULL,
    seconds_spent REAL,
    model_version_id INTEGER REFERENCES model_versions (id),
    replaces_id INTEGER REFERENCES label_versions (id),
    comment TEXT,
    CHECK ((class_index IS NULL) <> (mask_hash IS NULL))
);
CREATE INDEX label_versions_item ON label_versions (item_id, id);
CREATE TRIGGER label_versions_no_update BEFORE UPDATE ON label_versions
BEGIN SELECT RAISE(ABORT, 'label versions are immutable'); END;
CREATE TRIGGER label_versions_no_delete BEFORE DELETE ON label_versions
BEGIN SELECT RAISE(ABORT, 'label versions are immutable'); END;

CREATE TABLE model_training_labels (
    model_version_id INTEGER NOT NULL REFERENCES model_versions (id),
    label_version_id INTEGER NOT NULL REFERENCES label_versions (id),
    PRIMARY KEY (model_version_id, label_version_id)
);

CREATE TABLE predictions (
    model_version_id INTEGER NOT NULL REFERENCES model_versions (id),
    item_id INTEGER NOT NULL REFERENCES items (id),
    probs_hash TEXT REFERENCES blobs (hash),
    mask_hash TEXT REFERENCES blobs (hash),
    uncertainty_hash TEXT REFERENCES blobs (hash),
    created_at REAL NOT NULL,
    PRIMARY KEY (model_version_id, item_id)
);

CREATE TABLE scores (
    model_version_id INTEGER NOT NULL REFERENCES model_versions (id),
    strategy TEXT NOT NULL,
    item_id INTEGER NOT NULL REFERENCES items (id),
    score REAL NOT NULL,
    written_at REAL NOT NULL,
    PRIMARY KEY (model_version_id, strategy, item_id)
);

CREATE TABLE rounds (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    strategy TEXT NOT NULL,
    params TEXT NOT NULL,                  -- JSON object
    model_version_id INTEGER REFERENCES model_versions (id),
    status TEXT NOT NULL,
    created_at REAL NOT NULL,
    finished_at REAL,
    error TEXT
);

CREATE TABLE round_items (
    round_id INTEGER NOT NULL REFERENCES rounds (id),
    position INTEGER NOT NULL,
    item_id INTEGER NOT NULL REFERENCES items (id),
    PRIMARY KEY (round_id, position),
    UNIQUE (round_id, item_id)
);

CREATE TABLE flags (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    item_id INTEGER NOT NULL REFERENCES items (id),
    annotator TEXT NOT NULL,
    kind TEXT NOT NULL,
    comment TEXT NOT NULL,
    created_at REAL NOT NULL
);
CREATE INDEX flags_item ON flags (item_id);

CREATE TABLE assignments (
    item_id INTEGER PRIMARY KEY REFERENCES items (id),  -- one live lease per item
    annotator TEXT NOT NULL,
    served_at REAL NOT NULL,
    expires_at REAL NOT NULL
);
CREATE INDEX assignments_annotator ON assignments (annotator);
"""

Migration = Callable[[sqlite3.Connection], None]

# MIGRATIONS[v] upgrades a database at version v to v + 1, inside the caller's transaction.
MIGRATIONS: dict[int, Migration] = {}


def create_schema(conn: sqlite3.Connection) -> None:
    """Create every table in an empty database (inside the caller's transaction)."""
    for statement in _statements(SCHEMA):
        conn.execute(statement)
    conn.execute(
        "INSERT INTO meta (key, value) VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),)
    )


def schema_version(conn: sqlite3.Connection) -> int | None:
    """The stored schema version, or None when the database has no workbench schema."""
    has_meta = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'meta'"
    ).fetchone()
    if has_meta is None:
        return None
    row = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    return None if row is None else int(row[0])


def migrate(conn: sqlite3.Connection, found: int) -> None:
    """Bring a database at version ``found`` up to :data:`SCHEMA_VERSION` (caller's transaction)."""
    if found > SCHEMA_VERSION:
        raise StoreError(
            f"the project database has schema version {found}, newer than this "
            f"workbench supports ({SCHEMA_VERSION}); upgrade workbench"
        )
    for version in range(found, SCHEMA_VERSION):
        step = MIGRATIONS.get(version)
        if step is None:
            raise StoreError(f"no migration from schema version {version} to {version + 1}")
        step(conn)
    conn.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (str(SCHEMA_VERSION),))


def _statements(script: str) -> list[str]:
    """Split the schema into statements (triggers contain ';' and end with 'END;')."""
    out: list[str] = []
    current: list[str] = []
    for line in script.splitlines():
        line = line.split("--", 1)[0].rstrip()
        if not line:
            continue
        current.append(line)
        joined = " ".join(current)
        if sqlite3.complete_statement(joined):
            out.append(joined)
            current = []
    return out
