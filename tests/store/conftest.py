"""Fixtures for the store tests: real projects in a temporary folder."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from store_helpers import CLASSES

from workbench.store import ProjectConfig, SQLiteStore, Task, create_project


@pytest.fixture
def cls_store(tmp_path: Path) -> Iterator[SQLiteStore]:
    """A classification project with three classes and no items."""
    store = create_project(tmp_path / "cls", ProjectConfig("cls", Task.CLASSIFICATION, CLASSES))
    yield store
    store.close()


@pytest.fixture
def seg_store(tmp_path: Path) -> Iterator[SQLiteStore]:
    """A segmentation project (background, tumour) with no items."""
    store = create_project(
        tmp_path / "seg", ProjectConfig("seg", Task.SEGMENTATION, ("background", "tumour"))
    )
    yield store
    store.close()
