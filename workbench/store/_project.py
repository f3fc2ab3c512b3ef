"""A project is a folder: ``project.json`` (readable config), ``workbench.db``, ``checkpoints/``."""

from __future__ import annotations

import json
import os
from pathlib import Path

from workbench.errors import ProjectNotFoundError, StoreError
from workbench.store._records import ProjectConfig
from workbench.store._schema import SCHEMA_VERSION
from workbench.store._sqlite import SQLiteStore

PROJECT_FILE = "project.json"
DB_FILE = "workbench.db"
CHECKPOINTS_DIR = "checkpoints"


def create_project(path: str | Path, config: ProjectConfig) -> SQLiteStore:
    """Create a project folder at ``path`` (new or empty) and return its open store.

    Refuses a folder that already holds a project. ``project.json`` is written last, atomically:
    a folder without it was never a finished project.
    """
    root = Path(path)
    if root.exists() and not root.is_dir():
        raise StoreError("not a folder", path=root)
    for name in (PROJECT_FILE, DB_FILE):
        if (root / name).exists():
            raise StoreError(f"already a workbench project ({name} exists)", path=root)
    root.mkdir(parents=True, exist_ok=True)
    (root / CHECKPOINTS_DIR).mkdir(exist_ok=True)
    store = SQLiteStore.create(root / DB_FILE, config)
    try:
        _write_json_atomic(root / PROJECT_FILE, _project_document(store.config))
    except BaseException:
        store.close()
        raise
    return store


def open_project(path: str | Path) -> SQLiteStore:
    """Open the project in folder ``path``; ProjectNotFoundError naming the folder if none."""
    root = Path(path)
    if not (root / PROJECT_FILE).is_file():
        raise ProjectNotFoundError(
            f"no workbench project here ({PROJECT_FILE} not found)", path=root
        )
    if not (root / DB_FILE).is_file():
        raise StoreError(f"{PROJECT_FILE} is here but {DB_FILE} is missing", path=root)
    return SQLiteStore(root / DB_FILE)


def checkpoints_dir(store: SQLiteStore) -> Path:
    """Where model checkpoints of this project live (created on demand)."""
    folder = store.root / CHECKPOINTS_DIR
    folder.mkdir(exist_ok=True)
    return folder


def _project_document(config: ProjectConfig) -> dict[str, object]:
    return {
        "format": "workbench-project",
        "schema_version": SCHEMA_VERSION,
        "name": config.name,
        "task": config.task.value,
        "classes": list(config.classes),
        "created_at": config.created_at,
        "database": DB_FILE,
    }


def _write_json_atomic(target: Path, document: dict[str, object]) -> None:
    """Write ``target`` via a temporary file, fsync and rename: old or new, never half."""
    tmp = target.with_name(f".{target.name}.tmp")
    with open(tmp, "w", encoding="utf-8") as handle:
        json.dump(document, handle, indent=2)
        handle.write("\n")
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, target)
    dir_fd = os.open(target.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
