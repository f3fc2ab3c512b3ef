"""Both recipes refuse, by field, counts that would train wrongly or fail deep in Lightning."""

from __future__ import annotations

import numpy as np
import pytest

from workbench.models import ModelError
from workbench.recipes import ClassificationRecipe, SegmentationRecipe, UNetFactory

RECIPES = [ClassificationRecipe, SegmentationRecipe]


@pytest.mark.parametrize("recipe", RECIPES)
@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("max_epochs", -1),  # Lightning would train with no epoch limit
        ("max_epochs", 0),
        ("patience", 0),
        ("batch_size", 0),
        ("mc_samples", 0),
        ("predict_batch_size", -2),
        ("min_steps_per_epoch", -1),
        ("num_nodes", 0),
        ("max_epochs", 2.5),
        ("patience", True),
        ("batch_size", "32"),
    ],
)
def test_a_recipe_refuses_a_bad_count_by_name(recipe: type, field: str, value: object) -> None:
    with pytest.raises(ModelError, match=f"{field} must be an integer >= ") as caught:
        recipe(**{field: value})
    assert caught.value.field == field


@pytest.mark.parametrize("recipe", RECIPES)
def test_a_recipe_takes_numpy_integers_and_the_least_counts(recipe: type) -> None:
    made = recipe(
        max_epochs=np.int64(3), patience=1, min_steps_per_epoch=0, batch_size=1, mc_samples=1
    )
    assert made.max_epochs == 3 and made.patience == 1 and made.min_steps_per_epoch == 0


def test_a_classification_recipe_still_refuses_negative_restarts() -> None:
    with pytest.raises(ModelError, match="restarts must be an integer >= 0"):
        ClassificationRecipe(restarts=-1)
    assert ClassificationRecipe(restarts=0).restarts == 0


@pytest.mark.parametrize(
    ("features", "dropout", "field"),
    [
        ((16,), 0.1, "features"),  # no down-sampling level
        ((0, 8), 0.1, "features"),
        ((4, 8, 16), 1.0, "dropout"),  # every activation dropped
        ((4, 8, 16), -0.1, "dropout"),
    ],
)
def test_a_unet_factory_refuses_settings_it_cannot_build(
    features: tuple[int, ...], dropout: float, field: str
) -> None:
    with pytest.raises(ModelError) as caught:
        UNetFactory(features, dropout)
    assert caught.value.field == field
    assert UNetFactory((4, 8), 0.0).name == "unet_4-8"
