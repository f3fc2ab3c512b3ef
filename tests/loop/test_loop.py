"""The store-backed loop on the bundled BreastMNIST: cold start, serve, label, train, score,
query, and failure recovery, with everything recorded in the store."""

from __future__ import annotations

import dataclasses
import functools
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
import torch

from tests._networks import RaisingNetwork, one_class_network
from workbench.ingest import LabelPolicy, import_sources
from workbench.io import ScanImage, read_uri
from workbench.loop import ActiveLearningLoop, LoopError, StoppingCriteria
from workbench.loop._images import item_images, thumbnails
from workbench.models import small_cnn
from workbench.recipes import (
    ClassificationRecipe,
    TrainedModel,
    contrastive_features,
    embed,
    predict_probs,
)
from workbench.store import (
    Item,
    LabelSource,
    LabelSubmission,
    ModelStatus,
    ProjectConfig,
    RoundStatus,
    SQLiteStore,
    Task,
    create_project,
)
from workbench.strategies import downsample, get_strategy, select_coreset, select_typiclust

DEMO_NPZ = Path(__file__).resolve().parents[2] / "workbench/demo_data/breastmnist/breastmnist.npz"
FAST = ClassificationRecipe(
    max_epochs=3, patience=2, mc_samples=4, min_steps_per_epoch=2, restarts=0
)


@pytest.fixture()
def project(tmp_path: Path) -> SQLiteStore:
    store = create_project(
        tmp_path / "breast",
        ProjectConfig("breast", Task.CLASSIFICATION, ("malignant", "normal or benign")),
    )
    import_sources(store, [DEMO_NPZ], labels=LabelPolicy.GROUND_TRUTH)
    return store


def label_served(store: SQLiteStore, annotator: str, count: int) -> list[int]:
    """Play an annotator: take served items and label them from the hidden ground truth."""
    done = []
    for _ in range(count):
        item = store.next_item(annotator, split="train")
        assert item is not None
        truth = store.current_label(item.id, include_ground_truth=True)
        assert truth is not None and truth.source is LabelSource.GROUND_TRUTH
        store.submit_label(
            LabelSubmission(
                item_id=item.id,
                annotator=annotator,
                source=LabelSource.HUMAN,
                class_index=truth.class_index,
                seconds_spent=2.0,
            )
        )
        done.append(item.id)
    return done


def test_cold_start_then_train_score_query_and_serve_in_order(project: SQLiteStore) -> None:
    loop = ActiveLearningLoop(project, recipe=FAST, contrastive_steps=20)
    with pytest.raises(LoopError, match="at least 4 labelled"):
        loop.train()

    first = loop.query("bald", 24, seed=1)  # no model yet: the typical cold start
    assert first.strategy == "cold_start_typical" and first.status is RoundStatus.DONE
    assert first.params == {"k": 24, "seed": 1, "torch_threads": torch.get_num_threads()}
    assert len(set(first.selected)) == 24
    assert label_served(project, "ann", 24) == list(first.selected)  # served in round order

    model = loop.train(seed=0)
    assert model.status is ModelStatus.READY and "val_auc" in model.metrics
    assert loop.cold_start_method("bald") is None  # a model now: no cold start
    assert Path(model.checkpoint or "").is_file()
    labels_used = {label.id for label in project.current_labels(split="train")}
    assert set(model.trained_on) == labels_used | {
        label.id for label in project.current_labels(split="val")
    }

    scored = loop.score(model)
    pool = loop.pool()
    assert scored == len(pool) == 546 - 24
    scores = project.get_scores(model.id, "bald")
    assert set(scores) == {item.id for item in pool}
    prediction = project.get_prediction(model.id, pool[0].id)
    assert prediction is not None and prediction.probs is not None
    assert np.isclose(prediction.probs.sum(), 1.0, atol=1e-4)

    second = loop.query("bald", 10, seed=0)
    assert second.model_version_id == model.id and len(second.selected) == 10
    assert not set(second.selected) & set(first.selected)
    top_bald = sorted(scores, key=scores.__getitem__, reverse=True)[:10]
    assert set(second.selected) == set(top_bald)  # plain BALD is the top-k of the stored scores
    assert label_served(project, "ann", 3) == list(second.selected[:3])

    third = loop.query("power_epig", 5, seed=2)  # not a stored score: the pool goes through
    assert third.status is RoundStatus.DONE and third.model_version_id == model.id
    assert len(set(third.selected)) == 5
    labelled = {label.item_id for label in project.current_labels(split="train")}
    assert not set(third.selected) & labelled  # (second's 7 unlabelled picks are pool items)
    # the newest round replaces the queue: its picks are served first, in its order
    assert label_served(project, "ann", 5) == list(third.selected)


def test_a_round_leaves_no_checkpoint_outside_the_project(
    project: SQLiteStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Lightning's checkpoints of a round are temporary: only the saved weights in the project
    # stay (before, every round left one in the system's temporary folder)
    temporary = tmp_path / "system-tmp"
    temporary.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temporary))
    loop = ActiveLearningLoop(project, recipe=FAST)
    loop.query("random", 24, seed=0)
    label_served(project, "ann", 24)
    model = loop.train(seed=0)
    assert model.status is ModelStatus.READY
    assert Path(model.checkpoint or "").is_file()
    assert Path(model.checkpoint or "").is_relative_to(project.root)
    loop.score(model)
    assert list(temporary.iterdir()) == []


def test_failed_round_keeps_labels_and_the_loop_resumes(project: SQLiteStore) -> None:
    loop = ActiveLearningLoop(project, recipe=FAST)
    loop.query("random", 30, seed=0)
    label_served(project, "ann", 30)
    model = loop.train()
    labels_before = project.current_labels()
    Path(model.checkpoint or "").write_bytes(b"not a checkpoint")  # weights damaged on disk

    with pytest.raises(LoopError, match="round"):
        loop.query("bald", 5)
    failed = project.list_rounds()[-1]
    assert failed.status is RoundStatus.FAILED and failed.error
    assert project.current_labels() == labels_before

    with pytest.warns(UserWarning, match="warm start skipped"):
        retrained = loop.train(seed=1)  # resume: a new model version, then a good round
    assert retrained.id != model.id and retrained.status is ModelStatus.READY
    assert loop.query("bald", 5).status is RoundStatus.DONE


def test_model_that_does_not_fit_the_data_fails_clearly(project: SQLiteStore) -> None:
    loop = ActiveLearningLoop(project, recipe=dataclasses.replace(FAST, spatial_dims=3))
    loop.query("random", 12, seed=0)
    label_served(project, "ann", 12)
    with pytest.raises(LoopError, match="spatial"):
        loop.train()
    assert project.list_model_versions()[-1].status is ModelStatus.FAILED
    assert len(project.current_labels()) == 12


def test_out_of_memory_or_ctrl_c_marks_the_version_or_round_failed(project: SQLiteStore) -> None:
    ActiveLearningLoop(project, recipe=FAST).query("random", 12, seed=0)
    label_served(project, "ann", 12)
    out_of_memory = ActiveLearningLoop(
        project, recipe=dataclasses.replace(FAST, network=RaisingNetwork(MemoryError()))
    )
    with pytest.raises(LoopError, match="out of host memory: lower the batch size"):
        out_of_memory.train()
    failed = project.list_model_versions()[-1]
    assert failed.status is ModelStatus.FAILED and "out of host memory" in (failed.error or "")

    interrupted = ActiveLearningLoop(
        project, recipe=dataclasses.replace(FAST, network=RaisingNetwork(KeyboardInterrupt()))
    )
    with pytest.raises((KeyboardInterrupt, SystemExit)):  # Lightning may turn it into an exit
        interrupted.train()
    stopped = project.list_model_versions()[-1]
    assert stopped.id != failed.id and stopped.status is ModelStatus.FAILED
    assert (stopped.error or "").startswith("interrupted")
    assert len(project.current_labels()) == 12
    assert ActiveLearningLoop(project, recipe=FAST).train().status is ModelStatus.READY

    expected = {
        MemoryError: "out of host memory: score fewer",
        KeyboardInterrupt: "interrupted (KeyboardInterrupt)",
        RuntimeError: "RuntimeError",
    }  # an error without a message is named
    for error in (MemoryError(), KeyboardInterrupt(), RuntimeError()):

        def fail(item: Item, error: BaseException = error) -> np.ndarray:
            raise error  # a query reading the pool fails too

        reading = ActiveLearningLoop(project, recipe=FAST, image_loader=fail)  # type: ignore[arg-type]
        with pytest.raises((LoopError, KeyboardInterrupt)):
            reading.query("badge", 3)  # through the model: reads the pool's images
        round_ = project.list_rounds()[-1]
        assert round_.status is RoundStatus.FAILED and round_.strategy == "badge"
        assert (round_.error or "").startswith(expected[type(error)])
    assert len(project.current_labels()) == 12


def test_successive_versions_validate_on_the_same_held_out_labels(project: SQLiteStore) -> None:
    """With no val-split labels, each version holds out a part of the train labels chosen by
    item id: the items held out before are held out again, with some of the new ones."""
    loop = ActiveLearningLoop(project, recipe=FAST)
    loop.query("random", 30, seed=0)
    label_served(project, "ann", 30)
    first = loop.train()
    loop.query("random", 30, seed=1)
    label_served(project, "ann", 30)
    second = loop.train()
    held_first = set(first.params["val_item_ids"])  # type: ignore[call-overload]
    held_second = set(second.params["val_item_ids"])  # type: ignore[call-overload]
    labelled_first = {label.item_id for label in project.current_labels()} - set(
        project.list_rounds()[-1].selected
    )
    assert held_first and held_first <= labelled_first
    assert held_first < held_second  # the same items, and new ones
    assert held_second - held_first <= set(project.list_rounds()[-1].selected)
    assert 0.1 < len(held_second) / 60 < 0.35


class _CountingLoop(ActiveLearningLoop):
    """The loop, noting the most pool images it loads at once."""

    largest = 0

    def _images(self, items: Sequence[Item]) -> np.ndarray:
        self.largest = max(self.largest, len(items))
        return super()._images(items)


def test_a_query_through_the_model_streams_the_pool_in_chunks(project: SQLiteStore) -> None:
    loop = ActiveLearningLoop(project, recipe=FAST)
    loop.query("random", 24, seed=0)
    label_served(project, "ann", 24)
    loop.train()
    chunked = _CountingLoop(project, recipe=FAST, score_chunk=100)
    picks = chunked.query("badge", 8, seed=3).selected  # probabilities and embeddings
    assert chunked.largest == 100  # of a pool of 522
    whole = _CountingLoop(project, recipe=FAST, score_chunk=10_000)
    assert whole.query("badge", 8, seed=3).selected == picks
    assert whole.largest == 546 - 24


@pytest.mark.parametrize("name", ["coreset", "typiclust"])
def test_diversity_picks_are_placed_relative_to_the_labels(project: SQLiteStore, name: str) -> None:
    loop = ActiveLearningLoop(project, recipe=FAST)
    loop.query("random", 24, seed=0)
    label_served(project, "ann", 24)
    model = loop.train()
    picks = loop.query(name, 6, seed=5).selected
    # by hand: the pool and the 24 labelled items through the model, the labelled ones flagged
    pool = loop.pool()
    labelled = [project.get_item(label.item_id) for label in project.current_labels(split="train")]
    trained = loop.load(model)
    assert isinstance(trained, TrainedModel)
    features = embed(trained, loop._images([*pool, *labelled]))
    mask = np.arange(len(features)) >= len(pool)
    strategy = get_strategy(name)
    by_hand = strategy(
        k=6, embeddings=features, labelled_mask=mask, rng=np.random.default_rng(5)
    ).indices
    assert list(picks) == [pool[int(i)].id for i in by_hand]
    # the labels change the picks: the same pool alone would be covered otherwise
    alone = strategy(k=6, embeddings=features[: len(pool)], rng=np.random.default_rng(5)).indices
    assert list(picks) != [pool[int(i)].id for i in alone]


def test_typiclust_bald_picks_the_most_uncertain_of_the_uncovered_clusters(
    project: SQLiteStore,
) -> None:
    loop = ActiveLearningLoop(project, recipe=FAST)
    loop.query("random", 24, seed=0)
    label_served(project, "ann", 24)
    model = loop.train()
    picks = loop.query("typiclust_bald", 6, seed=5).selected
    # by hand: features and MC probabilities (dropout keyed by item id) of pool and labels
    pool = loop.pool()
    labelled = [project.get_item(label.item_id) for label in project.current_labels(split="train")]
    items = [*pool, *labelled]
    trained = loop.load(model)
    assert isinstance(trained, TrainedModel)
    images = loop._images(items)
    features = embed(trained, images)
    probs = predict_probs(trained, images, ids=np.array([item.id for item in items]))
    mask = np.arange(len(items)) >= len(pool)
    by_hand = get_strategy("typiclust_bald")(
        k=6, probs=probs, embeddings=features, labelled_mask=mask, rng=np.random.default_rng(5)
    )
    assert list(picks) == [pool[int(i)].id for i in by_hand.indices]
    typical = get_strategy("typiclust")(
        k=6, embeddings=features, labelled_mask=mask, rng=np.random.default_rng(5)
    ).indices
    assert sorted(by_hand.indices) != sorted(typical)  # BALD, not typicality, chose


def test_cold_start_kcenter_covers_what_the_labels_do_not(project: SQLiteStore) -> None:
    loop = ActiveLearningLoop(project, recipe=FAST)
    loop.query("random", 10, seed=0)
    label_served(project, "ann", 10)  # labels from elsewhere, no model yet
    picks = loop.query("cold_start_kcenter", 5, seed=2).selected
    pool = loop.pool()
    labelled = [project.get_item(label.item_id) for label in project.current_labels(split="train")]
    pixels = downsample(loop._images([*pool, *labelled]).mean(axis=1), 2)
    mask = np.arange(len(pixels)) >= len(pool)
    by_hand = select_coreset(
        pixels.reshape(len(pixels), -1), 5, labelled_mask=mask, rng=np.random.default_rng(2)
    ).indices
    assert list(picks) == [pool[int(i)].id for i in by_hand]


def test_typical_cold_start_on_self_supervised_features(project: SQLiteStore) -> None:
    loop = ActiveLearningLoop(project, recipe=FAST, contrastive_steps=20)
    assert loop.cold_start_method("bald") == "typical"  # classification's default
    assert loop.cold_start_method("bald", "kcenter") == "kcenter"
    assert loop.cold_start_method("cold_start_kcenter") == "kcenter"
    assert loop.cold_start_method("random") is None
    loop.query("random", 4, seed=0)
    label_served(project, "ann", 4)  # labels from elsewhere, no model yet
    pool = loop.pool()
    round_ = loop.query("bald", 6, seed=3, cold_start="typical")
    assert round_.strategy == "cold_start_typical" and round_.status is RoundStatus.DONE
    labelled = [project.get_item(label.item_id) for label in project.current_labels(split="train")]
    features = contrastive_features(loop._images([*pool, *labelled]), seed=3, steps=20)
    mask = np.arange(len(features)) >= len(pool)
    by_hand = select_typiclust(features, 6, labelled_mask=mask, rng=np.random.default_rng(3))
    assert list(round_.selected) == [pool[int(i)].id for i in by_hand.indices]
    with pytest.raises(LoopError, match="unknown cold start 'pixels'") as error:
        loop.query("bald", 6, cold_start="pixels")
    assert error.value.field == "cold_start"


def test_a_seed_repeats_the_picks_on_a_fresh_project(tmp_path: Path) -> None:
    """Cold start, training, scoring and a stochastic query, twice from nothing: the same
    picks (one process, so one torch thread count)."""
    picks = []
    for copy in ("a", "b"):
        store = create_project(
            tmp_path / copy,
            ProjectConfig("breast", Task.CLASSIFICATION, ("malignant", "normal or benign")),
        )
        import_sources(store, [DEMO_NPZ], labels=LabelPolicy.GROUND_TRUTH)
        loop = ActiveLearningLoop(store, recipe=FAST, contrastive_steps=20)
        first = loop.query("power_bald", 16, seed=4)
        label_served(store, "ann", 16)
        model = loop.train(seed=4)
        later = loop.query("power_bald", 8, seed=4)
        picks.append((first.selected, model.metrics["val_loss"], later.selected))
        store.close()
    assert picks[0] == picks[1]
    assert len(set(picks[0][0]) | set(picks[0][2])) == 24


def _four_times_larger(item: Item) -> ScanImage:
    """The demo's 28x28 ultrasound images read at 112x112, as a pool of larger images."""
    image = read_uri(item.source_uri, modality=item.modality)
    return dataclasses.replace(image, array=np.kron(image.array, np.ones((4, 4), np.uint8)))


@pytest.mark.parametrize("method", ["typical", "kcenter"])
def test_a_cold_start_streams_large_images_as_thumbnails(project: SQLiteStore, method: str) -> None:
    chunked = _CountingLoop(
        project, recipe=FAST, contrastive_steps=10, score_chunk=100, image_loader=_four_times_larger
    )
    picks = chunked.query("bald", 6, seed=4, cold_start=method).selected
    assert chunked.largest == 100  # of a pool of 546 images, each held at full size
    whole = _CountingLoop(
        project,
        recipe=FAST,
        contrastive_steps=10,
        score_chunk=10_000,
        image_loader=_four_times_larger,
    )
    assert whole.query("bald", 6, seed=4, cold_start=method).selected == picks
    # by hand: every image area-resized to 64x64 (the loop's 2D cold-start side), then as before
    pool = whole.pool()
    full = whole._images(pool)
    assert full.shape[2:] == (112, 112)
    small = thumbnails(full, 64)
    assert small.shape[2:] == (64, 64) and small.dtype == np.uint8
    if method == "typical":
        features = contrastive_features(small, seed=4, steps=10)
        by_hand = select_typiclust(features, 6, rng=np.random.default_rng(4)).indices
    else:
        pixels = downsample(small.mean(axis=1), 2)
        by_hand = select_coreset(
            pixels.reshape(len(pixels), -1), 6, rng=np.random.default_rng(4)
        ).indices
    assert list(picks) == [pool[int(i)].id for i in by_hand]


def test_thumbnails_area_resize_only_what_is_larger() -> None:
    images = np.arange(2 * 1 * 4 * 6, dtype=np.uint8).reshape(2, 1, 4, 6)
    assert thumbnails(images, 8) is images  # nothing larger than 8: untouched
    small = thumbnails(images, 2)  # 4x6 -> 2x2: means of 2x3 blocks, rounded
    assert small.dtype == np.uint8 and small.shape == (2, 1, 2, 2)
    block = images[0, 0, :2, :3].astype(float).mean()
    assert small[0, 0, 0, 0] == round(block)
    assert thumbnails(np.full((1, 3, 9, 9, 9), 255, np.uint8), 4).max() == 255


def test_item_images_area_averages_images_of_any_shape_to_one_size() -> None:
    arrays = {
        1: np.arange(4 * 6, dtype=np.uint8).reshape(4, 6),  # area means of 2x3 blocks
        2: np.full((2, 2), 7, np.uint8),  # already the size: as it is
        3: np.array([[10, 20]], np.uint8),
    }  # one row: repeated
    items = [
        Item(
            id=i,
            key=str(i),
            source_uri="",
            content_hash="",
            modality="OT",
            shape=a.shape,
            spacing=(1.0, 1.0),
            split="train",
            created_at=0.0,
        )
        for i, a in arrays.items()
    ]

    def loader(item: Item) -> ScanImage:
        return ScanImage(arrays[item.id], (1.0, 1.0), np.eye(3))

    out = item_images(items, size=(2, 2), loader=loader, area=True)
    assert out.shape == (3, 1, 2, 2) and out.dtype == np.uint8
    assert out[0, 0, 1, 1] == round(arrays[1][2:, 3:].astype(float).mean())
    assert (out[1] == 7).all() and out[2, 0].tolist() == [[10, 20], [10, 20]]


def test_stopping_criteria() -> None:
    criteria = StoppingCriteria(label_budget=100, plateau_rounds=2, min_mean_uncertainty=0.05)
    assert criteria.reason_to_stop(labels=100, val_history=[], mean_uncertainty=None)
    assert criteria.reason_to_stop(
        labels=10, val_history=[0.8, 0.9, 0.85, 0.9], mean_uncertainty=None
    )
    assert not criteria.reason_to_stop(
        labels=10, val_history=[0.8, 0.85, 0.9], mean_uncertainty=0.2
    )
    assert "uncertainty" in (
        criteria.reason_to_stop(labels=10, val_history=[0.9], mean_uncertainty=0.01) or ""
    )


def test_a_recipe_for_the_other_task_is_refused_with_a_clear_error(
    project: SQLiteStore, tmp_path: Path
) -> None:
    from workbench.recipes import SegmentationRecipe

    with pytest.raises(LoopError, match="SegmentationRecipe cannot train a classification"):
        ActiveLearningLoop(project, recipe=SegmentationRecipe())
    store = create_project(
        tmp_path / "seg", ProjectConfig("seg", Task.SEGMENTATION, ("background", "organ"))
    )
    assert isinstance(ActiveLearningLoop(store).recipe, SegmentationRecipe)


def test_cli_query_train_query(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`workbench query` (cold start), labels, `workbench train`, `workbench query` again."""
    from workbench.cli import main
    from workbench.store import open_project

    project = tmp_path / "p"
    assert (
        main(["init", str(project), "--task", "classification", "--classes", "malignant", "benign"])
        == 0
    )
    assert main(["import", str(project), str(DEMO_NPZ), "--labels-as-ground-truth"]) == 0
    assert (
        main(
            [
                "query",
                str(project),
                "--strategy",
                "entropy",
                "--batch",
                "16",
                "--contrastive-steps",
                "10",
            ]
        )
        == 0
    )  # the typical cold start, by default
    assert "self-supervised features: 10/10" in capsys.readouterr().err  # its progress
    with open_project(project) as store:
        assert store.list_rounds()[0].strategy == "cold_start_typical"
        label_served(store, "ann", 16)
    capsys.readouterr()
    assert main(["train", str(project), "--tta"]) == 1  # flips are for segmentation
    for flag in ("--epochs", "--patience", "--batch-size", "--mc-samples", "--features"):
        with pytest.raises(SystemExit) as exit_:  # -1 epochs: Lightning would not stop
            main(["train", str(project), flag, "-1"])
        assert exit_.value.code == 2
        assert f"argument {flag}: -1: must be 1 or more" in capsys.readouterr().err
    assert (
        main(["train", str(project), "--epochs", "2", "--patience", "3", "--label-budget", "16"])
        == 0
    )
    err = capsys.readouterr().err
    assert "training on cpu (32-true)" in err  # where it trains (no GPU)
    assert "the loop can stop: label budget reached (16 >= 16)" in err
    assert "training (epochs): 2/2" in err  # progress, as plain lines outside a terminal
    assert "trunk started from the self-supervised encoder of cold-start round 1" in " ".join(
        err.split()
    )  # rich wraps
    assert main(["query", str(project), "--strategy", "power_bald", "--batch", "8"]) == 0
    assert main(["query", str(project), "--batch", "8"]) == 0  # the default strategy
    assert (
        main(["query", str(project), "--strategy", "class_balanced_power_bald", "--batch", "8"])
        == 0
    )  # through the model: MC probabilities of the pool
    assert main(["query", str(project), "--strategy", "power_bald:beta=4", "--batch", "8"]) == 0
    assert main(["query", str(project), "--strategy", "no_such", "--batch", "8"]) == 1
    assert main(["query", str(project), "--strategy", "power_bald:beta=-1", "--batch", "8"]) == 1
    assert "beta must be a finite number >= 0, got -1" in " ".join(
        capsys.readouterr().err.split()
    )  # rich wraps
    with open_project(project) as store:
        rounds = store.list_rounds()
        assert [r.status for r in rounds] == [RoundStatus.DONE] * 5 + [RoundStatus.FAILED] * 2
        assert rounds[4].strategy == "power_bald" and rounds[4].params["beta"] == 4  # provenance
        trained = store.list_model_versions()[0].params
        assert trained["max_epochs"] == 2 and trained["patience"] == 3  # how it was trained
        assert rounds[1].strategy == "power_bald" and len(rounds[1].selected) == 8
        assert rounds[2].strategy == "power_bald"
        assert rounds[3].strategy == "class_balanced_power_bald"
        labelled = {v.item_id for v in store.current_labels()}
        for round_ in rounds[1:4]:
            assert len(set(round_.selected)) == 8 and not labelled & set(round_.selected)
        entropies = store.get_scores(store.list_model_versions()[-1].id, "entropy")
        assert len(entropies) == 546 - 16
        loop = ActiveLearningLoop(store)
        mean = np.mean([entropies[item.id] for item in loop.pool()])
        assert loop.stop_reason(StoppingCriteria(plateau_rounds=None)) is None
        above = StoppingCriteria(plateau_rounds=None, min_mean_uncertainty=float(mean) + 1e-3)
        assert loop.stop_reason(above) == (
            f"mean pool uncertainty {mean:.4f} is below {float(mean) + 1e-3}"
        )
        below = StoppingCriteria(plateau_rounds=None, min_mean_uncertainty=float(mean) - 1e-3)
        assert loop.stop_reason(below) is None


def test_cli_train_nice_trains_at_that_niceness(project: SQLiteStore) -> None:
    """`workbench train --nice N` lowers its own CPU priority to niceness N and still trains."""
    import os
    import subprocess
    import sys

    label_served(project, "ann", 12)
    code = (
        "import os, sys; from workbench.cli import main; rc = main(sys.argv[1:]); "
        "print('NICENESS', os.nice(0)); sys.exit(rc)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, "train", str(project.root), "--epochs", "1", "--nice", "7"],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert f"NICENESS {max(7, os.nice(0))}" in done.stdout
    assert [m.status for m in project.list_model_versions()] == [ModelStatus.READY]


def test_a_spatial_reduction_is_refused_on_a_classification_project(project: SQLiteStore) -> None:
    with pytest.raises(LoopError, match="'reduction'.*classification project"):
        ActiveLearningLoop(project, recipe=FAST).query("entropy", 3, reduction="mean")
    assert project.list_rounds() == []  # nothing recorded for a refused request


def test_a_degenerate_model_is_flagged_and_the_user_warned(project: SQLiteStore) -> None:
    loop = ActiveLearningLoop(
        project, recipe=dataclasses.replace(FAST, network=one_class_network, restarts=1)
    )
    loop.query("random", 24, seed=0)
    label_served(project, "ann", 24)
    with pytest.warns(UserWarning, match="no better than chance .* after 2 training"):
        model = loop.train(seed=0)
    assert model.status is ModelStatus.READY  # recorded, flagged, a person decides
    stored = next(m for m in project.list_model_versions() if m.id == model.id)
    assert stored.metrics["degenerate"] == 1.0 and stored.metrics["attempts"] == 2.0


def test_the_first_classifier_starts_from_the_typical_cold_starts_encoder(
    project: SQLiteStore,
) -> None:
    """The typical cold start keeps its encoder; the project's first model starts its trunk
    there (with a zero learning rate it stays there), says so in its params, and the next
    model warm-starts from the first instead."""
    from workbench.loop._encoder import encoder_path

    frozen = dataclasses.replace(FAST, lr=0.0, weight_decay=0.0)
    loop = ActiveLearningLoop(project, recipe=frozen, contrastive_steps=10)
    first = loop.query("power_bald", 12, seed=2)
    assert first.strategy == "cold_start_typical"
    saved = torch.load(encoder_path(project, first.id), weights_only=True)
    assert (saved["spatial_dims"], saved["in_channels"]) == (2, 1)
    label_served(project, "ann", 12)
    model = loop.train(seed=0)
    assert model.params["trunk_from_round"] == first.id
    weights = torch.load(model.checkpoint or "", weights_only=True)["state_dict"]
    learned = [k for k in saved["trunk_state"] if k.endswith(("weight", "bias"))]
    assert learned and all(
        torch.equal(weights[f"trunk.{k}"], saved["trunk_state"][k]) for k in learned
    )
    assert "trunk_from_round" not in loop.train(seed=1).params  # warm start from model 1

    fresh = ActiveLearningLoop(
        project, recipe=dataclasses.replace(frozen, warm_start=False), ssl_init=False
    )
    scratch = fresh.train(seed=0)
    assert "trunk_from_round" not in scratch.params
    weights = torch.load(scratch.checkpoint or "", weights_only=True)["state_dict"]
    assert not torch.equal(weights[f"trunk.{learned[0]}"], saved["trunk_state"][learned[0]])


def test_any_network_whose_trunk_takes_the_encoder_starts_from_it(project: SQLiteStore) -> None:
    """Not only `small_cnn` itself: a variant with the same trunk starts from the encoder, one
    whose trunk differs trains from random weights, with no error."""
    loop = ActiveLearningLoop(project, recipe=FAST, contrastive_steps=5)
    first = loop.query("power_bald", 12, seed=2)
    label_served(project, "ann", 12)
    same_trunk = dataclasses.replace(
        FAST, network=functools.partial(small_cnn, dropout=0.3), warm_start=False
    )
    model = ActiveLearningLoop(project, recipe=same_trunk).train(seed=0)
    assert model.params["trunk_from_round"] == first.id
    wider = dataclasses.replace(same_trunk, network=functools.partial(small_cnn, hidden=64))
    other = ActiveLearningLoop(project, recipe=wider).train(seed=0)
    assert other.status is ModelStatus.READY and "trunk_from_round" not in other.params


def test_a_kcenter_cold_start_keeps_no_encoder(project: SQLiteStore) -> None:
    loop = ActiveLearningLoop(project, recipe=FAST)
    round_ = loop.query("bald", 8, seed=0, cold_start="kcenter")
    assert round_.strategy == "cold_start_kcenter"
    assert not list((project.root / "checkpoints").glob("encoder-*"))
    label_served(project, "ann", 8)
    assert "trunk_from_round" not in loop.train(seed=0).params
