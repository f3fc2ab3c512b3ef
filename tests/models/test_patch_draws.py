"""Patch training from scans of their own shapes: patches cut per (seed, scan, draw), aligned with
their masks, foreground oversampled, scans kept once as given (no padded or float copy)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch

from workbench.models import ModelError
from workbench.recipes import SegmentationRecipe, UNetFactory, train_segmenter
from workbench.recipes._scans import PatchDraws, ScanList

ROI = (8, 8, 8)


def scans(
    shapes: list[tuple[int, int, int]], seed: int = 0
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Random uint8 images (a patch of noise occurs once, so it can be located) and one small
    blob of foreground each."""
    rng = np.random.default_rng(seed)
    images, masks = [], []
    for shape in shapes:
        images.append(rng.integers(0, 256, (1, *shape), dtype=np.uint8))  # [1, *S]
        mask = np.zeros(shape, np.uint8)
        corner = [int(rng.integers(0, s - 2)) for s in shape]
        mask[tuple(slice(c, c + 2) for c in corner)] = 1
        masks.append(mask)
    return images, masks


def locate(image: np.ndarray, patch: np.ndarray) -> tuple[int, ...]:
    """Where ``patch`` [*roi] sits inside ``image`` [*S] (the unique exact match)."""
    found = [
        start
        for start in np.ndindex(*(s - r + 1 for s, r in zip(image.shape, patch.shape, strict=True)))
        if np.array_equal(
            image[tuple(slice(a, a + r) for a, r in zip(start, patch.shape, strict=True))], patch
        )
    ]
    assert len(found) == 1
    return found[0]


def test_a_patch_and_its_mask_are_cut_at_the_same_place() -> None:
    images, masks = scans([(20, 16, 12)])
    draws = PatchDraws(ScanList(images, masks, 3), ROI, seed=1)
    for draw in range(6):
        x, y = draws.patch(0, draw)
        assert x.shape == (1, *ROI) and y.shape == (1, *ROI)
        assert x.dtype == y.dtype == torch.uint8  # as the scan: small to hand over from a worker
        pixels = x[0].numpy()
        start = locate(images[0][0], pixels)
        box = tuple(slice(a, a + r) for a, r in zip(start, ROI, strict=True))
        np.testing.assert_array_equal(y[0].numpy(), masks[0][box])


def test_a_draw_is_the_same_in_any_batch_and_draws_differ() -> None:
    images, masks = scans([(20, 16, 12), (14, 18, 10)])
    draws = PatchDraws(ScanList(images, masks, 3), ROI, seed=3)
    alone = draws.__getitems__([(1, 7)])
    together = draws.__getitems__([(0, 6), (1, 7)])
    assert torch.equal(alone["image"][0], together["image"][1])
    assert together["id"].tolist() == [0, 1] and together["draw"].tolist() == [6, 7]
    again = PatchDraws(ScanList(images, masks, 3), ROI, seed=3).__getitems__([(1, 7)])
    assert torch.equal(alone["image"], again["image"])  # keyed, not drawn from a global RNG
    places = {locate(images[0][0], draws.patch(0, d)[0][0].numpy()) for d in range(10)}
    assert len(places) > 3
    other_seed = PatchDraws(ScanList(images, masks, 3), ROI, seed=4).patch(1, 7)[0]
    assert not torch.equal(other_seed, alone["image"][0])


def test_foreground_oversampling_puts_foreground_in_every_patch() -> None:
    images, masks = scans([(40, 40, 40)])  # a 2x2x2 blob in 64,000 voxels
    draws = PatchDraws(ScanList(images, masks, 3), ROI, seed=0, foreground_fraction=1.0)
    assert all(bool(draws.patch(0, d)[1].any()) for d in range(20))
    uniform = PatchDraws(ScanList(images, masks, 3), ROI, seed=0, foreground_fraction=0.0)
    assert sum(bool(uniform.patch(0, d)[1].any()) for d in range(20)) < 10


def test_scans_smaller_than_a_patch_are_padded_with_background() -> None:
    images, masks = scans([(6, 12, 4)])
    x, y = PatchDraws(ScanList(images, masks, 3), ROI, seed=0).patch(0, 0)
    assert x.shape == (1, *ROI) and y.shape == (1, *ROI)
    assert float(x[0, 0].abs().sum()) == 0.0  # axis 0: 6 of 8, one plane of padding each side
    assert int(y.sum()) <= int(masks[0].sum())


def test_scans_are_kept_once_as_given_even_memory_mapped(tmp_path: Path) -> None:
    images, masks = scans([(20, 16, 12)])
    np.save(tmp_path / "scan.npy", images[0])
    mapped = np.load(tmp_path / "scan.npy", mmap_mode="r")
    listed = ScanList([mapped], masks, 3)
    assert listed.images[0] is mapped  # no copy, no float conversion of the whole scan
    assert listed[0]["label"].dtype == torch.uint8  # a validation mask is not widened to int64
    x, _ = PatchDraws(listed, ROI, seed=0).patch(0, 0)
    assert x.dtype == torch.uint8  # only the patch is copied, still as uint8
    floats = PatchDraws(ScanList([images[0] / 255.0], masks, 3), ROI, seed=0).patch(0, 0)[0]
    assert floats.dtype == torch.float32  # other scans' patches come as float
    np.testing.assert_allclose(floats.numpy() * 255, x.numpy(), atol=1e-4)  # same place


def test_bad_scans_name_the_field() -> None:
    images, masks = scans([(20, 16, 12)])
    with pytest.raises(ModelError, match="mask 0 has shape"):
        ScanList(images, [masks[0][:-1]], 3)
    with pytest.raises(ModelError, match="patch_size|axes"):
        PatchDraws(ScanList(images, masks, 3), (8, 8), seed=0)


def test_train_segmenter_on_scans_of_different_shapes_without_padding(tmp_path: Path) -> None:
    images, masks = scans([(20, 16, 12), (14, 18, 10), (16, 16, 16), (12, 20, 14)])
    seen: list[tuple[int, ...]] = []
    recipe = SegmentationRecipe(
        network=UNetFactory((4, 8)),
        divisible_by=2,
        patch_size=ROI,
        max_epochs=1,
        min_steps_per_epoch=2,
        batch_size=2,
        predict_batch_size=2,
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
    )
    net = trained.module.net
    assert isinstance(net, torch.nn.Module)
    net.register_forward_hook(lambda m, i, o: seen.append(tuple(i[0].shape[2:])))
    from workbench.recipes import iter_segmentation_probs

    ((_, probs),) = iter_segmentation_probs(trained, images[3][None].astype(np.float32) / 255)
    assert probs.shape == (1, 2, 2, 12, 20, 14) and seen and set(seen) == {ROI}
    assert np.isfinite(trained.metrics["val_dice"])


def test_worker_processes_cut_the_same_batches_and_train_the_same_model(tmp_path: Path) -> None:
    from workbench.recipes._data import SplitDataModule

    images, masks = scans([(20, 16, 12), (14, 18, 10), (16, 16, 16), (12, 20, 14)])
    draws = PatchDraws(ScanList(images[:3], masks[:3], 3), ROI, seed=5)
    val = ScanList(images[3:], masks[3:], 3)

    def epoch(workers: int) -> list[dict[str, torch.Tensor]]:
        data = SplitDataModule(
            draws,
            val,
            batch_size=2,
            min_steps=3,
            predict_batch_size=1,
            seed=5,
            draws_per_item=2,
            workers=workers,
        )
        return list(data.train_dataloader())

    alone, with_workers = epoch(0), epoch(2)
    assert len(alone) == len(with_workers) == 3
    for a, b in zip(alone, with_workers, strict=True):
        assert set(a) == set(b) and all(torch.equal(a[k], b[k]) for k in a)

    recipe = SegmentationRecipe(
        network=UNetFactory((4, 8)),
        divisible_by=2,
        patch_size=ROI,
        max_epochs=2,
        min_steps_per_epoch=2,
        batch_size=2,
        predict_batch_size=2,
        mc_samples=2,
        loader_workers=0,
    )
    weights = [
        train_segmenter(
            dataclasses.replace(recipe, loader_workers=workers),
            images[:3],
            masks[:3],
            images[3:],
            masks[3:],
            num_classes=2,
            seed=0,
            root_dir=tmp_path / str(workers),
        ).state_dict
        for workers in (0, 2)
    ]
    assert all(torch.equal(weights[0][k], weights[1][k]) for k in weights[0])


def test_patches_are_cut_in_workers_only_when_a_gpu_trains(monkeypatch: pytest.MonkeyPatch) -> None:
    from workbench.recipes._segmentation import patch_workers

    recipe = SegmentationRecipe(patch_size=(16, 16, 16))
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert patch_workers(recipe) == 0  # the CPU's cores train
    assert patch_workers(dataclasses.replace(recipe, loader_workers=3)) == 3  # asked for
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr("os.cpu_count", lambda: 16)
    assert patch_workers(recipe) == 4
    monkeypatch.setattr("os.cpu_count", lambda: 2)
    assert patch_workers(recipe) == 1  # one core left for the training process


def test_uint8_patches_become_the_floats_as_images_makes_in_the_training_step() -> None:
    from workbench.models import SegmentationModule
    from workbench.recipes._data import as_images

    raw = np.random.default_rng(0).integers(0, 256, (2, 1, 8, 8, 8), dtype=np.uint8)
    module = SegmentationModule(
        UNetFactory((4, 8))(spatial_dims=3, in_channels=1, num_classes=2), num_classes=2
    )
    batch = module.training_batch(
        {"image": torch.from_numpy(raw), "label": torch.zeros(2, 1, 8, 8, 8, dtype=torch.uint8)}
    )
    assert batch["image"].dtype == torch.float32
    assert torch.equal(batch["image"], as_images(raw, 3))  # one scaling rule, [0, 1]
