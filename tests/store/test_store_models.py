"""Model versions, predictions, scores, rounds and flags."""

from __future__ import annotations

import numpy as np
import pytest
from store_helpers import new_items

from workbench.errors import StoreError
from workbench.store import (
    LabelSource,
    LabelSubmission,
    ModelStatus,
    Prediction,
    RoundStatus,
    SQLiteStore,
)


def test_model_version_lifecycle(cls_store: SQLiteStore) -> None:
    a, b = cls_store.add_items(new_items(2))
    labels = cls_store.submit_labels(
        [LabelSubmission(i, "ann", LabelSource.HUMAN, class_index=0) for i in (a, b)]
    )
    model = cls_store.add_model_version(
        "resnet18", {"lr": 0.001, "epochs": 3}, trained_on=[lv.id for lv in labels]
    )
    assert model.status is ModelStatus.TRAINING and model.checkpoint is None
    assert model.trained_on == tuple(sorted(lv.id for lv in labels))
    assert model.params == {"lr": 0.001, "epochs": 3} and model.metrics == {}
    ready = cls_store.update_model_version(
        model.id,
        status=ModelStatus.READY,
        checkpoint="checkpoints/m1.ckpt",
        metrics={"accuracy": 0.75},
    )
    assert ready.status is ModelStatus.READY and ready.checkpoint == "checkpoints/m1.ckpt"
    assert ready.metrics == {"accuracy": 0.75} and ready.trained_on == model.trained_on
    again = cls_store.update_model_version(model.id, status=ModelStatus.READY)
    assert again.checkpoint == "checkpoints/m1.ckpt"  # unchanged when not given
    failed = cls_store.add_model_version("broken")
    cls_store.update_model_version(failed.id, status=ModelStatus.FAILED, error="CUDA OOM")
    assert [(m.name, m.status, m.error) for m in cls_store.list_model_versions()] == [
        ("resnet18", ModelStatus.READY, None),
        ("broken", ModelStatus.FAILED, "CUDA OOM"),
    ]


def test_model_version_errors(cls_store: SQLiteStore) -> None:
    with pytest.raises(StoreError) as caught:
        cls_store.add_model_version("m", trained_on=[7])
    assert caught.value.field == "trained_on"
    with pytest.raises(StoreError) as caught:
        cls_store.add_model_version("m", params={"fn": object()})
    assert caught.value.field == "params"
    with pytest.raises(StoreError) as caught:
        cls_store.update_model_version(5, status=ModelStatus.READY)
    assert caught.value.field == "model_version_id"
    assert cls_store.list_model_versions() == []


def test_predictions_round_trip(seg_store: SQLiteStore) -> None:
    a, b = seg_store.add_items(new_items(2, shape=(6, 7)))
    model = seg_store.add_model_version("unet")
    probs = np.random.default_rng(1).random((2, 6, 7)).astype(np.float32)
    mask = (probs[1] > 0.5).astype(np.uint8)
    unc = probs.std(axis=0)
    seg_store.add_predictions(
        model.id,
        [Prediction(a, probs=probs, mask=mask, uncertainty_map=unc), Prediction(b, mask=mask)],
    )
    got = seg_store.get_prediction(model.id, a)
    assert got is not None and got.item_id == a
    for sent, back in ((probs, got.probs), (mask, got.mask), (unc, got.uncertainty_map)):
        assert back is not None and back.dtype == sent.dtype and np.array_equal(back, sent)
    only_mask = seg_store.get_prediction(model.id, b)
    assert only_mask is not None and only_mask.probs is None and only_mask.uncertainty_map is None
    assert seg_store.get_prediction(model.id, 999) is None
    seg_store.add_predictions(model.id, [Prediction(b, mask=1 - mask)])  # replaces
    replaced = seg_store.get_prediction(model.id, b)
    assert replaced is not None and replaced.mask is not None
    assert np.array_equal(replaced.mask, 1 - mask)


def test_prediction_errors(cls_store: SQLiteStore) -> None:
    (a,) = cls_store.add_items(new_items(1))
    model = cls_store.add_model_version("m")
    with pytest.raises(StoreError) as caught:
        cls_store.add_predictions(99, [Prediction(a, probs=np.ones(3))])
    assert caught.value.field == "model_version_id"
    with pytest.raises(StoreError) as caught:
        cls_store.add_predictions(
            model.id, [Prediction(a, probs=np.ones(3)), Prediction(42, probs=np.ones(3))]
        )
    assert caught.value.field == "item_id"
    with pytest.raises(StoreError) as caught:
        cls_store.add_predictions(model.id, [Prediction(a)])
    assert caught.value.field == "predictions"
    assert cls_store.get_prediction(model.id, a) is None


def test_scores(cls_store: SQLiteStore) -> None:
    a, b, c = cls_store.add_items(new_items(3))
    model = cls_store.add_model_version("m")
    cls_store.add_scores(model.id, "entropy", {a: 0.1, b: 0.9})
    cls_store.add_scores(model.id, "entropy", {b: 0.5, c: 0.3})  # upsert
    cls_store.add_scores(model.id, "margin", {a: 1.0})
    assert cls_store.get_scores(model.id, "entropy") == {a: 0.1, b: 0.5, c: 0.3}
    assert cls_store.get_scores(model.id, "margin") == {a: 1.0}
    assert cls_store.get_scores(model.id, "bald") == {}
    for scores, field in (({999: 1.0}, "scores"), ({a: float("nan")}, "scores")):
        with pytest.raises(StoreError) as caught:
            cls_store.add_scores(model.id, "entropy", scores)
        assert caught.value.field == field
    assert cls_store.get_scores(model.id, "entropy") == {a: 0.1, b: 0.5, c: 0.3}


def test_rounds(cls_store: SQLiteStore) -> None:
    a, b, c = cls_store.add_items(new_items(3))
    model = cls_store.add_model_version("m")
    first = cls_store.start_round("entropy", {"k": 2, "seed": 0}, model.id)
    assert first.status is RoundStatus.RUNNING and first.selected == ()
    done = cls_store.finish_round(first.id, status=RoundStatus.DONE, selected=[c, a])
    assert done.selected == (c, a) and done.status is RoundStatus.DONE
    second = cls_store.start_round("random", {}, None)
    failed = cls_store.finish_round(second.id, status=RoundStatus.FAILED, error="no model")
    assert failed.error == "no model"
    assert cls_store.list_rounds() == [done, failed]
    assert done.params == {"k": 2, "seed": 0} and done.model_version_id == model.id


def test_round_errors(cls_store: SQLiteStore) -> None:
    (a,) = cls_store.add_items(new_items(1))
    run = cls_store.start_round("entropy", {}, None)
    cases = [
        ({"status": RoundStatus.DONE, "selected": [a, a]}, "selected"),
        ({"status": RoundStatus.DONE, "selected": [77]}, "selected"),
        ({"status": RoundStatus.RUNNING}, "status"),
    ]
    for kwargs, field in cases:
        with pytest.raises(StoreError) as caught:
            cls_store.finish_round(run.id, **kwargs)  # type: ignore[arg-type]
        assert caught.value.field == field
    cls_store.finish_round(run.id, status=RoundStatus.DONE, selected=[a])
    with pytest.raises(StoreError, match="already done"):
        cls_store.finish_round(run.id, status=RoundStatus.FAILED)
    with pytest.raises(StoreError) as caught:
        cls_store.start_round("entropy", {}, 12)
    assert caught.value.field == "model_version_id"


def test_flags(cls_store: SQLiteStore) -> None:
    a, b = cls_store.add_items(new_items(2))
    first = cls_store.flag_item(a, "ann", "unclear", "blurry")
    second = cls_store.flag_item(b, "ann", "needs_expert")
    cls_store.flag_item(a, "rev", "needs_expert", "check margin")
    assert first.comment == "blurry" and second.comment == ""
    assert len(cls_store.list_flags()) == 3
    assert [f.kind for f in cls_store.list_flags(a)] == ["unclear", "needs_expert"]
    with pytest.raises(StoreError) as caught:
        cls_store.flag_item(99, "ann", "unclear")
    assert caught.value.field == "item_id"
    with pytest.raises(StoreError) as caught:
        cls_store.flag_item(a, "ann", "")
    assert caught.value.field == "kind"
