"""Projects with real SQLite stores and small synthetic scans for the annotator tests."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest

from workbench.io._image import ScanImage, affine_from_spacing
from workbench.store import (
    Item,
    ModelStatus,
    NewItem,
    Prediction,
    ProjectConfig,
    SQLiteStore,
    Task,
    create_project,
)


def npy_loader(item: Item) -> ScanImage:
    """Reads the ``.npy`` files these tests write (spacing from the item)."""
    array = np.load(item.source_uri)
    return ScanImage(
        array=array,
        spacing=tuple(item.spacing),
        affine=affine_from_spacing(tuple(item.spacing)),
        modality=item.modality,
    )


def add_scans(
    store: SQLiteStore,
    folder: Path,
    arrays: list[np.ndarray],
    spacing: tuple[float, ...],
    modality: str = "OT",
) -> list[int]:
    folder.mkdir(parents=True, exist_ok=True)
    items = []
    for n, array in enumerate(arrays):
        path = folder / f"scan{n:03d}.npy"
        np.save(path, array)
        items.append(
            NewItem(
                key=f"scan{n:03d}",
                source_uri=str(path),
                content_hash=f"h{n}",
                modality=modality,
                shape=tuple(array.shape),
                spacing=spacing,
            )
        )
    return store.add_items(items)


def ready_model(store: SQLiteStore, predictions: list[Prediction]) -> int:
    model = store.add_model_version("test-model")
    store.add_predictions(model.id, predictions)
    store.update_model_version(model.id, status=ModelStatus.READY)
    return model.id


@pytest.fixture
def clock() -> Callable[[], float]:
    """A fake clock advancing 2 s per reading."""
    now = [1000.0]

    def tick() -> float:
        now[0] += 2.0
        return now[0]

    return tick


@pytest.fixture
def cls_store(tmp_path: Path) -> Iterator[SQLiteStore]:
    """A classification project with 6 gradient images of 32x48 (uint8)."""
    store = create_project(
        tmp_path / "proj",
        ProjectConfig("cls", Task.CLASSIFICATION, ("benign", "malignant", "normal")),
    )
    rng = np.random.default_rng(0)
    add_scans(
        store,
        tmp_path / "scans",
        [rng.integers(0, 255, (32, 48), dtype=np.uint8) for _ in range(6)],
        (1.0, 0.5),
    )
    yield store
    store.close()


@pytest.fixture
def seg_store(tmp_path: Path) -> Iterator[SQLiteStore]:
    """A segmentation project with 3 float images of 40x40 (background, lesion)."""
    store = create_project(
        tmp_path / "proj", ProjectConfig("seg", Task.SEGMENTATION, ("background", "lesion"))
    )
    add_scans(
        store,
        tmp_path / "scans",
        [np.linspace(0, 100, 1600, dtype=np.float32).reshape(40, 40) for _ in range(3)],
        (1.0, 1.0),
    )
    yield store
    store.close()


@pytest.fixture
def vol_store(tmp_path: Path) -> Iterator[SQLiteStore]:
    """A segmentation project with one CT-like volume of 20x24x10 voxels."""
    store = create_project(
        tmp_path / "proj", ProjectConfig("vol", Task.SEGMENTATION, ("background", "organ"))
    )
    vol = np.arange(20 * 24 * 10, dtype=np.int16).reshape(20, 24, 10) - 1000
    add_scans(store, tmp_path / "scans", [vol], (1.0, 1.0, 2.5), modality="CT")
    yield store
    store.close()
