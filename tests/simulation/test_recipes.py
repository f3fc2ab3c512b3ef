"""The shared training recipe: shapes, id-keyed MC dropout, warm start, Trainer scoring.
(Training with two processes: tests/models/test_ddp.py.)"""

from __future__ import annotations

import dataclasses
import functools
import random
import tempfile
from pathlib import Path

import numpy as np
import pytest
import torch

from tests._networks import one_class_network
from workbench.models import ModelError, small_cnn
from workbench.recipes import (
    ClassificationRecipe,
    class_weights,
    embed,
    predict_mean,
    predict_probs,
    predict_scores,
    train_classifier,
    train_contrastive,
    trunk_fits,
)
from workbench.recipes._data import as_pixels
from workbench.simulation import SimulationData

pytestmark = pytest.mark.shared_data


def test_class_weights_are_inverse_frequencies_with_mean_one() -> None:
    # counts 3, 1 -> total/count 4/3, 4 -> divided by their mean 8/3
    assert class_weights(np.array([0, 0, 0, 1]), 2) == pytest.approx([0.5, 1.5])
    assert class_weights(np.array([1, 1]), 3) == [0.0, 1.0, 0.0]


def test_train_predict_embed_and_warm_start(
    breast_tiny: SimulationData, tiny_recipe: ClassificationRecipe, tmp_path: Path
) -> None:
    x, y = breast_tiny.pool_x[:30], breast_tiny.pool_y[:30]
    trained = train_classifier(
        tiny_recipe,
        x,
        y,
        seed=0,
        num_classes=2,  # val split from x
        root_dir=tmp_path,
    )
    assert trained.checkpoint_path is not None and trained.checkpoint_path.is_file()
    assert trained.checkpoint_path.is_relative_to(tmp_path)
    pool = breast_tiny.test_x[:12]
    probs = predict_probs(trained, pool, 4, ids=np.arange(100, 112))
    assert probs.shape == (12, 4, 2)
    np.testing.assert_allclose(probs.sum(-1), 1.0, atol=1e-5)
    assert len({tuple(p[:, 0].round(6)) for p in probs}) > 1  # MC samples differ
    flipped = predict_probs(trained, pool[::-1], 4, ids=np.arange(111, 99, -1))
    np.testing.assert_allclose(flipped[::-1], probs, atol=1e-6)  # keyed by id, not position
    assert predict_mean(trained, pool).shape == (12, 2)
    assert embed(trained, pool).shape[0] == 12
    warm = dataclasses.replace(tiny_recipe, warm_start=True, max_epochs=1, lr=1e-12)
    again = train_classifier(warm, x, y, seed=1, num_classes=2, init_state=trained.state_dict)
    for key, value in trained.state_dict.items():
        if value.dtype.is_floating_point and "running" not in key:
            assert torch.allclose(again.state_dict[key], value, atol=1e-6), key


def test_training_without_a_folder_leaves_nothing_on_disk(
    breast_tiny: SimulationData,
    tiny_recipe: ClassificationRecipe,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # weights trained from patient images stay in memory unless the caller gives a folder
    # (before, every such training left a checkpoint in the system's temporary folder)
    temporary = tmp_path / "system-tmp"
    temporary.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temporary))
    x, y = breast_tiny.pool_x[:30], breast_tiny.pool_y[:30]
    trained = train_classifier(tiny_recipe, x, y, seed=0, num_classes=2)
    assert trained.checkpoint_path is None
    assert trained.state_dict and trained.metrics["val_auc"] >= 0.0
    assert list(temporary.iterdir()) == []


def test_batch_norm_statistics_are_recomputed_on_the_training_images(
    breast_tiny: SimulationData, tiny_recipe: ClassificationRecipe, tmp_path: Path
) -> None:
    x, y = breast_tiny.pool_x[:40], breast_tiny.pool_y[:40]
    xv, yv = breast_tiny.val_x, breast_tiny.val_y
    trained = train_classifier(tiny_recipe, x, y, xv, yv, seed=0, num_classes=2, root_dir=tmp_path)
    assert trained.checkpoint_path is not None
    plain = dataclasses.replace(tiny_recipe, recalibrate_batch_norm=False)
    as_fitted = train_classifier(plain, x, y, xv, yv, seed=0, num_classes=2)
    keys = [k for k in trained.state_dict if k.endswith("running_mean")]
    assert keys  # small_cnn has BatchNorm layers
    checkpoint = torch.load(trained.checkpoint_path, map_location="cpu", weights_only=False)
    for key in keys:
        # the recipe returns new statistics (and the module holds them), not the checkpoint's
        assert not torch.allclose(trained.state_dict[key], as_fitted.state_dict[key])
        torch.testing.assert_close(
            as_fitted.state_dict[key], checkpoint["state_dict"][f"net.{key}"]
        )
        net = trained.module.net
        assert isinstance(net, torch.nn.Module)
        torch.testing.assert_close(net.state_dict()[key], trained.state_dict[key])
    for key, value in as_fitted.state_dict.items():  # the weights are the same
        if "running" not in key and "num_batches" not in key:
            torch.testing.assert_close(trained.state_dict[key], value)
    # the reported val metrics are those of the returned model
    probs = predict_mean(trained, xv)
    assert trained.metrics["val_acc"] == pytest.approx(float((probs.argmax(1) == yv).mean()))


def _entropy(probs: torch.Tensor) -> torch.Tensor:
    """Predictive entropy.  # [B, T, C] -> [B]"""
    mean = probs.mean(1)
    return -(mean * mean.clamp_min(1e-12).log()).sum(1)


def test_trainer_scoring_equals_streamed_scoring(
    breast_tiny: SimulationData, tiny_recipe: ClassificationRecipe
) -> None:
    trained = train_classifier(
        tiny_recipe, breast_tiny.pool_x[:30], breast_tiny.pool_y[:30], seed=0, num_classes=2
    )
    pool, ids = breast_tiny.test_x[:13], np.arange(300, 313)[::-1].copy()
    scores = predict_scores(trained, pool, _entropy, ids=ids, accelerator="cpu")
    streamed = _entropy(torch.from_numpy(predict_probs(trained, pool, ids=ids))).numpy()
    assert scores.ids.tolist() == sorted(ids.tolist())  # ordered by id
    np.testing.assert_allclose(scores.values, streamed[::-1], atol=1e-6)


def test_a_degenerate_training_is_restarted_and_flagged(
    breast_tiny: SimulationData, tiny_recipe: ClassificationRecipe, tmp_path: Path
) -> None:
    x, y = breast_tiny.pool_x[:40], breast_tiny.pool_y[:40]
    xv, yv = breast_tiny.val_x, breast_tiny.val_y
    assert len(np.unique(yv)) == 2
    recipe = dataclasses.replace(tiny_recipe, network=one_class_network, restarts=2)
    trained = train_classifier(recipe, x, y, xv, yv, seed=0, num_classes=2, root_dir=tmp_path)
    # every image gets one class whatever the seed: three trainings, still flagged
    assert trained.metrics["attempts"] == 3.0 and trained.metrics["degenerate"] == 1.0
    assert (tmp_path / "restart-1").is_dir() and (tmp_path / "restart-2").is_dir()
    assert trained.seed == 0  # all equally bad (val AUC 0.5): the first is kept
    # a network that can learn: one training, not flagged
    plain = dataclasses.replace(tiny_recipe, max_epochs=3, restarts=2)
    good = train_classifier(
        plain, breast_tiny.pool_x, breast_tiny.pool_y, xv, yv, seed=0, num_classes=2
    )
    assert good.metrics["degenerate"] == 0.0 and good.metrics["attempts"] == 1.0
    assert good.metrics["val_auc"] > 0.5


@pytest.mark.parametrize("restarts", [-1, 1.5, True])
def test_restarts_must_be_a_count(restarts: object) -> None:
    with pytest.raises(ModelError, match="restarts must be an integer >= 0") as caught:
        ClassificationRecipe(restarts=restarts)  # type: ignore[arg-type]
    assert caught.value.field == "restarts"


def test_uint8_pools_are_scored_as_their_scaled_float_images(
    breast_tiny: SimulationData, tiny_recipe: ClassificationRecipe
) -> None:
    trained = train_classifier(
        tiny_recipe, breast_tiny.pool_x[:30], breast_tiny.pool_y[:30], seed=0, num_classes=2
    )
    pool, ids = breast_tiny.test_x[:13], np.arange(400, 413)
    assert pool.dtype == np.uint8
    scaled = pool.astype(np.float32) / 255.0
    held = as_pixels(pool, 2)  # the pool is held as uint8, without a float copy
    assert held.dtype == torch.uint8 and held.shape == (13, 1, 28, 28)
    assert as_pixels(scaled, 2).dtype == torch.float32
    # the same arithmetic (uint8 -> float32, / 255) on the device: the same bits
    np.testing.assert_array_equal(
        predict_probs(trained, pool, 4, ids=ids), predict_probs(trained, scaled, 4, ids=ids)
    )
    np.testing.assert_array_equal(predict_mean(trained, pool), predict_mean(trained, scaled))
    np.testing.assert_array_equal(
        predict_scores(trained, pool, _entropy, ids=ids, accelerator="cpu").values,
        predict_scores(trained, scaled, _entropy, ids=ids, accelerator="cpu").values,
    )


def test_a_seeded_classifier_training_keeps_the_callers_random_draws(
    breast_tiny: SimulationData, tiny_recipe: ClassificationRecipe
) -> None:
    def draws() -> tuple[float, list[float], list[float]]:
        return random.random(), np.random.rand(3).tolist(), torch.rand(3).tolist()

    def seed_all(seed: int) -> None:
        random.seed(seed)
        np.random.seed(seed)
        torch.manual_seed(seed)

    seed_all(5)
    expected = draws()
    seed_all(5)
    x, y = breast_tiny.pool_x[:30], breast_tiny.pool_y[:30]
    first = train_classifier(tiny_recipe, x, y, seed=2, num_classes=2)
    assert draws() == expected  # Lightning's seed_everything(2) did not leak out
    seed_all(77)
    again = train_classifier(tiny_recipe, x, y, seed=2, num_classes=2)
    for key, value in first.state_dict.items():
        torch.testing.assert_close(again.state_dict[key], value, msg=key)


def test_a_training_starts_from_a_pretrained_trunk_and_a_fresh_head(
    breast_tiny: SimulationData, tiny_recipe: ClassificationRecipe
) -> None:
    """With a zero learning rate the weights stay where they started: the trunk's convolution
    and linear weights are the encoder's, the head is the seed's fresh one."""
    encoder = train_contrastive(breast_tiny.pool_x, seed=0, steps=5, batch_size=16)
    frozen = dataclasses.replace(tiny_recipe, lr=0.0, weight_decay=0.0)
    x, y = breast_tiny.pool_x[:30], breast_tiny.pool_y[:30]
    started = train_classifier(frozen, x, y, seed=3, trunk_state=encoder.trunk_state)
    fresh = train_classifier(frozen, x, y, seed=3)
    learned = [k for k in encoder.trunk_state if k.endswith("weight") or k.endswith("bias")]
    assert learned
    for key in learned:
        assert torch.equal(started.state_dict[f"trunk.{key}"], encoder.trunk_state[key]), key
        assert not torch.equal(fresh.state_dict[f"trunk.{key}"], encoder.trunk_state[key]), key
    heads = [k for k in started.state_dict if k.startswith("head.")]
    assert heads and all(torch.equal(started.state_dict[k], fresh.state_dict[k]) for k in heads)
    # a warm start wins over the trunk: the previous round's weights are the better start
    warm = train_classifier(
        frozen, x, y, seed=3, init_state=fresh.state_dict, trunk_state=encoder.trunk_state
    )
    assert all(
        torch.equal(warm.state_dict[f"trunk.{k}"], fresh.state_dict[f"trunk.{k}"]) for k in learned
    )


def test_a_trunk_that_does_not_fit_is_refused_by_name(
    breast_tiny: SimulationData, tiny_recipe: ClassificationRecipe
) -> None:
    x, y = breast_tiny.pool_x[:30], breast_tiny.pool_y[:30]
    rgb = train_contrastive(np.repeat(x[:, None], 3, axis=1), seed=0, steps=2, batch_size=8)
    with pytest.raises(ModelError, match="trunk_state does not fit the network's trunk") as err:
        train_classifier(tiny_recipe, x, y, seed=0, trunk_state=rgb.trunk_state)
    assert err.value.field == "trunk_state"
    one_class = dataclasses.replace(tiny_recipe, network=one_class_network)
    with pytest.raises(ModelError, match="needs a network with a trunk"):
        train_classifier(one_class, x, y, seed=0, trunk_state=rgb.trunk_state)


def test_trunk_fits_by_names_and_shapes_and_keeps_the_random_state() -> None:
    images = np.random.default_rng(0).integers(0, 255, (12, 28, 28), np.uint8)
    grey = train_contrastive(images, seed=0, steps=1, batch_size=4).trunk_state
    size = {"spatial_dims": 2, "num_classes": 2}
    torch.manual_seed(5)
    before = torch.get_rng_state()
    assert trunk_fits(small_cnn, grey, in_channels=1, **size)
    assert torch.equal(torch.get_rng_state(), before)
    assert trunk_fits(functools.partial(small_cnn, dropout=0.2), grey, in_channels=1, **size)
    assert not trunk_fits(small_cnn, grey, in_channels=3, **size)  # first conv's shape
    assert not trunk_fits(functools.partial(small_cnn, hidden=64), grey, in_channels=1, **size)
    assert not trunk_fits(one_class_network, grey, in_channels=1, **size)  # no trunk at all
