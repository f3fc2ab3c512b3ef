"""Self-supervised (SimCLR) features for a cold start: they tell kinds of image apart with no
label, deterministically, and leave the caller's random state alone."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from workbench.recipes import contrastive_features
from workbench.recipes._contrastive import nt_xent


def disks_and_rings(n: int, side: int = 20, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``n`` filled disks then ``n`` rings of one radius, at random places, with noise."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:side, :side]
    images = []
    for ring in (False, True):
        for _ in range(n):
            cy, cx = rng.uniform(side * 0.35, side * 0.65, 2)
            r = np.hypot(yy - cy, xx - cx)
            shape = (r < side * 0.25) & ((r > side * 0.14) if ring else True)
            images.append(np.clip(shape * 200.0 + rng.normal(0, 20, (side, side)), 0, 255))
    return np.array(images, np.uint8), np.repeat([0, 1], n)


def nearest_neighbour_agreement(features: np.ndarray, kinds: np.ndarray) -> float:
    similarity = features @ features.T
    np.fill_diagonal(similarity, -np.inf)
    return float(np.mean(kinds[similarity.argmax(axis=1)] == kinds))


def test_features_tell_disks_from_rings_without_labels() -> None:
    images, kinds = disks_and_rings(20)
    features = contrastive_features(images, seed=0, steps=80, batch_size=40)
    assert features.shape == (40, 128) and features.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(features, axis=1), 1, rtol=1e-5)
    assert nearest_neighbour_agreement(features, kinds) >= 0.9
    # features that say nothing (all alike) would score 0.5 here
    assert nearest_neighbour_agreement(np.ones_like(features), kinds) == 0.5


def test_deterministic_for_a_seed_and_the_global_state_is_kept() -> None:
    images, _ = disks_and_rings(4, side=12)
    torch.manual_seed(123)
    before = torch.get_rng_state()
    deterministic = torch.are_deterministic_algorithms_enabled()
    a = contrastive_features(images, seed=1, steps=3, batch_size=4)
    assert torch.equal(torch.get_rng_state(), before)
    assert torch.are_deterministic_algorithms_enabled() == deterministic  # restored
    np.testing.assert_array_equal(a, contrastive_features(images, seed=1, steps=3, batch_size=4))
    assert not np.allclose(a, contrastive_features(images, seed=2, steps=3, batch_size=4))


def test_large_images_and_volumes_are_resized_first() -> None:
    rng = np.random.default_rng(0)
    volumes = rng.normal(size=(5, 1, 40, 36, 44)).astype(np.float32)
    features = contrastive_features(
        volumes, spatial_dims=3, seed=0, steps=2, batch_size=4, max_side=16
    )
    assert features.shape == (5, 128) and np.isfinite(features).all()
    by_default = contrastive_features(volumes, spatial_dims=3, seed=0, steps=2, batch_size=4)
    np.testing.assert_array_equal(by_default, features)  # volumes train at 16 per axis
    assert not np.array_equal(
        features,
        contrastive_features(volumes, spatial_dims=3, seed=0, steps=2, batch_size=4, max_side=32),
    )
    slices = rng.integers(0, 255, size=(3, 300, 200), dtype=np.uint8)  # [N, H, W], no channel
    assert contrastive_features(slices, seed=0, steps=1, batch_size=3).shape == (3, 128)


def test_bad_input_is_refused_by_name() -> None:
    with pytest.raises(ValueError, match=r"2 spatial axes, got shape \(4, 1, 8, 8, 8\)"):
        contrastive_features(np.zeros((4, 1, 8, 8, 8)), steps=1)
    with pytest.raises(ValueError, match="at least 2 images"):
        contrastive_features(np.zeros((1, 8, 8)), steps=1)
    with pytest.raises(ValueError, match="steps >= 1"):
        contrastive_features(np.zeros((4, 8, 8)), steps=0)


def test_nt_xent_by_hand() -> None:
    # two pairs of unit vectors: each view's partner is its most similar, so the loss is the
    # cross-entropy of picking it among the other three at this temperature
    a = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    b = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    t = 0.5
    # row 0 (a0): similarities to a1, b0, b1 = 0, 1, 0 (diagonal excluded)
    expected = -np.log(np.exp(1 / t) / (np.exp(1 / t) + 2 * np.exp(0)))
    assert float(nt_xent(a, b, t)) == pytest.approx(expected, rel=1e-6)


def test_the_trunk_weights_are_those_that_made_the_features() -> None:
    """A fresh `small_cnn` trunk loaded with ``trunk_state`` maps the (standardised) images to
    the features given, so a classifier started from it starts from that encoder."""
    from workbench.models import small_cnn
    from workbench.recipes import train_contrastive
    from workbench.recipes._contrastive import _standardised

    images, _ = disks_and_rings(6, side=16)
    encoder = train_contrastive(images, seed=4, steps=4, batch_size=6)
    np.testing.assert_array_equal(
        encoder.features, contrastive_features(images, seed=4, steps=4, batch_size=6)
    )
    trunk = small_cnn(spatial_dims=2, in_channels=1).trunk
    trunk.load_state_dict(encoder.trunk_state)
    with torch.no_grad():
        again = torch.nn.functional.normalize(trunk.eval()(_standardised(images, 2, 64)), dim=1)
    np.testing.assert_allclose(again.numpy(), encoder.features, atol=1e-6)
    assert all(v.device.type == "cpu" for v in encoder.trunk_state.values())
