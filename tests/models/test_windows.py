"""Patches for large scans: random training patches, sliding-window inference, and MC dropout
over windows, checked against whole-image passes."""

from __future__ import annotations

import lightning as L
import numpy as np
import pytest
import torch
from torch import Tensor, nn

from workbench.models import (
    ModelError,
    SegmentationModule,
    SlidingWindow,
    build_segmenter,
    iter_mc_predict,
    random_patches,
    window_predict,
)
from workbench.recipes._data import SplitDataModule, TensorItems


def unet(dropout: float = 0.2) -> nn.Module:
    torch.manual_seed(0)
    return build_segmenter(
        "unet", spatial_dims=3, in_channels=1, num_classes=3, dropout=dropout, features=(4, 8, 16)
    )


def test_pointwise_network_over_overlapping_windows_equals_the_whole_image() -> None:
    """Gaussian blending of overlapping windows is a weighted mean: for a 1x1x1 convolution
    every window agrees, so the blend must equal one pass over the whole scan."""
    torch.manual_seed(0)
    conv = nn.Conv3d(2, 3, 1)
    x = torch.randn(2, 2, 23, 37, 19)  # no side a multiple of the window
    with torch.inference_mode():
        whole = conv(x)
        for mode in ("gaussian", "constant"):
            window = SlidingWindow((16, 16, 16), overlap=0.5, batch_size=3, mode=mode)
            out = window_predict(conv, x, window)
            assert out.shape == whole.shape
            torch.testing.assert_close(out, whole, atol=1e-5, rtol=1e-5)


def test_window_smaller_scan_is_padded_and_cropped_back() -> None:
    conv = nn.Conv3d(1, 2, 1)
    x = torch.randn(1, 1, 5, 9, 7)
    with torch.inference_mode():
        out = window_predict(conv, x, SlidingWindow((8, 16, 8)))
        torch.testing.assert_close(out, conv(x), atol=1e-5, rtol=1e-5)


def test_window_settings_and_axes_are_checked() -> None:
    with pytest.raises(ModelError, match="overlap"):
        SlidingWindow((8, 8), overlap=1.0)
    with pytest.raises(ModelError, match="positive"):
        SlidingWindow((8, 0))
    with pytest.raises(ModelError, match="3 spatial dimensions"):
        window_predict(nn.Identity(), torch.zeros(1, 1, 8, 8, 8), SlidingWindow((8, 8)))
    with pytest.raises(ModelError, match="patch size"):
        SegmentationModule(unet(), num_classes=3, spatial_dims=3, patch_size=(8, 8))


def test_random_patches_cut_image_and_mask_at_the_same_place() -> None:
    g = torch.Generator().manual_seed(0)
    x = torch.arange(2 * 20 * 24 * 18, dtype=torch.float32).reshape(2, 1, 20, 24, 18)
    y = (x.long() % 3).to(torch.uint8)  # the mask is a function of the voxel value
    xp, yp = random_patches(x, y, (8, 16, 8), generator=g)
    assert xp.shape == (2, 1, 8, 16, 8) and yp.shape == (2, 1, 8, 16, 8)
    assert torch.equal(yp, (xp.long() % 3).to(torch.uint8))
    for b in range(2):  # a contiguous block of the image: values step as in the original
        start = int(xp[b, 0, 0, 0, 0])
        z, rest = divmod(start - b * 20 * 24 * 18, 24 * 18)
        r, c = divmod(rest, 18)
        assert torch.equal(xp[b, 0], x[b, 0, z : z + 8, r : r + 16, c : c + 8])


def test_keyed_patches_depend_on_the_key_only() -> None:
    x = torch.arange(4 * 40 * 40, dtype=torch.float32).reshape(4, 1, 40, 40)
    x[2:] = x[:2]  # images 2 and 3 repeat images 0 and 1
    y = torch.zeros(4, 1, 40, 40, dtype=torch.uint8)
    keys = torch.tensor([11, 12, 11, 13])
    first, _ = random_patches(x, y, (8, 8), keys=keys)
    torch.manual_seed(5)  # the global generator plays no part
    alone, _ = random_patches(x[2:3], y[2:3], (8, 8), keys=keys[2:3])
    assert torch.equal(first[0], first[2]) and torch.equal(alone[0], first[2])
    assert not torch.equal(first[1], first[3])  # same image, another key, another patch
    with pytest.raises(ModelError, match="3 patch keys for a batch of 4"):
        random_patches(x, y, (8, 8), keys=keys[:3])


def test_foreground_oversampling_puts_foreground_in_every_patch() -> None:
    g = torch.Generator().manual_seed(1)
    x = torch.zeros(16, 1, 64, 64)
    y = torch.zeros(16, 1, 64, 64, dtype=torch.uint8)
    y[:, :, 50:53, 3:6] = 2  # a small structure in a corner
    _, always = random_patches(x, y, (16, 16), foreground_fraction=1.0, generator=g)
    assert all(int(p.max()) == 2 for p in always)
    _, never = random_patches(x, y, (16, 16), foreground_fraction=0.0, generator=g)
    assert sum(int(p.max()) == 2 for p in never) < 8  # uniform patches mostly miss it


def test_random_patches_pad_small_images_with_background() -> None:
    x = torch.ones(1, 1, 6, 10)
    y = torch.ones(1, 1, 6, 10, dtype=torch.long)
    xp, yp = random_patches(x, y, (8, 8))
    assert xp.shape == (1, 1, 8, 8) and int(yp.sum()) == int(xp.sum()) == 6 * 8


def test_mc_over_one_window_equals_the_whole_scan_pass() -> None:
    """With the window as large as the scan, windowed MC dropout is the plain MC pass: the same
    keyed dropout masks per (item, sample)."""
    net = unet()
    x = torch.randn(3, 1, 16, 16, 16)
    ids = np.array([7, 3, 11])
    batch = [{"image": x, "id": torch.as_tensor(ids)}]
    whole = next(iter_mc_predict(net, batch, 4, seed=5)).values
    windowed = next(
        iter_mc_predict(net, batch, 4, seed=5, window=SlidingWindow((16, 16, 16), mode="constant"))
    ).values
    assert windowed.shape == whole.shape == (3, 4, 3, 16, 16, 16)
    torch.testing.assert_close(windowed, whole, atol=1e-5, rtol=1e-5)
    assert not torch.allclose(whole[:, 0], whole[:, 1])  # the samples do differ


def test_mc_over_windows_is_a_distribution_and_independent_of_batching() -> None:
    net = unet()
    x = torch.randn(2, 1, 20, 28, 18)
    ids = torch.tensor([4, 9])
    window = SlidingWindow((16, 16, 16), overlap=0.25, batch_size=2)
    both = next(iter_mc_predict(net, [{"image": x, "id": ids}], 3, seed=1, window=window))
    single = [
        next(
            iter_mc_predict(
                net, [{"image": x[i : i + 1], "id": ids[i : i + 1]}], 3, seed=1, window=window
            )
        ).values
        for i in (1, 0)
    ]
    probs = both.values
    assert probs.shape == (2, 3, 3, 20, 28, 18)
    torch.testing.assert_close(probs.sum(2), torch.ones(2, 3, 20, 28, 18))
    torch.testing.assert_close(probs[1:], single[0])
    torch.testing.assert_close(probs[:1], single[1])


class _Shapes(nn.Module):
    """Records the spatial shapes a network is called with, per mode."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net
        self.seen: dict[bool, set[tuple[int, ...]]] = {True: set(), False: set()}

    def forward(self, x: Tensor) -> Tensor:
        self.seen[self.training].add(tuple(x.shape[2:]))
        out: Tensor = self.net(x)
        return out


def test_module_trains_on_patches_and_validates_whole_scans_over_windows(blobs_3d) -> None:
    images, labels = blobs_3d(6, (24, 24, 24))
    net = _Shapes(unet(dropout=0.0))
    module = SegmentationModule(
        net, num_classes=3, spatial_dims=3, patch_size=(16, 16, 16), sw_batch_size=2
    )
    data = SplitDataModule(
        TensorItems(torch.from_numpy(images[:4, None]), torch.from_numpy(labels[:4, None])),
        TensorItems(torch.from_numpy(images[4:, None]), torch.from_numpy(labels[4:, None])),
        batch_size=2,
        min_steps=2,
        predict_batch_size=2,
        seed=0,
        draws_per_item=3,
    )
    trainer = L.Trainer(
        max_epochs=1,
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        use_distributed_sampler=False,
        num_sanity_val_steps=0,
    )
    trainer.fit(module, data)
    assert trainer.global_step == 4 * 3 // 2  # each scan drawn 3 times, batches of 2
    assert net.seen[True] == {(16, 16, 16)}  # training: random patches only
    assert net.seen[False] == {(16, 16, 16)}  # validation: windows over the 24^3 scans
    assert 0.0 <= float(trainer.callback_metrics["val_dice"]) <= 1.0


def test_patches_hold_with_a_data_module_that_has_its_own_batch_hook(blobs_3d, tmp_path) -> None:
    """Lightning runs only the data module's ``on_after_batch_transfer`` when both define one;
    patch cutting lives in the training step, so `ArrayDataModule` (which has that hook) cannot
    make a patch model train on whole scans."""
    from workbench.models import ArrayDataModule

    images, labels = blobs_3d(6, (24, 24, 24))
    net = _Shapes(unet(dropout=0.0))
    module = SegmentationModule(net, num_classes=3, spatial_dims=3, patch_size=(16, 16, 16))
    data = ArrayDataModule(
        images, labels, task="segmentation", spatial_dims=3, val_fraction=0.34, batch_size=2
    )
    trainer = L.Trainer(
        max_epochs=1,
        accelerator="cpu",
        logger=False,
        default_root_dir=tmp_path,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
    )
    trainer.fit(module, data)
    assert trainer.global_step > 0 and net.seen[True] == {(16, 16, 16)}


class _Cramped(nn.Module):
    """A network whose device holds one row at a time: more raises the CPU allocator's error."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net
        self.widest = 0

    def forward(self, x: Tensor) -> Tensor:
        if x.shape[0] > 1:
            raise RuntimeError(
                "[enforce fail at alloc_cpu.cpp:117] . DefaultCPUAllocator: "
                "can't allocate memory: you tried to allocate 4294967296 bytes."
            )
        self.widest = max(self.widest, x.shape[0])
        out: Tensor = self.net(x)
        return out


def test_out_of_memory_over_windows_halves_samples_then_windows_per_pass() -> None:
    x = torch.randn(1, 1, 20, 20, 20)
    batch = [{"image": x, "id": torch.tensor([3])}]
    window = SlidingWindow((16, 16, 16), batch_size=4)
    expected = next(iter_mc_predict(unet(), batch, 4, seed=2, window=window)).values
    cramped = _Cramped(unet())
    got = next(iter_mc_predict(cramped, batch, 4, seed=2, window=window)).values
    assert cramped.widest == 1
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)


def test_out_of_memory_with_nothing_left_to_halve_names_the_remedy() -> None:
    class Full(nn.Module):
        def forward(self, x: Tensor) -> Tensor:
            raise RuntimeError(
                "DefaultCPUAllocator: can't allocate memory: you tried to allocate 8 bytes."
            )

    batch = [{"image": torch.zeros(1, 1, 16, 16, 16), "id": torch.tensor([0])}]
    with pytest.raises(ModelError, match="out of memory.*smaller patch size"):
        next(iter_mc_predict(Full(), batch, 2, seed=0, window=SlidingWindow((8, 8, 8))))


def test_tta_over_windows_matches_tta_over_the_whole_scan_and_covers_every_voxel() -> None:
    from workbench.models import iter_tta_predict

    net = unet()
    x = torch.randn(2, 1, 16, 16, 16)
    batch = [{"image": x, "id": torch.tensor([1, 2])}]
    one = SlidingWindow((16, 16, 16), mode="constant")
    for samples in (1, 3):
        whole = next(iter_tta_predict(net, batch, samples=samples, seed=0))
        windowed = next(iter_tta_predict(net, batch, samples=samples, seed=0, window=one))
        torch.testing.assert_close(windowed.mean, whole.mean, atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(windowed.uncertainty, whole.uncertainty, atol=1e-5, rtol=1e-5)
    big = torch.randn(1, 1, 20, 28, 20)
    out = next(iter_tta_predict(net, [big], window=SlidingWindow((16, 16, 16))))
    assert out.mean.shape == (1, 3, 20, 28, 20) and out.uncertainty.shape == (1, 20, 28, 20)
    torch.testing.assert_close(out.mean.sum(1), torch.ones(1, 20, 28, 20))


def test_an_epoch_on_patches_draws_each_scan_as_often_as_patches_cover_it() -> None:
    from workbench.recipes._segmentation import patches_per_scan

    assert patches_per_scan((40, 56, 40), (24, 32, 24)) == 5  # 89,600 / 18,432 voxels
    assert patches_per_scan((40, 56, 40), None) == 1
    assert patches_per_scan((16, 16, 16), (16, 16, 16)) == 1
    assert patches_per_scan((8, 8, 8), (16, 16, 16)) == 1  # a patch larger than the scan
