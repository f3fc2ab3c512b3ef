"""Early stopping on several metrics: patience resets while any of them still improves."""

from __future__ import annotations

from pathlib import Path

import lightning as L
import numpy as np
import pytest
import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader, TensorDataset

from workbench.models import (
    ArrayDataModule,
    SegmentationModule,
    build_segmenter,
    fit_and_checkpoint,
    make_trainer,
)
from workbench.models._stopping import EarlyStoppingOnAny
from workbench.recipes import SegmentationRecipe, UNetFactory, train_segmenter

# Per validation epoch: Dice flat from epoch 1 (the plateau before the foreground appears), the
# loss still falling until epoch 6, then both flat.
DICE = [0.30, 0.32, 0.31, 0.32, 0.30, 0.31, 0.32, 0.31, 0.30, 0.31, 0.32, 0.31, 0.30, 0.31]
LOSS = [0.60, 0.58, 0.56, 0.55, 0.54, 0.53, 0.52, 0.53, 0.54, 0.53, 0.55, 0.56, 0.57, 0.58]


class ScriptedMetrics(L.LightningModule):
    """Logs ``DICE[epoch]`` as val_dice and ``loss[epoch]`` as val_loss."""

    def __init__(self, loss: list[float]) -> None:
        super().__init__()
        self.loss = loss
        self.weight = nn.Parameter(torch.zeros(1))

    def training_step(self, batch: list[Tensor], batch_idx: int) -> Tensor:
        return (self.weight - batch[0]).pow(2).mean()

    def validation_step(self, batch: list[Tensor], batch_idx: int) -> None:
        epoch = self.current_epoch
        self.log("val_dice", DICE[epoch])
        self.log("val_loss", self.loss[epoch])

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.1)


def _epochs_run(tmp_path: Path, loss: list[float] = LOSS, **stopping: object) -> int:
    trainer = make_trainer(
        len(DICE),
        root_dir=tmp_path,
        monitor="val_dice",
        mode="max",
        patience=3,
        accelerator="cpu",
        devices=1,
        **stopping,  # type: ignore[arg-type]
    )
    loader = DataLoader(TensorDataset(torch.ones(4, 1)), batch_size=2)
    trainer.fit(ScriptedMetrics(loss), train_dataloaders=loader, val_dataloaders=loader)
    return trainer.current_epoch


def test_patience_waits_while_the_loss_still_improves(tmp_path: Path) -> None:
    # Dice alone: best at epoch 1, stops after 3 epochs without a better one (epochs 0-4 run)
    assert _epochs_run(tmp_path / "dice") == 5
    # Dice or loss: the loss improves until epoch 6, so epochs 0-9 run
    assert _epochs_run(tmp_path / "any", also_improving={"val_loss": "min"}) == 10


def test_non_finite_values_are_no_improvement(tmp_path: Path) -> None:
    nan = [float("nan")] * len(DICE)
    assert _epochs_run(tmp_path, nan, also_improving={"val_loss": "min"}) == 5


def test_state_round_trips() -> None:
    stopping = EarlyStoppingOnAny({"a": "max", "b": "min"}, patience=2)
    stopping.best = {"a": 1.0}
    state = stopping.state_dict()
    restored = EarlyStoppingOnAny({"a": "max", "b": "min"}, patience=2)
    restored.load_state_dict(state)
    assert restored.best == {"a": 1.0} and restored.wait_count == 0


@pytest.mark.parametrize("monitors", [{}, {"val_loss": "lowest"}])
def test_bad_monitors_are_refused(monitors: dict[str, str]) -> None:
    with pytest.raises(ValueError, match="monitor"):
        EarlyStoppingOnAny(monitors, patience=3)  # type: ignore[arg-type]


def _blob_volumes() -> tuple[np.ndarray, np.ndarray]:
    """Four noisy 8^3 volumes ``[4, 1, 8, 8, 8]`` with one bright cube each, its mask."""
    rng = np.random.default_rng(0)
    images = rng.normal(size=(4, 1, 8, 8, 8)).astype(np.float32)
    masks = np.zeros((4, 8, 8, 8), np.int64)
    masks[:, 2:5, 2:5, 2:5] = 1
    images[:, 0, 2:5, 2:5, 2:5] += 3
    return images, masks


class _SeenStopping(L.Callback):
    def __init__(self) -> None:
        self.monitors: list[dict[str, str]] = []

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.monitors = [
            dict(c.monitors)
            for c in trainer.callbacks  # type: ignore[attr-defined]
            if isinstance(c, EarlyStoppingOnAny)
        ]


def test_segmentation_trainings_stop_only_when_neither_val_dice_nor_val_loss_improves(
    tmp_path: Path,
) -> None:
    images, masks = _blob_volumes()
    seen = _SeenStopping()
    recipe = SegmentationRecipe(
        network=UNetFactory((4, 8)),
        divisible_by=2,
        max_epochs=1,
        min_steps_per_epoch=1,
        batch_size=2,
        mc_samples=2,
    )
    trained = train_segmenter(
        recipe,
        images[:3],
        masks[:3],
        images[3:],
        masks[3:],
        num_classes=2,
        seed=0,
        root_dir=tmp_path,
        callbacks=[seen],
    )
    assert seen.monitors == [{"val_dice": "max", "val_loss": "min"}]
    assert trained.metrics["epochs"] == 1


def test_a_segmentation_module_fitted_directly_stops_by_the_same_rule(tmp_path: Path) -> None:
    images, masks = _blob_volumes()
    data = ArrayDataModule(
        images, masks, task="segmentation", spatial_dims=3, val_fraction=0.25, batch_size=2
    )
    seen = _SeenStopping()
    module = SegmentationModule(
        build_segmenter("unet", num_classes=2, features=(4, 8)), num_classes=2, mc_samples=2
    )
    result = fit_and_checkpoint(
        module, data, max_epochs=2, root_dir=tmp_path, accelerator="cpu", callbacks=[seen]
    )
    assert seen.monitors == [{"val_dice": "max", "val_loss": "min"}]
    assert result.metrics["epochs"] == 2
