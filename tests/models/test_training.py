from __future__ import annotations

from pathlib import Path
from typing import Any, cast

import lightning as L
import numpy as np
import pytest
import torch

from workbench.models import (
    ArrayDataModule,
    ClassificationModule,
    ModelError,
    SegmentationModule,
    build_segmenter,
    fit_and_checkpoint,
    make_trainer,
    small_cnn,
)


def _breast_module(breast: dict[str, np.ndarray], n: int = 400) -> ArrayDataModule:
    return ArrayDataModule(
        breast["train_images"][:n],
        breast["train_labels"][:n],
        pool_images=breast["test_images"][:64],
        val_fraction=0.25,
        batch_size=32,
        seed=0,
    )


@pytest.mark.shared_data
def test_breastmnist_training_beats_chance_and_checkpoint_reloads(
    breast: dict[str, np.ndarray], tmp_path: Path
) -> None:
    data = _breast_module(breast)
    data.setup("fit")
    module = ClassificationModule(small_cnn(), class_weights=data.class_weights(), lr=2e-3)
    result = fit_and_checkpoint(module, data, max_epochs=4, root_dir=tmp_path)
    assert result.checkpoint_path.is_file()
    assert result.metrics["best_val_auc"] > 0.65, result.metrics
    assert not Path("lightning_logs").exists()
    restored = ClassificationModule.load_from_checkpoint(result.checkpoint_path, net=small_cnn())
    assert restored.hparams["class_weights"] == pytest.approx(data.class_weights())
    out = L.Trainer(logger=False, enable_progress_bar=False, accelerator="cpu").predict(
        restored, datamodule=data
    )
    assert out is not None
    batch = cast(dict[str, Any], out[0])  # one predict loader: a list of per-batch dicts
    assert batch["probs"].shape == (64, 20, 2)


@pytest.mark.shared_data
def test_split_is_seeded_and_stable_when_items_are_added(breast: dict[str, np.ndarray]) -> None:
    small, large = _breast_module(breast, 200), _breast_module(breast, 400)
    small.setup("fit")
    large.setup("fit")
    assert small.val_set is not None and large.val_set is not None
    assert set(small.val_set.ids) <= set(large.val_set.ids)
    assert 0.15 < len(large.val_set) / 400 < 0.35


@pytest.mark.shared_data
def test_data_that_does_not_fit_the_model_raises_model_error(
    breast: dict[str, np.ndarray], tmp_path: Path
) -> None:
    data = _breast_module(breast, 64)
    for module, match in [
        (ClassificationModule(small_cnn(in_channels=3), in_channels=3), "3 channel"),
        (ClassificationModule(small_cnn(spatial_dims=3), spatial_dims=3), "3D images"),
        (ClassificationModule(small_cnn(num_classes=3)), "outputs 3 classes"),
        (ClassificationModule(small_cnn(), num_classes=1), "labels must lie"),
    ]:
        with pytest.raises(ModelError, match=match):
            fit_and_checkpoint(module, data, max_epochs=1, root_dir=tmp_path)


@pytest.mark.shared_data
def test_nan_loss_is_caught_naming_the_step(breast: dict[str, np.ndarray], tmp_path: Path) -> None:
    images = breast["train_images"][:64].astype(np.float32)
    images[:10] = np.nan
    data = ArrayDataModule(
        images, breast["train_labels"][:64], val_fraction=0.2, augment=False, batch_size=64
    )
    module = ClassificationModule(small_cnn())
    with pytest.raises(ModelError, match="training loss is nan at global step 0"):
        fit_and_checkpoint(module, data, max_epochs=1, root_dir=tmp_path)


def test_out_of_memory_becomes_model_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, blobs_3d: Any
) -> None:
    images, labels = blobs_3d(4)
    data = ArrayDataModule(images, labels, task="segmentation", spatial_dims=3, batch_size=2)

    def fail(*args: object, **kwargs: object) -> None:
        raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2 GiB")

    trainer = make_trainer(1, root_dir=tmp_path)
    monkeypatch.setattr(trainer, "fit", fail)
    module = SegmentationModule(build_segmenter("unet", features=(8, 16)))
    with pytest.raises(ModelError, match="out of memory.*batch size 2; try 1"):
        fit_and_checkpoint(module, data, trainer=trainer)


def test_segmentation_trains_on_tiny_volumes(tmp_path: Path, blobs_3d: Any) -> None:
    images, labels = blobs_3d(12)
    data = ArrayDataModule(
        images,
        labels,
        ids=[f"case{i}" for i in range(12)],
        pool_images=images[:2],
        task="segmentation",
        spatial_dims=3,
        roi_size=(16, 16, 16),
        val_fraction=0.25,
        batch_size=4,
    )
    net = build_segmenter("unet", num_classes=3, features=(8, 16, 32), dropout=0.1)
    module = SegmentationModule(net, num_classes=3, lr=1e-2, mc_samples=2)
    result = fit_and_checkpoint(module, data, max_epochs=3, root_dir=tmp_path)
    assert 0.0 <= result.metrics["val_dice"] <= 1.0
    out = L.Trainer(logger=False, enable_progress_bar=False, accelerator="cpu").predict(
        module, datamodule=data
    )
    assert out is not None
    batch = cast(dict[str, Any], out[0])  # one predict loader: a list of per-batch dicts
    assert batch["probs"].shape == (2, 2, 3, 16, 16, 16)
    assert list(batch["id"]) == [0, 1]
