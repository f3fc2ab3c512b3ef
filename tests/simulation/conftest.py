"""Tiny simulation data and settings shared by the simulation tests."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from workbench.recipes import ClassificationRecipe, SegmentationRecipe, UNetFactory
from workbench.simulation import SimulationData, load_simulation_data


@pytest.fixture(scope="session")
def tiny_recipe() -> ClassificationRecipe:
    """One epoch of two steps, three MC samples."""
    return ClassificationRecipe(
        max_epochs=1, min_steps_per_epoch=2, batch_size=16, mc_samples=3, restarts=0
    )


@pytest.fixture(scope="session")
def breast_tiny(shared_data: Path) -> SimulationData:
    """BreastMNIST: 60 pool, 20 val, 40 test items (fixed seeded subsets)."""
    return load_simulation_data(
        shared_data / "medmnist" / "breastmnist.npz", max_pool=60, max_val=20, max_test=40
    )


@pytest.fixture(scope="session")
def hippocampus_tiny(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Seven hippocampus cases copied into an MSD-layout folder (imagesTr / labelsTr)."""
    root = tmp_path_factory.mktemp("hippo")
    source = shared_data / "hippocampus-msd"
    for sub in ("imagesTr", "labelsTr"):
        (root / sub).mkdir()
        for path in sorted((source / sub).glob("hippocampus_*.nii.gz"))[:7]:
            shutil.copy(path, root / sub / path.name)
    return root


@pytest.fixture(scope="session")
def tiny_seg_recipe() -> SegmentationRecipe:
    """A 4-8-16 residual UNet, one epoch of one step, two MC samples."""
    return SegmentationRecipe(
        network=UNetFactory((4, 8, 16)),
        max_epochs=1,
        min_steps_per_epoch=1,
        batch_size=2,
        mc_samples=2,
    )
