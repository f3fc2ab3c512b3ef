"""Fixtures for the model tests: tiny BreastMNIST slices and synthetic 3D volumes."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import lightning as L
import numpy as np
import pytest
import torch


@pytest.fixture(autouse=True)
def _quiet_and_small() -> None:
    torch.set_num_threads(1)
    L.seed_everything(0, verbose=False)


@pytest.fixture(scope="session")
def breast(shared_data: Path) -> dict[str, np.ndarray]:
    """BreastMNIST arrays (28x28 uint8, labels (N, 1)) from ../shared/data."""
    with np.load(shared_data / "medmnist" / "breastmnist.npz") as data:
        return {key: data[key] for key in data.files}


Volumes = Callable[[int], tuple[np.ndarray, np.ndarray]]


@pytest.fixture
def blobs_3d() -> Volumes:
    """Makes synthetic 3D volumes with masks: ``blobs_3d(n) -> (images, labels)``."""
    return _blobs_3d


def _blobs_3d(
    n: int, shape: tuple[int, int, int] = (16, 16, 16), seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Synthetic volumes with a bright ball (label 1) and a dimmer box (label 2)."""
    rng = np.random.default_rng(seed)
    zz, yy, xx = np.indices(shape)
    images = np.empty((n, *shape), np.float32)
    labels = np.zeros((n, *shape), np.uint8)
    for i in range(n):
        c = rng.integers(5, 11, size=3)
        ball = (zz - c[0]) ** 2 + (yy - c[1]) ** 2 + (xx - c[2]) ** 2 <= 9
        labels[i][ball] = 1
        labels[i, 1:4, 1:4, 1:4] = 2
        images[i] = rng.normal(0, 0.1, shape) + labels[i] * 0.5
    return images, labels
