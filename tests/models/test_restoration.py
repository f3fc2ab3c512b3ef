"""The self-supervised start for segmenters: restoring painted-over boxes, reading no label."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from workbench.models import ModelError, small_cnn
from workbench.recipes import (
    SegmentationRecipe,
    UNetFactory,
    load_pretrained,
    paint_boxes,
    pretrain_restoration,
    train_segmenter,
)

NET = UNetFactory((4, 8, 16), dropout=0.0)


def blobs(n: int, side: int = 16, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``n`` images of one bright disk at a random place, and its mask."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:side, :side]
    images, masks = [], []
    for _ in range(n):
        cy, cx = rng.uniform(side * 0.3, side * 0.7, 2)
        mask = np.hypot(yy - cy, xx - cx) < side * 0.2
        images.append(mask * 2.0 + rng.normal(0, 0.1, (side, side)))
        masks.append(mask)
    return np.array(images, np.float32), np.array(masks, np.int64)


def test_boxes_are_painted_over_and_the_rest_keeps_its_values() -> None:
    x = torch.randn(3, 1, 32, 32)
    painted = paint_boxes(x, torch.Generator().manual_seed(0))
    assert painted.shape == x.shape and not torch.equal(painted, x)
    changed = ((painted - x).abs() > 0.5).float().mean(dim=(1, 2, 3))
    # 1-3 boxes of 15-40% of each side: 2% to 48% of an image; the light noise moves no voxel
    # by half a standard deviation (5 sigma of the 0.1 noise)
    assert bool((changed > 0.005).all()) and bool((changed < 0.6).all())
    again = paint_boxes(x, torch.Generator().manual_seed(0))
    assert torch.equal(painted, again)
    assert not torch.equal(painted, paint_boxes(x, torch.Generator().manual_seed(1)))


def _restoration_error(state: dict[str, torch.Tensor], images: np.ndarray) -> float:
    net = NET(spatial_dims=2, in_channels=1, num_classes=1)
    net.load_state_dict(state)
    x = torch.from_numpy(images[:, None])
    with torch.no_grad():
        return float(torch.nn.functional.mse_loss(net(paint_boxes(x, torch.Generator())), x))


def test_pretraining_learns_to_restore_deterministically_and_keeps_the_global_state() -> None:
    images, _ = blobs(24)
    torch.manual_seed(5)
    before = torch.get_rng_state()
    untrained = pretrain_restoration(images, NET, spatial_dims=2, seed=0, steps=1)
    trained = pretrain_restoration(images, NET, spatial_dims=2, seed=0, steps=150)
    assert torch.equal(torch.get_rng_state(), before)
    assert _restoration_error(trained, images) < 0.5 * _restoration_error(untrained, images)
    again = pretrain_restoration(images, NET, spatial_dims=2, seed=0, steps=150)
    assert all(torch.equal(trained[k], again[k]) for k in trained)
    other = pretrain_restoration(images, NET, spatial_dims=2, seed=1, steps=150)
    assert not all(torch.equal(trained[k], other[k]) for k in trained)


def test_every_weight_but_the_output_layers_starts_the_segmenter() -> None:
    state = pretrain_restoration(blobs(4)[0], NET, spatial_dims=2, seed=0, steps=2)
    segmenter = NET(spatial_dims=2, in_channels=1, num_classes=3)
    own = segmenter.state_dict()
    loaded = load_pretrained(segmenter, state)
    differing = [k for k in own if own[k].shape != state[k].shape]
    assert differing and loaded == len(own) - len(differing)
    after = segmenter.state_dict()
    assert all(torch.equal(after[k], state[k]) for k in own if k not in differing)


def test_a_state_of_another_network_is_refused_by_name() -> None:
    other = small_cnn(in_channels=1, num_classes=2).state_dict()
    with pytest.raises(ModelError, match="fits none of") as error:
        load_pretrained(NET(spatial_dims=2, in_channels=1, num_classes=3), other)
    assert error.value.field == "pretrained_state"
    images, masks = blobs(6)
    recipe = SegmentationRecipe(
        network=NET, spatial_dims=2, flip_axes=(0, 1), max_epochs=1, min_steps_per_epoch=1
    )
    with pytest.raises(ModelError, match="fits none of"):
        train_segmenter(recipe, images, masks, num_classes=2, pretrained_state=other)


def test_a_segmenter_started_from_restoration_trains_otherwise_than_a_fresh_one() -> None:
    images, masks = blobs(8)
    state = pretrain_restoration(images, NET, spatial_dims=2, seed=0, steps=5)
    recipe = SegmentationRecipe(
        network=NET, spatial_dims=2, flip_axes=(0, 1), max_epochs=1, min_steps_per_epoch=1
    )
    fresh = train_segmenter(recipe, images, masks, num_classes=2, seed=0)
    started = train_segmenter(recipe, images, masks, num_classes=2, seed=0, pretrained_state=state)
    again = train_segmenter(recipe, images, masks, num_classes=2, seed=0, pretrained_state=state)
    key = next(iter(fresh.state_dict))
    assert not torch.equal(fresh.state_dict[key], started.state_dict[key])
    assert all(torch.equal(started.state_dict[k], again.state_dict[k]) for k in started.state_dict)


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ModelError, match="at least 1"):
        pretrain_restoration(blobs(2)[0], NET, spatial_dims=2, steps=0)
    with pytest.raises(ModelError, match="no scans"):
        pretrain_restoration(np.zeros((0, 16, 16), np.float32), NET, spatial_dims=2)
