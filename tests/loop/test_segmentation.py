"""The store-backed loop on segmentation projects: real hippocampus MRI volumes (the bundled six
demo cases, 3D, each a different shape) and real nuclei crops (2D, shared data). A tiny U-Net
trains for one epoch; what matters is what the store records and what the annotator is shown."""

from __future__ import annotations

import dataclasses
import functools
import shutil
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from workbench.ingest import LabelPolicy, import_sources
from workbench.loop import SEGMENTATION_SCORES, ActiveLearningLoop, LoopError, default_recipe
from workbench.models import build_segmenter, default_flips
from workbench.recipes import ClassificationRecipe, SegmentationRecipe, TrainedSegmenter
from workbench.store import (
    LabelSource,
    LabelSubmission,
    ModelStatus,
    ModelVersion,
    ProjectConfig,
    RoundStatus,
    SQLiteStore,
    Task,
    create_project,
)

HIPPO = Path(__file__).resolve().parents[2] / "workbench/demo_data/hippocampus"


class Built:
    """Every network a recipe builds (trained or loaded for scoring) and its forward passes."""

    def __init__(self) -> None:
        self.nets: list[nn.Module] = []
        self.forwards: dict[int, int] = {}
        self.input_shapes: set[tuple[int, ...]] = set()  # spatial shapes the nets were given

    def count(self, net: nn.Module, inputs: tuple[Any, ...], *_: object) -> None:
        self.forwards[id(net)] = self.forwards.get(id(net), 0) + 1
        self.input_shapes.add(tuple(inputs[0].shape[2:]))

    def total(self) -> int:
        return sum(self.forwards.values())


def counted_unet(
    built: Built, *, spatial_dims: int, in_channels: int, num_classes: int
) -> nn.Module:
    net = build_segmenter(
        "unet",
        spatial_dims=spatial_dims,
        in_channels=in_channels,
        num_classes=num_classes,
        dropout=0.1,
        features=(4, 8, 16),
    )
    net.register_forward_hook(built.count)
    built.nets.append(net)
    return net


@pytest.fixture()
def built() -> Built:
    return Built()


def tiny(built: Built, spatial_dims: int = 3) -> SegmentationRecipe:
    """A 4-8-16 residual U-Net, one epoch of one step, two MC samples."""
    return SegmentationRecipe(
        network=functools.partial(counted_unet, built),
        spatial_dims=spatial_dims,
        flip_axes=tuple(range(spatial_dims)),
        max_epochs=1,
        min_steps_per_epoch=1,
        batch_size=2,
        mc_samples=2,
    )


def label_from_truth(store: SQLiteStore, item_ids: list[int]) -> None:
    """Play an annotator who draws exactly the hidden ground-truth mask."""
    for item_id in item_ids:
        truth = store.current_label(item_id, include_ground_truth=True)
        assert truth is not None and truth.mask_hash is not None
        store.submit_label(
            LabelSubmission(
                item_id=item_id,
                annotator="ann",
                source=LabelSource.HUMAN,
                mask=store.get_mask(truth.mask_hash),
            )
        )


@pytest.fixture()
def hippo(tmp_path: Path) -> SQLiteStore:
    """Six real hippocampus MRI volumes (35x51x35 to 36x48x40), labels hidden as ground truth."""
    store = create_project(
        tmp_path / "hippo",
        ProjectConfig("hippo", Task.SEGMENTATION, ("background", "anterior", "posterior")),
    )
    import_sources(store, [HIPPO], labels=LabelPolicy.GROUND_TRUTH)
    assert len({item.shape for item in store.list_items()}) == 6
    return store


def test_padding_to_one_shape_maps_back_voxel_for_voxel(hippo: SQLiteStore) -> None:
    from workbench.loop._images import centre_box, item_arrays, pad_stack, padded_shape

    items = hippo.list_items()
    arrays = item_arrays(items)  # windowed uint8 [1, *shape], each its own shape
    assert [a.shape[1:] for a in arrays] == [item.shape for item in items]
    shape = padded_shape([a.shape[1:] for a in arrays], 8)
    assert shape == (40, 56, 40)
    stacked = pad_stack(arrays, shape)
    for array, padded in zip(arrays, stacked, strict=True):
        box = centre_box(array.shape[1:], shape)
        assert np.array_equal(padded[(slice(None), *box)], array)
        assert padded.sum(dtype=np.int64) == array.sum(dtype=np.int64)  # zeros around it


def test_3d_train_score_query_and_the_annotator_sees_the_proposal(
    hippo: SQLiteStore, built: Built
) -> None:
    from workbench.widgets import AnnotationSession

    loop = ActiveLearningLoop(hippo, recipe=tiny(built), contrastive_steps=3)
    first = loop.query("bald", 3, seed=0)  # no model yet: typical scans (self-supervised)
    assert first.strategy == "cold_start_typical" and len(set(first.selected)) == 3
    label_from_truth(hippo, list(first.selected))

    model = loop.train(seed=0)
    assert model.status is ModelStatus.READY and "val_dice" in model.metrics
    assert Path(model.checkpoint or "").is_file()
    assert set(model.trained_on) == {label.id for label in hippo.current_labels(split="train")}
    assert model.params["task"] == "segmentation" and model.params["spatial_dims"] == 3
    assert model.params["device"] == "cpu" and model.params["precision"] == "32-true"

    assert loop.score(model) == 3
    pool = loop.pool()
    assert not {item.id for item in pool} & set(first.selected)
    for item in pool:
        prediction = hippo.get_prediction(model.id, item.id)
        assert prediction is not None and prediction.mask is not None
        assert prediction.mask.shape == item.shape and prediction.mask.dtype == np.uint8
        assert prediction.mask.max() < 3
        unc = prediction.uncertainty_map
        assert unc is not None and unc.shape == item.shape and unc.dtype == np.float16
        assert np.isfinite(unc).all() and unc.min() >= 0 and unc.max() <= np.log(3) + 1e-3
    for name in SEGMENTATION_SCORES:
        assert set(hippo.get_scores(model.id, name)) == {item.id for item in pool}, name
    assert {"bald_mean", "entropy_foreground_weighted", "bald_top_percentile"} <= set(
        SEGMENTATION_SCORES
    )

    passes = built.total()
    top = loop.query("bald", 2, seed=0, reduction="top_percentile")
    stochastic = loop.query("power_entropy", 2, seed=1, reduction="foreground_weighted")
    assert built.total() == passes  # selected from the stored scores: no pool prediction
    scores = hippo.get_scores(model.id, "bald_top_percentile")
    assert set(top.selected) == set(sorted(scores, key=scores.__getitem__)[-2:])
    assert set(stochastic.selected) <= {item.id for item in pool}
    loop.query("margin", 1, reduction="mean")  # not stored: the pool goes through the model
    assert built.total() > passes

    with pytest.raises(LoopError, match="does not apply to segmentation"):
        loop.query("coreset", 1)
    assert hippo.list_rounds()[-1].status is RoundStatus.FAILED

    session = AnnotationSession(hippo, "ann2")  # what the annotator is served and shown
    served = session.next()
    assert served is not None and served.id == hippo.list_rounds()[-2].selected[0]
    assert session.has_mask_proposal and session.status().model_version_id == model.id
    shown = hippo.get_prediction(model.id, served.id)
    assert shown is not None and session.mask is not None and shown.mask is not None
    assert np.array_equal(session.mask, shown.mask)
    plane = session.plane_uncertainty()
    assert plane is not None and plane.dtype == np.uint8


@pytest.mark.parametrize("tta", [False, True], ids=["mc", "mc-under-flips"])
def test_stored_masks_maps_and_scores_are_those_of_every_mc_sample(
    hippo: SQLiteStore, built: Built, tta: bool
) -> None:
    """Scoring reduces the MC samples as they come (mean and mean entropy, flip by flip) and
    never holds them all; what it stores is what the samples themselves give."""
    from workbench.loop._segment import BACKGROUND, TOP_PERCENT, iter_item_probs
    from workbench.strategies import margin, reduce_map, uncertainty_map

    label_from_truth(hippo, [item.id for item in hippo.list_items()[:3]])
    loop = ActiveLearningLoop(hippo, recipe=dataclasses.replace(tiny(built), tta=tta, mc_samples=3))
    model = loop.train(seed=0)
    assert loop.score(model) == 3
    trained = loop.load(model)
    assert isinstance(trained, TrainedSegmenter)
    pool = loop.pool()
    images = loop._arrays(pool, trained.in_channels)
    assert isinstance(loop.recipe, SegmentationRecipe)
    margins = {}
    for item, probs in iter_item_probs(trained, pool, images, loop.recipe.divisible_by):
        margins[item.id] = float(
            margin(probs[None], spatial_dims=3, reduction="top_percentile", q=25.0)[0]
        )
        assert probs.shape == (3 * (4 if tta else 1), 3, *item.shape)  # [T', C, *S]
        stored = hippo.get_prediction(model.id, item.id)
        assert stored is not None and stored.mask is not None
        assert stored.uncertainty_map is not None
        mean = probs.mean(0)
        assert (stored.mask == mean.argmax(0)).mean() > 0.999  # ties may round either way
        maps = {
            kind: uncertainty_map(probs[None], kind, spatial_dims=3) for kind in ("entropy", "bald")
        }
        np.testing.assert_allclose(
            stored.uncertainty_map.astype(np.float32), maps["entropy"][0], atol=2e-3
        )  # float16 storage
        foreground = 1.0 - mean[BACKGROUND][None]
        for kind, umap in maps.items():
            for reduction in ("mean", "foreground_weighted", "top_percentile"):
                expected = reduce_map(umap, reduction, foreground=foreground, q=TOP_PERCENT)
                got = hippo.get_scores(model.id, f"{kind}_{reduction}")[item.id]
                assert got == pytest.approx(float(expected[0]), rel=1e-4, abs=1e-6), (
                    kind,
                    reduction,
                )
    # a score the store does not keep goes through the model, also reduced as it comes
    picked = loop.query("margin", 1, reduction="top_percentile", q=25.0)
    assert list(picked.selected) == [max(margins, key=margins.__getitem__)]


def test_run_round_predicts_the_pool_once_and_warm_starts(hippo: SQLiteStore, built: Built) -> None:
    label_from_truth(hippo, [item.id for item in hippo.list_items()[:3]])
    loop = ActiveLearningLoop(hippo, recipe=tiny(built))
    loop.train(seed=0)
    warm = ActiveLearningLoop(hippo, recipe=dataclasses.replace(tiny(built), warm_start=True))
    before = len(built.nets)
    round_ = warm.run_round("power_bald", 2, seed=0)
    # built: the warm-start weights, the trained network, and the scoring network; no fourth
    # network predicts the pool again for the query, and the scoring one ran one batch
    assert len(built.nets) - before == 3
    assert built.forwards[id(built.nets[-1])] == 1
    assert round_.status is RoundStatus.DONE and len(round_.selected) == 2
    assert round_.model_version_id == warm.latest_model().id  # type: ignore[union-attr]
    assert warm.latest_model().params["warm_start"] is True  # type: ignore[union-attr]


def nuclei_crops(shared_data: Path, folder: Path) -> Path:
    """Six real nuclei crops of different sizes (RGBA) with their masks (nucleus > 0)."""
    source = shared_data / "nuclei-bbbc038"
    (folder / "images").mkdir(parents=True)
    (folder / "masks").mkdir()
    rows = ["path,label"]
    sizes = [(44, 52), (48, 40), (40, 40), (52, 44), (36, 48), (48, 48)]
    for (h, w), image in zip(sizes, sorted((source / "images").iterdir())[:6], strict=True):
        pixels = np.asarray(Image.open(image))[:h, :w]
        mask = np.asarray(Image.open(source / "labels" / image.name))[:h, :w] > 0
        Image.fromarray(pixels).save(folder / "images" / image.name)
        Image.fromarray(mask.astype(np.uint8)).save(folder / "masks" / image.name)
        rows.append(f"images/{image.name},masks/{image.name}")
    (folder / "manifest.csv").write_text("\n".join(rows) + "\n")
    return folder / "manifest.csv"


def test_2d_project_trains_and_a_3d_recipe_fails_clearly_leaving_the_rest_intact(
    tmp_path: Path, shared_data: Path, built: Built
) -> None:
    store = create_project(
        tmp_path / "nuclei", ProjectConfig("nuclei", Task.SEGMENTATION, ("background", "nucleus"))
    )
    import_sources(
        store, [nuclei_crops(shared_data, tmp_path / "crops")], labels=LabelPolicy.GROUND_TRUTH
    )
    label_from_truth(store, [item.id for item in store.list_items()[:4]])
    recipe = default_recipe(
        store,
        network=functools.partial(counted_unet, built),
        max_epochs=1,
        min_steps_per_epoch=1,
        batch_size=2,
        mc_samples=2,
    )
    assert isinstance(recipe, SegmentationRecipe) and recipe.spatial_dims == 2
    loop = ActiveLearningLoop(store, recipe=recipe)
    model = loop.train()
    assert loop.score(model) == 2
    for item in loop.pool():
        prediction = store.get_prediction(model.id, item.id)
        assert prediction is not None and prediction.mask is not None
        assert item.shape[2] == 4 and prediction.mask.shape == item.shape[:2]
        assert prediction.uncertainty_map is not None
        assert prediction.uncertainty_map.shape == item.shape[:2]

    labels = store.current_labels()
    wrong = ActiveLearningLoop(store, recipe=dataclasses.replace(recipe, spatial_dims=3))
    with pytest.raises(
        LoopError, match="images have 2 spatial dimensions but the recipe's network takes 3"
    ):
        wrong.train()
    versions = store.list_model_versions()
    assert [v.status for v in versions] == [ModelStatus.READY, ModelStatus.FAILED]
    assert "spatial dimensions" in (versions[-1].error or "")
    assert store.current_labels() == labels and Path(model.checkpoint or "").is_file()
    assert loop.latest_model() == model  # the loop resumes on the earlier model
    assert loop.query("entropy", 1, reduction="foreground_weighted").status is RoundStatus.DONE

    with pytest.raises(LoopError, match="ClassificationRecipe cannot train a segmentation"):
        ActiveLearningLoop(store, recipe=ClassificationRecipe())


@pytest.mark.parametrize("method", ["typical", "kcenter"])
def test_cold_start_on_2d_scans_of_different_shapes(
    tmp_path: Path, shared_data: Path, built: Built, method: str
) -> None:
    store = create_project(
        tmp_path / "nuclei", ProjectConfig("nuclei", Task.SEGMENTATION, ("background", "nucleus"))
    )
    import_sources(
        store, [nuclei_crops(shared_data, tmp_path / "crops")], labels=LabelPolicy.GROUND_TRUTH
    )
    label_from_truth(store, [item.id for item in store.list_items()[:2]])  # no model yet
    recipe = default_recipe(store, network=functools.partial(counted_unet, built))
    loop = ActiveLearningLoop(store, recipe=recipe, contrastive_steps=3)
    first = loop.query("bald", 2, seed=0, cold_start=method)
    assert first.strategy == f"cold_start_{method}" and first.status is RoundStatus.DONE
    pool = {item.id for item in loop.pool()}
    assert len(set(first.selected)) == 2 and set(first.selected) <= pool  # never a labelled one


def store_models(project: Path) -> list[Any]:
    from workbench.store import open_project

    with open_project(project) as store:
        return store.list_model_versions()


def test_cli_segmentation_query_train_query(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`workbench query` (cold start), labels, `workbench train` (default U-Net), then a
    `workbench query` that ranks by the scores the training run wrote."""
    from workbench.cli import main
    from workbench.store import open_project

    project = tmp_path / "hippo"
    data = tmp_path / "data"
    shutil.copytree(HIPPO, data)
    assert (
        main(["init", str(project), "--task", "segmentation", "--classes", "anterior", "posterior"])
        == 0
    )
    assert main(["import", str(project), str(data), "--labels-as-ground-truth"]) == 0
    assert main(["query", str(project), "--strategy", "bald", "--batch", "3"]) == 0
    with open_project(project) as store:
        assert store.list_rounds()[-1].strategy == "cold_start_typical"  # the default
        label_from_truth(store, list(store.list_rounds()[-1].selected))
    tiny_args = [
        "--epochs",
        "1",
        "--features",
        "4",
        "8",
        "16",
        "--batch-size",
        "1",
        "--mc-samples",
        "2",
    ]
    assert main(["train", str(project), *tiny_args, "--patch-size", "16", "18", "16"]) != 0
    assert "patch_size" in capsys.readouterr().err and not store_models(project)
    assert (
        main(["train", str(project), *tiny_args, "--patch-size", "16", "24", "16", "--tta"]) == 0
    )  # scored under flips too, over sliding windows
    assert (
        main(
            [
                "query",
                str(project),
                "--strategy",
                "power_bald",
                "--batch",
                "2",
                "--reduction",
                "foreground_weighted",
            ]
        )
        == 0
    )
    assert (
        main(["query", str(project), "--strategy", "margin", "--batch", "1", "--reduction", "mean"])
        == 0
    )  # not stored: the pool goes through the model
    assert main(["query", str(project), "--strategy", "badge", "--batch", "2"]) == 1
    with open_project(project) as store:
        model = store.list_model_versions()[-1]
        assert model.status is ModelStatus.READY and model.params["network"] == "unet_4-8-16"
        assert model.params["patch_size"] == [16, 24, 16] and model.params["tta"] is True
        loaded = ActiveLearningLoop(store).load(model)  # scored as it was trained to be
        assert isinstance(loaded, TrainedSegmenter) and loaded.flips == default_flips(3)
        rounds = store.list_rounds()
        assert [r.status for r in rounds] == [
            RoundStatus.DONE,
            RoundStatus.DONE,
            RoundStatus.DONE,
            RoundStatus.FAILED,
        ]
        assert rounds[1].params["reduction"] == "foreground_weighted"
        pool = [i for i in store.list_items() if store.current_label(i.id) is None]
        assert set(rounds[1].selected) <= {i.id for i in pool}
        assert len(store.get_scores(model.id, "bald_foreground_weighted")) == len(pool) == 3
        prediction = store.get_prediction(model.id, pool[0].id)
        assert prediction is not None and prediction.mask is not None
        assert prediction.mask.shape == pool[0].shape


def patch_round(store: SQLiteStore, built: Built) -> tuple[ActiveLearningLoop, ModelVersion]:
    """Label 3 random scans, train on (16, 24, 16) patches and score the other 3."""
    loop = ActiveLearningLoop(
        store, recipe=dataclasses.replace(tiny(built), patch_size=(16, 24, 16))
    )
    label_from_truth(store, list(loop.query("random", 3, seed=0).selected))
    model = loop.train(seed=0)
    assert loop.score(model) == 3  # with the weights loaded back from the project
    return loop, model


def test_patches_train_and_sliding_windows_score_each_scan_in_its_own_shape(
    hippo: SQLiteStore, built: Built
) -> None:
    loop, model = patch_round(hippo, built)
    assert model.status is ModelStatus.READY and "val_dice" in model.metrics
    assert model.params["patch_size"] == [16, 24, 16]  # provenance names the patch
    assert built.input_shapes == {(16, 24, 16)}  # never a whole (padded) scan
    for item in loop.pool():
        prediction = hippo.get_prediction(model.id, item.id)
        assert prediction is not None and prediction.mask is not None
        assert prediction.mask.shape == item.shape
        unc = prediction.uncertainty_map
        assert unc is not None and unc.shape == item.shape and np.isfinite(unc).all()
        assert unc.max() > 0  # MC samples differ somewhere
    assert set(hippo.get_scores(model.id, "bald_mean")) == {item.id for item in loop.pool()}


def test_patch_projects_window_each_scan_once_into_a_memory_mapped_cache(
    hippo: SQLiteStore, built: Built
) -> None:
    from workbench.loop._images import item_arrays

    loop, _ = patch_round(hippo, built)
    cache = hippo.root / "cache"
    scans = sorted((cache / "scans").glob("*.npy"))
    assert len(scans) == 3  # the labelled scans only: the pool is read from its files
    assert len(list((cache / "masks").glob("*.npy"))) == 3
    assert not list(cache.rglob("*.tmp*"))  # written atomically, nothing left behind
    items = [hippo.get_item(label.item_id) for label in hippo.current_labels()]
    cached = loop._arrays(items, cached=True)
    assert not any(isinstance(a, np.memmap) for a in loop._arrays(loop.pool(), cached=False))
    assert all(isinstance(a, np.memmap) and not a.flags.writeable for a in cached)
    for read, mapped in zip(item_arrays(items), cached, strict=True):
        np.testing.assert_array_equal(read, mapped)
    fresh = item_arrays(items)
    del cached  # (a file rewritten in place under a live map would fault; the cache replaces)
    broken = scans[0].with_suffix(".broken")
    broken.write_bytes(b"\x93NUMPY torn")  # a damaged entry is rebuilt, not fatal
    broken.replace(scans[0])
    again = loop._arrays(items, cached=True)
    assert all(np.array_equal(a, b) for a, b in zip(again, fresh, strict=True))
    stamp = {p: p.stat().st_mtime_ns for p in scans[1:]}
    loop.train(seed=1)  # a second round reads the cache: no scan is windowed or written again
    assert {p: p.stat().st_mtime_ns for p in scans[1:]} == stamp


def test_a_cache_that_cannot_be_written_costs_memory_not_the_round(
    hippo: SQLiteStore, built: Built
) -> None:
    (hippo.root / "cache").write_text("not a folder")  # as a read-only or full disk would fail
    with pytest.warns(UserWarning, match="scan cache not written"):
        loop, model = patch_round(hippo, built)
    assert model.status is ModelStatus.READY and (hippo.root / "cache").is_file()


def test_whole_scan_projects_and_custom_loaders_cache_nothing(
    hippo: SQLiteStore, built: Built
) -> None:
    assert ActiveLearningLoop(hippo, recipe=tiny(built))._cache is None
    patches = dataclasses.replace(tiny(built), patch_size=(16, 24, 16))
    assert ActiveLearningLoop(hippo, recipe=patches)._cache is not None
    custom = ActiveLearningLoop(hippo, recipe=patches, image_loader=lambda item: None)  # type: ignore[arg-type,return-value]
    assert custom._cache is None


def test_typical_cold_start_on_scans(hippo: SQLiteStore, built: Built) -> None:
    loop = ActiveLearningLoop(hippo, recipe=tiny(built), contrastive_steps=3)
    assert loop.default_cold_start == "typical"  # measured ahead of k-center on hippocampus
    first = loop.query("bald", 3, seed=1, cold_start="typical")
    assert first.strategy == "cold_start_typical" and first.status is RoundStatus.DONE
    assert len(set(first.selected)) == 3
    again = ActiveLearningLoop(hippo, recipe=tiny(built), contrastive_steps=3)
    assert again.query("bald", 3, seed=1, cold_start="typical").selected == first.selected


def test_kcenter_cold_start_on_scans_compares_small_grey_copies(
    hippo: SQLiteStore, built: Built
) -> None:
    from workbench.loop._images import item_arrays
    from workbench.strategies import downsample, select_coreset

    loop = ActiveLearningLoop(hippo, recipe=tiny(built))
    first = loop.query("bald", 3, seed=2, cold_start="kcenter")
    assert first.strategy == "cold_start_kcenter" and first.status is RoundStatus.DONE
    # by hand: every windowed scan area-resized to the pool's median shape capped at 32 per
    # axis, rounded to uint8, grey, average-pooled by 2, k-center greedy
    pool = loop.pool()
    size = tuple(min(int(side), 32) for side in np.median([i.shape[:3] for i in pool], axis=0))
    resized = [
        F.interpolate(torch.from_numpy(a).float()[None], size=size, mode="area")[0]
        for a in item_arrays(pool)
    ]
    grey = torch.stack(resized).round().clamp(0, 255).to(torch.uint8).numpy()
    pixels = downsample(grey.mean(axis=1), 2)
    by_hand = select_coreset(
        pixels.reshape(len(pixels), -1), 3, rng=np.random.default_rng(2)
    ).indices
    assert list(first.selected) == [pool[int(i)].id for i in by_hand]


def test_scoring_chunks_hold_a_bounded_number_of_voxels(hippo: SQLiteStore, built: Built) -> None:
    from workbench.loop._loop import SCORE_CHUNK_VOXELS
    from workbench.store import Item

    loop = ActiveLearningLoop(hippo, recipe=tiny(built))
    small = hippo.list_items()
    assert loop.score_chunk_for(small) == 32  # hippocampus crops: the cap
    ct = dataclasses.replace(small[0], shape=(512, 512, 200))
    assert loop.score_chunk_for([*small, ct]) == SCORE_CHUNK_VOXELS // (512 * 512 * 200) == 5
    huge: Item = dataclasses.replace(small[0], shape=(1024, 1024, 1024))
    assert loop.score_chunk_for([huge]) == 1
    assert ActiveLearningLoop(hippo, recipe=tiny(built), score_chunk=3).score_chunk_for([ct]) == 3


def test_patch_size_must_fit_the_network() -> None:
    from workbench.models import ModelError

    with pytest.raises(ModelError, match="multiple of 8"):
        SegmentationRecipe(patch_size=(16, 20, 16))
    with pytest.raises(ModelError, match="3 axes but the recipe is 2D"):
        SegmentationRecipe(spatial_dims=2, patch_size=(16, 16, 16))


def test_default_patch_size_only_for_scans_too_large_to_train_whole() -> None:
    from workbench.loop._segment import default_patch_size

    assert default_patch_size([(35, 51, 35), (128, 128, 128)], 3, 8) is None
    assert default_patch_size([(512, 512, 200)], 3, 8) == (96, 96, 96)
    assert default_patch_size([(512, 512, 41), (300, 300, 30)], 3, 16) == (96, 96, 48)
    assert default_patch_size([(1024, 1024)], 2, 8) is None
    assert default_patch_size([(4096, 3000, 3)], 2, 8) == (512, 512)  # RGB: channels last
    assert default_patch_size([], 3, 8) is None


def test_a_large_ct_project_gets_patches_by_default(tmp_path: Path, hippo: SQLiteStore) -> None:
    def patch_of(store: SQLiteStore, **changes: Any) -> tuple[int, ...] | None:
        recipe = default_recipe(store, **changes)
        assert isinstance(recipe, SegmentationRecipe)
        return recipe.patch_size

    assert patch_of(hippo) is None  # small scans train whole
    volume = np.zeros((180, 170, 90), np.int16)  # 2.75 M voxels, over 128^3
    nib.save(nib.Nifti1Image(volume, np.eye(4)), str(tmp_path / "ct.nii.gz"))
    store = create_project(
        tmp_path / "ct", ProjectConfig("ct", Task.SEGMENTATION, ("background", "organ"))
    )
    import_sources(store, [tmp_path / "ct.nii.gz"])
    assert store.list_items()[0].shape == (180, 170, 90)
    assert patch_of(store) == (96, 96, 96)
    assert patch_of(store, patch_size=(32, 32, 32)) == (32, 32, 32)


def test_the_loop_feeds_a_nifti_ct_in_the_ct_window_its_item_names(tmp_path: Path) -> None:
    import nibabel as nib

    from workbench.loop._images import item_arrays
    from workbench.store import NewItem, ProjectConfig, Task, create_project

    hu = np.full((8, 8, 4), -1000.0, np.float32)  # air, except one voxel of soft tissue
    hu[4, 4, 2] = 50.0
    path = tmp_path / "ct.nii.gz"
    nib.save(nib.Nifti1Image(hu, np.eye(4)), path)
    store = create_project(
        tmp_path / "proj", ProjectConfig("ct", Task.SEGMENTATION, ("background", "organ"))
    )
    store.add_items(
        [
            NewItem(
                key="ct",
                source_uri=str(path),
                content_hash="h",
                modality="CT",
                shape=hu.shape,
                spacing=(1.0, 1.0, 1.0),
            )
        ]
    )
    try:
        (array,) = item_arrays(store.list_items())
    finally:
        store.close()
    # soft tissue window (W350, L50): 50 HU is mid-grey, air black; the percentile window of
    # this mostly-air scan would have made both the same value
    assert array[0, 4, 4, 2] == 128 and array[0, 0, 0, 0] == 0
