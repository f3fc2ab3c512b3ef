"""Project folders: create, open, refuse, project.json, schema version, status summary."""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from contextlib import closing
from pathlib import Path

import pytest
from store_helpers import CLASSES, new_items

from workbench.errors import ProjectNotFoundError, StoreError
from workbench.store import (
    LabelSource,
    LabelSubmission,
    ModelStatus,
    ProjectConfig,
    ProjectStore,
    RoundStatus,
    SQLiteStore,
    Task,
    _schema,
    checkpoints_dir,
    create_project,
    open_project,
    project_status,
)
from workbench.store._schema import SCHEMA_VERSION


def test_create_writes_a_readable_project_folder(tmp_path: Path) -> None:
    config = ProjectConfig("breast", Task.CLASSIFICATION, CLASSES)
    with create_project(tmp_path / "p", config) as store:
        assert store.config.created_at > 0
        assert store.root == tmp_path / "p"
    doc = json.loads((tmp_path / "p" / "project.json").read_text())
    assert doc["name"] == "breast" and doc["task"] == "classification"
    assert doc["classes"] == list(CLASSES) and doc["schema_version"] == SCHEMA_VERSION
    assert (tmp_path / "p" / "workbench.db").is_file()
    assert (tmp_path / "p" / "checkpoints").is_dir()
    assert not list((tmp_path / "p").glob(".*.tmp"))


def test_open_returns_the_same_project(tmp_path: Path) -> None:
    config = ProjectConfig("seg", Task.SEGMENTATION, ("background", "tumour"), created_at=12.5)
    with create_project(tmp_path, config) as store:
        store.add_items(new_items(2))
    with open_project(tmp_path) as store:
        assert store.config == config
        assert [i.key for i in store.list_items()] == ["case-0000", "case-0001"]
        assert checkpoints_dir(store) == tmp_path / "checkpoints"


def test_the_sqlite_store_satisfies_the_protocol(cls_store: SQLiteStore) -> None:
    store: ProjectStore = cls_store  # checked by mypy; here: the attributes exist
    for name in ProjectStore.__dict__:
        if not name.startswith("_"):
            assert hasattr(store, name), name


def test_create_refuses_an_existing_project(tmp_path: Path) -> None:
    config = ProjectConfig("p", Task.CLASSIFICATION, CLASSES)
    create_project(tmp_path, config).close()
    with pytest.raises(StoreError, match="already a workbench project") as caught:
        create_project(tmp_path, config)
    assert caught.value.path == str(tmp_path)


def test_create_refuses_a_bad_config(tmp_path: Path) -> None:
    with pytest.raises(StoreError) as caught:
        create_project(tmp_path / "a", ProjectConfig("p", Task.CLASSIFICATION, ()))
    assert caught.value.field == "classes"
    with pytest.raises(StoreError) as caught:
        create_project(tmp_path / "b", ProjectConfig("p", Task.CLASSIFICATION, ("a", "a")))
    assert caught.value.field == "classes"


def test_open_missing_project_names_the_folder(tmp_path: Path) -> None:
    with pytest.raises(ProjectNotFoundError) as caught:
        open_project(tmp_path / "nowhere")
    assert caught.value.path == str(tmp_path / "nowhere")
    assert caught.value.code == "project_not_found"
    with pytest.raises(ProjectNotFoundError):
        open_project(tmp_path)  # exists, but empty


def test_open_refuses_a_newer_schema(tmp_path: Path) -> None:
    create_project(tmp_path, ProjectConfig("p", Task.CLASSIFICATION, CLASSES)).close()
    with closing(sqlite3.connect(tmp_path / "workbench.db")) as conn, conn:
        conn.execute("UPDATE meta SET value = '999' WHERE key = 'schema_version'")
    with pytest.raises(StoreError, match="newer"):
        open_project(tmp_path)


def test_store_refuses_a_file_that_is_not_a_project(tmp_path: Path) -> None:
    sqlite3.connect(tmp_path / "other.db").close()
    with pytest.raises(StoreError, match="not a workbench"):
        SQLiteStore(tmp_path / "other.db")


def test_status_counts(cls_store: SQLiteStore) -> None:
    ids = cls_store.add_items(new_items(4) + new_items(2, split="test", prefix="t"))
    cls_store.submit_labels(
        [
            LabelSubmission(ids[0], "ann", LabelSource.HUMAN, class_index=0),
            LabelSubmission(ids[1], "ann", LabelSource.IMPORTED, class_index=2),
            LabelSubmission(ids[4], "ann", LabelSource.HUMAN, class_index=2),
            LabelSubmission(ids[2], "oracle", LabelSource.GROUND_TRUTH, class_index=1),
        ]
    )
    cls_store.flag_item(ids[3], "ann", "unclear")
    model = cls_store.add_model_version("resnet")
    cls_store.update_model_version(model.id, status=ModelStatus.READY, metrics={"acc": 0.8})
    run = cls_store.start_round("entropy", {"k": 2}, model.id)
    cls_store.finish_round(run.id, status=RoundStatus.DONE, selected=[ids[3]])
    cls_store.next_item("ann")

    status = project_status(cls_store)
    json.dumps(status)  # JSON-ready
    assert status["items"] == {"total": 6, "by_split": {"test": 2, "train": 4}}
    assert status["labelled"] == {
        "total": 3,
        "by_split": {"test": 1, "train": 2},
        "by_class": {"normal": 1, "benign": 0, "malignant": 2},
        "by_source": {"human": 2, "imported": 1},
    }
    assert status["unlabelled"] == 3
    assert status["ground_truth_pending"] == 1
    assert status["flags"] == {"total": 1, "by_kind": {"unclear": 1}}
    assert status["rounds"]["by_status"] == {"done": 1}
    assert status["rounds"]["latest"]["selected"] == 1
    assert status["model_versions"]["latest_ready"]["metrics"] == {"acc": 0.8}
    assert status["assignments"] == {"live": 1}


def test_migration_hook_upgrades_an_older_schema(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    create_project(tmp_path, ProjectConfig("p", Task.CLASSIFICATION, CLASSES)).close()
    with closing(sqlite3.connect(tmp_path / "workbench.db")) as conn, conn:
        conn.execute("UPDATE meta SET value = '0' WHERE key = 'schema_version'")
    ran: list[int] = []
    monkeypatch.setitem(_schema.MIGRATIONS, 0, lambda conn: ran.append(0))
    open_project(tmp_path).close()
    assert ran == [0]
    with closing(sqlite3.connect(tmp_path / "workbench.db")) as conn:
        version = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    assert version == (str(SCHEMA_VERSION),)
    open_project(tmp_path).close()
    assert ran == [0]  # already current: not run again


def test_a_write_waits_for_another_writer(cls_store: SQLiteStore) -> None:
    (a,) = cls_store.add_items(new_items(1))
    other = sqlite3.connect(cls_store.path, isolation_level=None, check_same_thread=False)
    other.execute("BEGIN IMMEDIATE")  # another process holds the write lock
    timer = threading.Timer(0.3, lambda: other.execute("COMMIT"))
    timer.start()
    started = time.perf_counter()
    label = cls_store.submit_label(LabelSubmission(a, "ann", LabelSource.HUMAN, class_index=0))
    assert time.perf_counter() - started >= 0.25
    assert cls_store.current_label(a) == label
    timer.join()
    other.close()


def test_database_errors_surface_as_store_errors(cls_store: SQLiteStore) -> None:
    (a,) = cls_store.add_items(new_items(1))
    cls_store.submit_label(LabelSubmission(a, "ann", LabelSource.HUMAN, class_index=0))
    with pytest.raises(StoreError, match="immutable"), cls_store._db.write() as conn:
        conn.execute("UPDATE label_versions SET class_index = 1")
    assert cls_store.current_label(a).class_index == 0  # type: ignore[union-attr]
