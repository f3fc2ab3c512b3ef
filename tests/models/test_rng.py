"""Training leaves the caller's global random generators as they were (`keep_global_rng`)."""

from __future__ import annotations

import os
import random

import numpy as np
import pytest
import torch

from workbench.models import keep_global_rng
from workbench.recipes import SegmentationRecipe, UNetFactory, train_segmenter


def _seed_all(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def _draws() -> tuple[float, list[float], list[float]]:
    return random.random(), np.random.rand(3).tolist(), torch.rand(3).tolist()


def test_generators_and_lightning_seed_vars_come_back_also_after_an_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("PL_GLOBAL_SEED", raising=False)
    monkeypatch.setenv("PL_SEED_WORKERS", "0")
    _seed_all(7)
    expected = _draws()
    _seed_all(7)
    with pytest.raises(RuntimeError, match="inside"), keep_global_rng():
        _seed_all(123)
        os.environ["PL_GLOBAL_SEED"] = "123"
        os.environ["PL_SEED_WORKERS"] = "1"
        raise RuntimeError("inside")
    assert _draws() == expected
    assert "PL_GLOBAL_SEED" not in os.environ
    assert os.environ["PL_SEED_WORKERS"] == "0"


def _blobs(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``n`` 16x16 images, each with a bright square that is the mask's class 1."""
    rng = np.random.default_rng(seed)
    images = rng.normal(0, 0.1, (n, 1, 16, 16)).astype(np.float32)
    masks = np.zeros((n, 16, 16), np.int64)
    for i, corner in enumerate(rng.integers(2, 10, (n, 2))):
        masks[i, corner[0] : corner[0] + 5, corner[1] : corner[1] + 5] = 1
    images[:, 0] += masks
    return images, masks


def test_a_seeded_segmenter_training_keeps_the_callers_draws_and_stays_seeded(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("PL_GLOBAL_SEED", raising=False)
    recipe = SegmentationRecipe(
        network=UNetFactory((4, 8)),
        spatial_dims=2,
        max_epochs=1,
        min_steps_per_epoch=2,
        batch_size=2,
        mc_samples=2,
    )
    x, y = _blobs(8, 0)
    _seed_all(11)
    expected = _draws()
    _seed_all(11)
    first = train_segmenter(recipe, x[:6], y[:6], x[6:], y[6:], num_classes=2, seed=3)
    assert _draws() == expected  # not the draws of seed 3
    assert "PL_GLOBAL_SEED" not in os.environ
    _seed_all(99)  # another caller state: the training is the same
    again = train_segmenter(recipe, x[:6], y[:6], x[6:], y[6:], num_classes=2, seed=3)
    for key, value in first.state_dict.items():
        torch.testing.assert_close(again.state_dict[key], value, msg=key)
