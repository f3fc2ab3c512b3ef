"""The active-learning loop on a project: train -> score -> select; serving reads the store.

Every step writes its outcome to the store: a model version (training / ready / failed, with
the exact label versions it was trained on), predictions and scores per item for that version,
and a round with its selection. A failure marks the model version or round failed with the
message and leaves labels and earlier models as they were, so the loop can simply be run again.

Classification projects train a `ClassificationRecipe`, segmentation projects (2D or 3D) a
`SegmentationRecipe` (see `workbench.loop._segment` for what segmentation scoring stores). A
query with a score strategy reads the latest model's stored scores when they cover the pool, so
the pool goes through the model once per model version, not once per step.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch
from lightning.pytorch.callbacks import Callback
from torch import Tensor

from workbench.errors import WorkbenchError
from workbench.loop import _segment as seg
from workbench.loop._cold_start import COLD_STARTS, cold_start_images, cold_start_picks
from workbench.loop._encoder import KeptEncoder, latest_encoder, save_encoder
from workbench.loop._images import ImageLoader, item_arrays, item_images, load_item
from workbench.loop._persist import Recipe, Trained, load_weights, save_weights
from workbench.loop._progress import EpochProgress, Progress
from workbench.loop._ranks import global_rank, records_to_store
from workbench.loop._scan_cache import ScanCache
from workbench.loop._stopping import StoppingCriteria
from workbench.loop._yielding import YieldToAnnotators
from workbench.models import (
    ModelError,
    default_precision,
    stable_val_mask,
    training_device,
)
from workbench.recipes import (
    ClassificationRecipe,
    SegmentationRecipe,
    TrainedModel,
    TrainedSegmenter,
    UNetFactory,
    embed,
    predict_probs,
    train_classifier,
    trunk_fits,
)
from workbench.store import (
    Item,
    LabelVersion,
    ModelStatus,
    ModelVersion,
    Prediction,
    Round,
    RoundStatus,
    SQLiteStore,
    Task,
    checkpoints_dir,
)
from workbench.strategies import (
    Strategy,
    StrategyError,
    bald,
    entropy,
    get_strategy,
    least_confidence,
    margin,
    select_stochastic,
    select_top_k,
    with_spec_options,
)

SCORED_STRATEGIES = ("entropy", "bald", "margin", "least_confidence")
MIN_LABELS = 4
MIN_MASKS = 2
SCORE_CHUNK_VOXELS = 256 * 2**20
"""Voxels of segmentation scans scored per chunk by default (5 CTs of 512x512x200; the chunk's
masks and float16 maps take 3 bytes a voxel until written)."""
VAL_SPLIT_SEED = 0  # the held-out part of the train labels depends on item ids only


class LoopError(WorkbenchError):
    """A loop step could not run (too few labels, unsupported task, model failure)."""

    code = "loop_error"


@dataclass(frozen=True)
class _Labelled:
    items: list[Item]
    labels: list[LabelVersion]
    classes: np.ndarray

    def split(self, in_val: np.ndarray) -> tuple[_Labelled, _Labelled]:
        """(the items outside ``in_val`` ``[N]`` bool, those inside)."""

        def part(keep: np.ndarray) -> _Labelled:
            where = np.flatnonzero(keep)
            return _Labelled(
                [self.items[i] for i in where], [self.labels[i] for i in where], self.classes[where]
            )

        return part(~in_val), part(in_val)


def project_spatial_dims(store: SQLiteStore) -> int | None:
    """2 or 3: the spatial dimensions of the project's first item (None while it has none)."""
    items = store.list_items()
    return _spatial_dims(items[0]) if items else None


def _spatial_dims(item: Item) -> int:
    return len(item.spacing) if item.spacing else len(item.shape)


def runs_on(recipe: Recipe) -> tuple[str, str]:
    """Where a recipe trains and scores, and in which precision: ("cuda", "16-mixed") with a
    GPU, ("cpu", "32-true") without (segmentation recipes use whatever device there is)."""
    accelerator = str(getattr(recipe, "accelerator", "auto"))
    return training_device(accelerator), default_precision(accelerator)


def default_recipe(store: SQLiteStore, **changes: Any) -> Recipe:
    """The recipe for the project's task: a `ClassificationRecipe`, or a `SegmentationRecipe`
    for the project's spatial dimensions (3 when it has no items yet), with ``changes``. A
    segmentation project with scans too large to train on whole (`seg.WHOLE_SCAN_VOXELS`) gets
    a ``patch_size`` (`seg.default_patch_size`) unless ``changes`` names one."""
    if store.config.task is Task.SEGMENTATION:
        items = store.list_items()
        dims = _spatial_dims(items[0]) if items else 3
        settings: dict[str, Any] = {
            "spatial_dims": dims,
            "flip_axes": tuple(range(dims)),
            **changes,
        }
        if "patch_size" not in settings:
            divisible_by = int(settings.get("divisible_by", SegmentationRecipe.divisible_by))
            shapes = [item.shape for item in items]
            settings["patch_size"] = seg.default_patch_size(shapes, dims, divisible_by)
        return SegmentationRecipe(**settings)
    return ClassificationRecipe(**changes)


class ActiveLearningLoop:
    """Train, score and select on a classification or segmentation project, recording
    everything in the store. ``recipe`` defaults to `default_recipe`; ``score_chunk`` (pool
    items scored per step; default: `score_chunk_for`) bounds memory; ``contrastive_steps``:
    how long the self-supervised encoder of a ``typical`` cold start trains; ``ssl_init``: a
    classifier with no earlier model to warm-start from starts its trunk from that encoder,
    when the recipe's network has a trunk that takes it (`small_cnn` does;
    docs/label-efficiency.md, "Starting the classifier from the cold start's encoder")."""

    def __init__(
        self,
        store: SQLiteStore,
        *,
        recipe: Recipe | None = None,
        image_loader: ImageLoader | None = None,
        score_chunk: int | None = None,
        yield_to_annotators: bool = True,
        contrastive_steps: int = 600,
        ssl_init: bool = True,
    ) -> None:
        self.store = store
        self.recipe: Recipe = recipe if recipe is not None else default_recipe(store)
        self.segmentation = store.config.task is Task.SEGMENTATION
        if self.segmentation != isinstance(self.recipe, SegmentationRecipe):
            raise LoopError(
                f"a {type(self.recipe).__name__} cannot train a {store.config.task.value} project",
                path=store.root,
                field="recipe",
            )
        self._score_chunk = score_chunk
        self._loader: ImageLoader = image_loader or load_item
        # labelled large scans (patch recipes) are windowed once and read back memory-mapped;
        # a custom loader is the caller's own, so nothing of it is cached
        patches = isinstance(self.recipe, SegmentationRecipe) and self.recipe.patch_size
        self._cache = ScanCache(store.root) if patches and image_loader is None else None
        self._size: tuple[int, ...] | None = None
        self.yield_to_annotators = yield_to_annotators
        self.contrastive_steps = contrastive_steps
        self.ssl_init = ssl_init
        self._progress: Progress | None = None  # of the training under way
        self._trunk: dict[str, Tensor] | None = None  # where the training under way starts

    @property
    def default_cold_start(self) -> str:
        """``typical``, for classification and segmentation alike: with power-BALD after it,
        it was above a random start on PneumoniaMNIST and on hippocampus scans and level on
        BreastMNIST, where k-center on pixels was below (docs/label-efficiency.md)."""
        return "typical"

    def cold_start_method(self, strategy: str, cold_start: str | None = None) -> str | None:
        """The cold start `query` makes now for ``strategy``: ``typical`` or ``kcenter``
        (``cold_start``, else `default_cold_start`) while there is no model and the strategy is
        not ``random``, the one a ``cold_start_*`` strategy names, or None (no cold start)."""
        if cold_start is not None and cold_start not in COLD_STARTS.values():
            raise LoopError(
                f"unknown cold start {cold_start!r}; use {' or '.join(COLD_STARTS.values())}",
                path=self.store.root,
                field="cold_start",
            )
        if strategy in COLD_STARTS:
            return COLD_STARTS[strategy]
        if strategy == "random" or self.latest_model() is not None:
            return None
        return cold_start or self.default_cold_start

    # data ---------------------------------------------------------------------------------
    def _images(self, items: Sequence[Item]) -> np.ndarray:
        images = item_images(items, size=self._size, loader=self._loader)
        self._size = self._size or tuple(images.shape[2:])
        return images

    def _arrays(
        self, items: Sequence[Item], channels: int | None = None, *, cached: bool = False
    ) -> list[np.ndarray]:
        """Windowed scans; ``cached`` (labelled scans, read every round) through the project's
        scan cache where it has one. The pool is read from its files: caching it would put a
        second copy of every scan on disk to save one decode per round."""
        cache = self._cache if cached else None
        return item_arrays(items, channels=channels, cache=cache, loader=self._loader)

    def _labelled(self, split: str) -> _Labelled:
        pairs = [
            (self.store.get_item(label.item_id), label)
            for label in self.store.current_labels(split=split)
        ]
        classes = [-1 if label.class_index is None else label.class_index for _, label in pairs]
        return _Labelled(
            items=[item for item, _ in pairs],
            labels=[label for _, label in pairs],
            classes=np.array(classes, np.int64),
        )  # -1: a mask, not a class

    def _masks(self, labels: Sequence[LabelVersion]) -> list[np.ndarray]:
        dtype = np.uint8 if len(self.store.config.classes) <= 256 else np.int32
        missing = [label.item_id for label in labels if label.mask_hash is None]
        if missing:
            raise ModelError(f"items {missing[:10]} are labelled without a mask", field="mask")
        if self._cache is None:
            return [self.store.get_mask(str(label.mask_hash)).astype(dtype) for label in labels]
        cache = self._cache
        return [
            cache.mask(
                str(label.mask_hash),
                np.dtype(dtype),
                partial(self._read_mask, str(label.mask_hash), np.dtype(dtype)),
            )
            for label in labels
        ]

    def _read_mask(self, mask_hash: str, dtype: np.dtype) -> np.ndarray:
        return self.store.get_mask(mask_hash).astype(dtype)

    def pool(self) -> list[Item]:
        """Unlabelled training items (hidden ground truth does not count as a label)."""
        labelled = {label.item_id for label in self.store.current_labels()}
        return [item for item in self.store.list_items(split="train") if item.id not in labelled]

    # train --------------------------------------------------------------------------------
    def train(self, *, seed: int = 0, progress: Progress | None = None) -> ModelVersion:
        """Train a new model version on the current human/imported labels of the train split
        (validated on the val split when it has enough labels: ten of two classes for
        classification, one mask for segmentation; else on a part of the train labels chosen by
        hashed item id, listed in the version's ``params["val_item_ids"]``). ``progress`` is
        called after each epoch with ``("training", epochs done, max epochs)``.

        With a data-parallel recipe (``devices`` or ``num_nodes`` > 1) the other processes
        take part in the training and record nothing: there ``train`` returns the version
        that process 0 records (it may not be ready yet), ``score`` scores nothing and
        ``query`` refuses (see `workbench.loop._ranks`)."""
        train = self._labelled("train")
        val = self._labelled("val")
        if self.segmentation:
            if len(train.labels) < MIN_MASKS:
                raise LoopError(
                    f"training needs at least {MIN_MASKS} labelled train items "
                    f"(masks); the project has {len(train.labels)}",
                    path=self.store.root,
                )
            use_val = len(val.labels) >= 1
        else:
            if len(train.labels) < MIN_LABELS or len(np.unique(train.classes)) < 2:
                raise LoopError(
                    f"training needs at least {MIN_LABELS} labelled train items of "
                    f"two classes; the project has {len(train.labels)} "
                    f"({len(np.unique(train.classes))} classes)",
                    path=self.store.root,
                )
            use_val = len(val.labels) >= 10 and len(np.unique(val.classes)) >= 2
        trained_on = [label.id for label in train.labels + (val.labels if use_val else [])]
        recipe = self.recipe
        params: dict[str, object] = {
            "task": self.store.config.task.value,
            "network": _network_name(recipe.network),
            "seed": seed,
            "max_epochs": recipe.max_epochs,
            "patience": recipe.patience,
            "lr": recipe.lr,
            "weight_decay": recipe.weight_decay,
            "warm_start": recipe.warm_start,
            "spatial_dims": recipe.spatial_dims,
            "mc_samples": recipe.mc_samples,
            "labels": len(trained_on),
        }
        params["device"], params["precision"] = runs_on(recipe)
        if isinstance(recipe, SegmentationRecipe):
            params["tta"] = recipe.tta
            if recipe.patch_size is not None:
                params["patch_size"] = list(recipe.patch_size)
            if isinstance(recipe.network, UNetFactory):
                params["unet_features"] = list(recipe.network.features)
                params["unet_dropout"] = recipe.network.dropout
        trunk = self._pretrained_trunk()
        if trunk is not None:
            params["trunk_from_round"] = trunk.round_id
        self._trunk = None if trunk is None else trunk.trunk_state
        self._progress = progress
        fit_train, fit_val = self._train_and_val(train, val, use_val)
        if not use_val:
            params["val_item_ids"] = sorted(item.id for item in fit_val.items)
        if not records_to_store():
            self._fit(fit_train, fit_val, seed)
            return self.store.list_model_versions()[-1]  # process 0 added it before training
        version = self.store.add_model_version(
            f"{params['network']}-{len(self.store.list_model_versions()) + 1}",
            params,
            trained_on=trained_on,
        )

        def mark_failed(message: str) -> None:
            self.store.update_model_version(version.id, status=ModelStatus.FAILED, error=message)

        with self._recorded_failure(
            mark_failed,
            f"training model version {version.id}",
            "lower the batch size (workbench train --batch-size), or train on patches "
            "for large scans (--patch-size)",
        ):
            trained, channels = self._fit(fit_train, fit_val, seed)
            path = save_weights(
                trained,
                checkpoints_dir(self.store) / f"model-{version.id}.pt",
                in_channels=channels,
            )
        metrics = {k: v for k, v in trained.metrics.items() if np.isfinite(v)}
        if metrics.get("degenerate"):
            warnings.warn(
                f"model version {version.id} ranks the validation images no better than chance "
                f"or gives all of them one class, after {int(metrics.get('attempts', 1))} "
                "training(s): treat its proposals with care and label more images of each class",
                stacklevel=2,
            )
        return self.store.update_model_version(
            version.id, status=ModelStatus.READY, checkpoint=str(path), metrics=metrics
        )

    def _train_and_val(
        self, train: _Labelled, val: _Labelled, use_val: bool
    ) -> tuple[_Labelled, _Labelled]:
        """The val split when it has enough labels; else a part of the train labels chosen by
        hashed item id (`stable_val_mask`), so an item stays on its side from round to round
        and the validation metric of successive model versions is measured on the same items
        plus the new ones."""
        if use_val:
            return train, val
        in_val = stable_val_mask(
            [item.id for item in train.items],
            self.recipe.val_fraction,
            VAL_SPLIT_SEED,
            None if self.segmentation else train.classes,
        )
        return train.split(in_val)

    def _fit(self, train: _Labelled, val: _Labelled, seed: int) -> tuple[Trained, int]:
        """Train (the recipes' Lightning files go to a temporary folder removed afterwards);
        the weights the round keeps are saved into the project (`save_weights`)."""
        return (
            self._fit_segmenter(train, val, seed)
            if self.segmentation
            else self._fit_classifier(train, val, seed)
        )

    def _callbacks(self) -> list[Callback]:
        """Training pauses between steps while someone annotates this project (one core on a
        small machine is then the annotator's; see `workbench.background`)."""
        callbacks: list[Callback] = []
        if self.yield_to_annotators:
            callbacks.append(YieldToAnnotators(self.store.root))
        if self._progress is not None:
            callbacks.append(EpochProgress(self._progress))
        return callbacks

    def _fit_classifier(self, train: _Labelled, val: _Labelled, seed: int) -> tuple[Trained, int]:
        assert isinstance(self.recipe, ClassificationRecipe)
        x = self._images(train.items)
        if x.ndim - 2 != self.recipe.spatial_dims:
            raise ModelError(
                f"the project's images have {x.ndim - 2} spatial dimensions "
                f"but the recipe's network takes {self.recipe.spatial_dims}",
                field="spatial_dims",
            )
        trained = train_classifier(
            self.recipe,
            x,
            train.classes,
            self._images(val.items),
            val.classes,
            seed=seed,
            num_classes=len(self.store.config.classes),
            init_state=self._warm_start_state(),
            trunk_state=self._trunk,
            callbacks=self._callbacks(),
        )
        return trained, int(x.shape[1])

    def _fit_segmenter(self, train: _Labelled, val: _Labelled, seed: int) -> tuple[Trained, int]:
        assert isinstance(self.recipe, SegmentationRecipe)
        images = self._arrays(train.items, cached=True)
        channels = int(images[0].shape[0])
        val_images = self._arrays(val.items, channels, cached=True)
        trained = seg.train_padded(
            self.recipe,
            images,
            self._masks(train.labels),
            val_images,
            self._masks(val.labels),
            num_classes=len(self.store.config.classes),
            seed=seed,
            init_state=self._warm_start_state(),
            callbacks=self._callbacks(),
        )
        return trained, channels

    def _pretrained_trunk(self) -> KeptEncoder | None:
        """The encoder a new classifier starts its trunk from: the newest typical cold start's,
        when ``ssl_init``, there is no ready model to warm-start from and the recipe's network
        has a trunk that takes it (`trunk_fits`: `small_cnn` does)."""
        recipe = self.recipe
        if (
            not isinstance(recipe, ClassificationRecipe)
            or not self.ssl_init
            or (recipe.warm_start and self.latest_model() is not None)
        ):
            return None
        kept = latest_encoder(self.store, spatial_dims=recipe.spatial_dims)
        if kept is None or not trunk_fits(
            recipe.network,
            kept.trunk_state,
            spatial_dims=recipe.spatial_dims,
            in_channels=kept.in_channels,
            num_classes=len(self.store.config.classes),
        ):
            return None
        return kept

    def _warm_start_state(self) -> dict[str, Tensor] | None:
        if not self.recipe.warm_start:
            return None
        latest = self.latest_model()
        if latest is None or latest.checkpoint is None:
            return None
        try:
            return dict(load_weights(self._checkpoint(latest), self.recipe).state_dict)
        except WorkbenchError as error:  # unreadable weights: train from scratch, say so
            warnings.warn(f"warm start skipped: {error}", stacklevel=3)
            return None

    def latest_model(self) -> ModelVersion | None:
        ready = [m for m in self.store.list_model_versions() if m.status is ModelStatus.READY]
        return ready[-1] if ready else None

    def _checkpoint(self, model: ModelVersion) -> Path:
        if model.checkpoint is None or not Path(model.checkpoint).is_file():
            raise LoopError(
                f"the weights of model version {model.id} are missing",
                path=model.checkpoint or self.store.root,
            )
        return Path(model.checkpoint)

    def load(self, model: ModelVersion) -> Trained:
        """The network of a ready model version, for scoring (a segmenter with the test-time
        augmentation its version was scored with)."""
        return load_weights(self._checkpoint(model), self._recipe_of(model))

    def _recipe_of(self, model: ModelVersion) -> Recipe:
        """This loop's recipe with what a segmentation version records of how it was trained
        and scored (U-Net widths, patches and sliding windows, test-time flips): a version
        trained with ``workbench train --features 4 8 16 --tta`` loads and scores as such."""
        recipe, params = self.recipe, model.params
        if not isinstance(recipe, SegmentationRecipe):
            return recipe
        changes: dict[str, Any] = {"tta": bool(params.get("tta", False))}
        if "unet_features" in params:
            features = tuple(int(f) for f in params["unet_features"])  # type: ignore[attr-defined]
            dropout = float(params.get("unet_dropout", UNetFactory.dropout))  # type: ignore[arg-type]
            changes["network"] = UNetFactory(features, dropout)
            changes["divisible_by"] = 2 ** (len(features) - 1)
        if "tta" in params:  # a version that records tta records its patch size too, if any
            patch = params.get("patch_size")
            changes["patch_size"] = tuple(patch) if patch else None  # type: ignore[arg-type]
        return replace(recipe, **changes)

    # score --------------------------------------------------------------------------------
    def score(self, model: ModelVersion | None = None, *, progress: Progress | None = None) -> int:
        """Write predictions and scores for every pool item, streaming the pool in chunks
        (memory does not grow with the pool). Returns the count.

        Classification: mean probabilities and the scores of `SCORED_STRATEGIES`.
        Segmentation: mask, entropy map and the scores of `_segment.SCORE_NAMES`.
        Scores nothing (returns 0) outside process 0 of a data-parallel run."""
        if not records_to_store():
            return 0
        model = model or self._require_model()
        trained = self.load(model)
        pool = self.pool()
        step = self.score_chunk_for(pool)
        for start in range(0, len(pool), step):
            chunk = pool[start : start + step]
            if isinstance(trained, TrainedSegmenter):
                self._score_segmentation(model, trained, chunk)
            else:
                self._score_classification(model, trained, chunk)
            if progress:
                progress("scoring", start + len(chunk), len(pool))
        return len(pool)

    def score_chunk_for(self, pool: Sequence[Item]) -> int:
        """Pool items scored (and held) per step: as given, else 4096 images, or as many
        segmentation scans (at most 32) as fit `SCORE_CHUNK_VOXELS`: a chunk's masks and
        uncertainty maps are kept until it is written."""
        if self._score_chunk:
            return self._score_chunk
        if not self.segmentation:
            return 4096
        largest = max((int(np.prod(item.shape)) for item in pool), default=1)
        return int(min(32, max(1, SCORE_CHUNK_VOXELS // max(largest, 1))))

    def _score_classification(
        self, model: ModelVersion, trained: TrainedModel, chunk: Sequence[Item]
    ) -> None:
        ids = np.array([item.id for item in chunk], np.int64)
        probs = predict_probs(trained, self._images(chunk), ids=ids)  # [n, T, C]
        mean = probs.mean(axis=1)
        self.store.add_predictions(
            model.id,
            [Prediction(item_id=item.id, probs=p) for item, p in zip(chunk, mean, strict=True)],
        )
        for name, values in (
            ("entropy", entropy(probs)),
            ("bald", bald(probs)),
            ("margin", margin(probs)),
            ("least_confidence", least_confidence(probs)),
        ):
            self.store.add_scores(
                model.id, name, {item.id: float(v) for item, v in zip(chunk, values, strict=True)}
            )

    def _score_segmentation(
        self, model: ModelVersion, trained: TrainedSegmenter, chunk: Sequence[Item]
    ) -> None:
        outcomes = [
            seg.item_outcome(item, moments)
            for item, moments in self._item_probs(trained, chunk, moments=True)
        ]
        self.store.add_predictions(
            model.id,
            [
                Prediction(item_id=o.item_id, mask=o.mask, uncertainty_map=o.uncertainty)
                for o in outcomes
            ],
        )
        for name in seg.SCORE_NAMES:
            self.store.add_scores(model.id, name, {o.item_id: o.scores[name] for o in outcomes})

    def _item_probs(
        self, trained: TrainedSegmenter, items: Sequence[Item], *, moments: bool = False
    ) -> Iterator[tuple[Item, np.ndarray]]:
        """``(item, probs [T, C, *spatial_i])`` one item at a time (one batch in memory), or
        with ``moments`` ``(item, moments [C + 1, *spatial_i])`` (`seg.iter_item_probs`)."""
        assert isinstance(self.recipe, SegmentationRecipe)
        try:
            yield from seg.iter_item_probs(
                trained,
                items,
                self._arrays(items, trained.in_channels),
                self.recipe.divisible_by,
                moments=moments,
            )
        except ModelError as error:
            raise LoopError(
                f"the pool does not fit the model: {error}", path=self.store.root
            ) from error

    def _require_model(self) -> ModelVersion:
        model = self.latest_model()
        if model is None:
            raise LoopError(
                "no trained model yet: run 'workbench train' first", path=self.store.root
            )
        return model

    # select -------------------------------------------------------------------------------
    def query(
        self,
        strategy: str,
        k: int,
        *,
        seed: int = 0,
        cold_start: str | None = None,
        progress: Progress | None = None,
        **params: object,
    ) -> Round:
        """Select ``k`` pool items with ``strategy`` (any name of
        `workbench.strategies.available_strategies`; segmentation: ``random`` and the score
        strategies, with ``reduction`` one of mean / foreground_weighted / top_percentile);
        with no model yet, a cold start: ``random`` when that is the strategy, else
        ``cold_start`` = ``typical`` (TypiClust on self-supervised features of the pool,
        `contrastive_features`; the default) or ``kcenter`` (k-center diversity on downsampled
        pixels). Recorded as a round.
        The pool is every unlabelled train item, earlier rounds' picks that nobody has labelled
        yet included: the newest round replaces the queue (`next_item` serves its selection
        first), so it may pick some of them again. For a seed, the picks repeat on the same
        torch thread count (recorded in the round's params), not across thread counts.
        Score strategies reuse the model's stored scores. ``progress`` hears of the
        self-supervised training of a typical cold start. ``strategy`` may carry keyword
        arguments as a spec, ``"power_bald:beta=4"``: the round records the name and them as
        its params."""
        strategy, params = with_spec_options(strategy, params)
        method = self.cold_start_method(strategy, cold_start)
        if not records_to_store():
            raise LoopError(
                f"this is process {global_rank()} of a data-parallel run: rounds "
                "are selected and recorded by process 0 only",
                path=self.store.root,
            )
        if "reduction" in params and not self.segmentation:
            raise LoopError(
                "'reduction' turns per-voxel uncertainty into one score per scan; "
                "this is a classification project",
                path=self.store.root,
                field="reduction",
            )
        model = self.latest_model()
        name = strategy if method is None else f"cold_start_{method}"
        # the thread count is recorded because float sums, and so the picks, depend on it
        round_ = self.store.start_round(
            name,
            {"k": k, "seed": seed, **params, "torch_threads": torch.get_num_threads()},
            None if model is None else model.id,
        )

        def mark_failed(message: str) -> None:
            self.store.finish_round(round_.id, status=RoundStatus.FAILED, error=message)

        with self._recorded_failure(
            mark_failed,
            f"round {round_.id}",
            "score fewer pool items at once (ActiveLearningLoop(score_chunk=...))",
        ):
            selected = self._select(name, k, seed, model, params, progress, round_.id)
        return self.store.finish_round(round_.id, status=RoundStatus.DONE, selected=selected)

    @contextmanager
    def _recorded_failure(
        self, mark_failed: Callable[[str], None], step: str, memory_hint: str
    ) -> Iterator[None]:
        """Run a step whose record (a model version, a round) is open: if it fails, mark the
        record failed with the reason, then raise a `LoopError` naming ``step`` (host out of
        memory: with ``memory_hint``), or let Ctrl-C / SystemExit through once recorded."""
        try:
            yield
        except MemoryError as error:
            message = f"out of host memory: {memory_hint}"
            mark_failed(message)
            raise LoopError(f"{step} failed: {message}", path=self.store.root) from error
        except (WorkbenchError, RuntimeError, ValueError) as error:
            message = str(error) or type(error).__name__  # a bare RuntimeError() says nothing
            mark_failed(message)
            raise LoopError(f"{step} failed: {message}", path=self.store.root) from error
        except BaseException as error:
            mark_failed(f"interrupted ({type(error).__name__})")
            raise

    def _strategy(self, name: str, params: dict[str, object]) -> Strategy:
        if self.segmentation:
            try:
                return get_strategy(name, spatial_dims=self.recipe.spatial_dims, **params)
            except StrategyError:
                pass  # strategies without a spatial reduction (random) take no spatial_dims
        return get_strategy(name, **params)

    def _select(
        self,
        name: str,
        k: int,
        seed: int,
        model: ModelVersion | None,
        params: dict[str, object],
        progress: Progress | None = None,
        round_id: int | None = None,
    ) -> list[int]:
        pool = self.pool()
        rng = np.random.default_rng(seed)
        if not pool:
            return []
        if name in COLD_STARTS:  # placed relative to the labels imported so far
            items = [*pool, *self._labelled("train").items]
            mask = np.arange(len(items)) >= len(pool)
            picks = self._cold_start(
                items, mask, k, rng, COLD_STARTS[name], seed, progress, round_id
            )
            return [items[int(i)].id for i in picks]
        chosen = self._strategy(name, params)
        labelled_mask: np.ndarray = np.zeros(len(pool), bool)  # the pool: unlabelled items
        if "labelled_items" in chosen.needs:  # picks placed relative to the labels so far
            labelled = self._labelled("train").items
            pool = [*pool, *labelled]
            labelled_mask = np.arange(len(pool)) >= len(pool) - len(labelled)
        if model is None or not chosen.needs:
            result = chosen(k=k, rng=rng, labelled_mask=labelled_mask)
            return [pool[int(i)].id for i in result.indices]
        scores = self._stored_scores(chosen, model, pool)
        if scores is None and self.segmentation:
            scores = self._segmentation_scores(chosen, model, pool)
        if scores is not None:
            return [pool[int(i)].id for i in _select_by_score(chosen, scores, k, rng).indices]
        trained = self.load(model)
        assert isinstance(trained, TrainedModel)
        inputs = self._strategy_inputs(chosen, trained, pool)
        result = chosen(k=k, rng=rng, labelled_mask=labelled_mask, **inputs)
        return [pool[int(i)].id for i in result.indices]

    def _strategy_inputs(
        self, chosen: Strategy, trained: TrainedModel, pool: Sequence[Item]
    ) -> dict[str, np.ndarray]:
        """MC probabilities ``[N, T, C]`` and/or embeddings ``[N, D]`` of the pool, as
        ``chosen`` needs them, computed chunk by chunk (`score_chunk_for`): only one chunk's
        images are in memory at a time."""
        parts: dict[str, list[np.ndarray]] = {}
        step = self.score_chunk_for(pool)
        for start in range(0, len(pool), step):
            chunk = pool[start : start + step]
            images = self._images(chunk)
            if {"probs", "mc_probs"} & set(chosen.needs):
                ids = np.array([item.id for item in chunk], np.int64)
                parts.setdefault("probs", []).append(predict_probs(trained, images, ids=ids))
            if "embeddings" in chosen.needs:
                parts.setdefault("embeddings", []).append(embed(trained, images))
        return {name: np.concatenate(values) for name, values in parts.items()}

    def _cold_start(
        self,
        pool: Sequence[Item],
        labelled: np.ndarray,
        k: int,
        rng: np.random.Generator,
        method: str,
        seed: int,
        progress: Progress | None,
        round_id: int | None,
    ) -> np.ndarray:
        """The cold start's picks; a classification project keeps a typical start's encoder
        (`save_encoder`) for its first model to start from."""
        images = cold_start_images(
            pool,
            segmentation=self.segmentation,
            read=self._images,
            chunk=self.score_chunk_for(pool),
            loader=self._loader,
        )
        picks, encoder = cold_start_picks(
            images,
            k,
            method=method,
            labelled=labelled,
            rng=rng,
            seed=seed,
            contrastive_steps=self.contrastive_steps,
            progress=progress,
        )
        if encoder is not None and round_id is not None and not self.segmentation:
            save_encoder(
                self.store,
                round_id,
                encoder,
                spatial_dims=images.ndim - 2,
                in_channels=int(images.shape[1]),
            )
        return picks

    def _stored_scores(
        self, chosen: Strategy, model: ModelVersion, pool: Sequence[Item]
    ) -> np.ndarray | None:
        """``[N]`` the model's stored scores that ``chosen`` ranks by, in pool order, when the
        store has them for every pool item (else None: the pool must go through the model)."""
        name = self._score_name(chosen)
        if name is None:
            return None
        stored = self.store.get_scores(model.id, name)
        if any(item.id not in stored for item in pool):
            return None
        return np.array([stored[item.id] for item in pool], np.float64)

    def _score_name(self, chosen: Strategy) -> str | None:
        """The stored score a score strategy ranks by, or None (not a score strategy, or with
        parameters no stored score was computed with)."""
        kind = getattr(chosen, "kind", None)
        if not callable(getattr(chosen, "scores", None)) or not hasattr(chosen, "mode"):
            return None
        if not self.segmentation:
            return kind if kind in SCORED_STRATEGIES else None
        reduction = getattr(chosen, "reduction", None)
        if (
            kind not in seg.SCORE_KINDS
            or reduction not in seg.REDUCTIONS
            or getattr(chosen, "background_class", seg.BACKGROUND) != seg.BACKGROUND
            or (
                reduction == "top_percentile"
                and getattr(chosen, "q", seg.TOP_PERCENT) != seg.TOP_PERCENT
            )
        ):
            return None
        return seg.score_name(str(kind), str(reduction))

    def _segmentation_scores(
        self, chosen: Strategy, model: ModelVersion, pool: Sequence[Item]
    ) -> np.ndarray:
        """``[N]`` ``chosen``'s score of every pool item, streaming the pool through the model
        (for scores the store does not hold, e.g. margin or another percentile)."""
        score = getattr(chosen, "scores", None)
        if not callable(score) or not hasattr(chosen, "mode"):
            raise LoopError(
                f"strategy {getattr(chosen, 'name', chosen)!r} does not apply to "
                "segmentation projects: use random or a score strategy (entropy, "
                "bald, margin, least_confidence, or their power_/softmax_/softrank_ "
                "forms) with reduction mean, foreground_weighted or top_percentile",
                path=self.store.root,
                field="strategy",
            )
        from_moments = getattr(chosen, "scores_from_moments", None)
        trained = self.load(model)
        assert isinstance(trained, TrainedSegmenter)
        by_id: dict[int, float] = {}
        step = self.score_chunk_for(pool)
        for start in range(0, len(pool), step):
            # the samples reduced as they come where the score allows (every built-in one)
            for item, values in self._item_probs(
                trained, pool[start : start + step], moments=callable(from_moments)
            ):
                scored = (
                    from_moments(values[None]) if callable(from_moments) else score(values[None])
                )
                by_id[item.id] = float(np.asarray(scored)[0])
        return np.array([by_id[item.id] for item in pool], np.float64)

    # the whole step -------------------------------------------------------------------------
    def run_round(
        self, strategy: str, k: int, *, seed: int = 0, progress: Progress | None = None
    ) -> Round:
        """Train a new model, score the pool once, and select the next ``k`` items (score
        strategies select from the scores just written)."""
        model = self.train(seed=seed)
        self.score(model, progress=progress)
        return self.query(strategy, k, seed=seed)

    def stop_reason(self, criteria: StoppingCriteria) -> str | None:
        """Why the loop should stop now (budget, plateau, low uncertainty), or None."""
        human = [label for label in self.store.current_labels() if label.source.value != "imported"]
        models = [m for m in self.store.list_model_versions() if m.status is ModelStatus.READY]
        metric = "val_dice" if self.segmentation else "val_auc"
        history = [
            float(m.metrics.get(f"best_{metric}", m.metrics.get(metric, 0.0))) for m in models
        ]
        mean_uncertainty = None
        if models:
            name = seg.score_name("entropy", "mean") if self.segmentation else "entropy"
            scores = self.store.get_scores(models[-1].id, name)
            pool_ids = {item.id for item in self.pool()}
            values = [v for item_id, v in scores.items() if item_id in pool_ids]
            mean_uncertainty = float(np.mean(values)) if values else None
        return criteria.reason_to_stop(
            labels=len(human), val_history=history, mean_uncertainty=mean_uncertainty
        )


def _select_by_score(chosen: Strategy, scores: np.ndarray, k: int, rng: np.random.Generator) -> Any:
    """What a score strategy selects given its scores ``[N]`` (top-k or stochastic, as its
    ``mode`` says), without the probabilities it would compute them from."""
    mode: Any = getattr(chosen, "mode", None)
    unlabelled = np.zeros(len(scores), bool)
    if mode not in ("power", "softmax", "softrank"):
        return select_top_k(scores, k, labelled_mask=unlabelled, rng=rng)
    return select_stochastic(
        scores,
        k,
        mode=mode,
        beta=float(getattr(chosen, "beta", 1.0)),
        labelled_mask=unlabelled,
        rng=rng,
    )


def _network_name(factory: object) -> str:
    """A network factory's name for the model version: its ``name`` or function name."""
    return str(
        getattr(factory, "name", None)
        or getattr(factory, "__name__", None)
        or type(factory).__name__
    )
