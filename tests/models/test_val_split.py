"""The held-out part of the training labels keeps each item on its side as labels are added."""

from __future__ import annotations

import numpy as np

from workbench.models import stable_val_mask


def test_an_item_stays_on_its_side_as_items_are_added() -> None:
    rng = np.random.default_rng(0)
    ids = rng.permutation(100_000)[:1000] + 7
    labels = rng.integers(0, 3, size=1000)
    before = stable_val_mask(ids[:200], 0.2, 0, labels[:200])
    after = stable_val_mask(ids, 0.2, 0, labels)
    np.testing.assert_array_equal(after[:200], before)
    assert 0.15 < after.mean() < 0.25
    shuffled = rng.permutation(1000)  # nor does it depend on the order of the items
    np.testing.assert_array_equal(
        stable_val_mask(ids[shuffled], 0.2, 0, labels[shuffled]), after[shuffled]
    )
    assert (stable_val_mask(ids, 0.2, 1, labels) != after).any()  # the seed picks another part


def test_each_class_of_two_or_more_keeps_a_val_and_a_training_item() -> None:
    ids = np.arange(10)
    labels = np.array([0, 0, 1, 1, 1, 1, 1, 1, 1, 2])
    for fraction in (0.0, 0.2, 1.0):
        mask = stable_val_mask(ids, fraction, 0, labels)
        for c in (0, 1):
            in_class = mask[labels == c]
            assert in_class.any() and not in_class.all(), (fraction, c)
        assert not mask[labels == 2].any()  # a class of one item trains
    none = stable_val_mask(ids, 0.0, 0)  # one group without labels
    assert none.sum() == 1
