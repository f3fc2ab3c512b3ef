"""The active-learning loop on a project: train -> score -> select; serving reads the store.

Every step writes its outcome to the store: a model version (training / ready / failed, with
the exact label versions it was trained on), predictions and scores per item for that version,
and a round with its selection. A failure marks the model version or round failed with the
message and leaves labels and earlier models as they were, so the loop can simply be run again.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from torch import Tensor

from workbench.errors import WorkbenchError
from workbench.loop._images import ImageLoader, item_images
from workbench.loop._persist import load_weights, save_weights
from workbench.loop._stopping import StoppingCriteria
from workbench.models import ModelError
from workbench.recipes import (
    ClassificationRecipe,
    TrainedModel,
    embed,
    predict_probs,
    train_classifier,
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
    bald,
    downsample,
    entropy,
    get_strategy,
    least_confidence,
    margin,
    select_cold_start,
)

Progress = Callable[[str, int, int | None], None]
SCORED_STRATEGIES = ("entropy", "bald", "margin", "least_confidence")
MIN_LABELS = 4


class LoopError(WorkbenchError):
    """A loop step could not run (too few labels, unsupported task, model failure)."""

    code = "loop_error"


@dataclass(frozen=True)
class _Labelled:
    items: list[Item]
    labels: list[LabelVersion]
    classes: np.ndarray


class ActiveLearningLoop:
    """Train, score and select on a classification project, recording everything in the store."""

    def __init__(self, store: SQLiteStore, *, recipe: ClassificationRecipe | None = None,
                 image_loader: ImageLoader | None = None, score_chunk: int = 4096) -> None:
        if store.config.task is not Task.CLASSIFICATION:
            raise LoopError("the loop trains classification projects; segmentation projects "
                            "can be simulated ('workbench simulate') but not yet trained here",
                            path=store.root, field="task")
        self.store = store
        self.recipe = recipe or ClassificationRecipe()
        self.score_chunk = score_chunk
        self._loader_kwargs = {"loader": image_loader} if image_loader else {}
        self._size: tuple[int, ...] | None = None

    # data ---------------------------------------------------------------------------------
    def _images(self, items: Sequence[Item]) -> np.ndarray:
        images = item_images(items, size=self._size, **self._loader_kwargs)
        self._size = self._size or tuple(images.shape[2:])
        return images

    def _labelled(self, split: str) -> _Labelled:
        pairs = [(self.store.get_item(label.item_id), label)
                 for label in self.store.current_labels(split=split)]
        return _Labelled(items=[item for item, _ in pairs], labels=[label for _, label in pairs],
                         classes=np.array([label.class_index for _, label in pairs], np.int64))

    def pool(self) -> list[Item]:
        """Unlabelled training items (hidden ground truth does not count as a label)."""
        labelled = {label.item_id for label in self.store.current_labels()}
        return [item for item in self.store.list_items(split="train") if item.id not in labelled]

    # train --------------------------------------------------------------------------------
    def train(self, *, seed: int = 0) -> ModelVersion:
        """Train a new model version on the current human/imported labels of the train split
        (validated on the val split when it has labels of two classes)."""
        train = self._labelled("train")
        if len(train.labels) < MIN_LABELS or len(np.unique(train.classes)) < 2:
            raise LoopError(f"training needs at least {MIN_LABELS} labelled train items of two "
                            f"classes; the project has {len(train.labels)} "
                            f"({len(np.unique(train.classes))} classes)", path=self.store.root)
        val = self._labelled("val")
        use_val = len(val.labels) >= 10 and len(np.unique(val.classes)) >= 2
        trained_on = [label.id for label in train.labels + (val.labels if use_val else [])]
        params = {"network": getattr(self.recipe.network, "__name__", "network"), "seed": seed,
                  "max_epochs": self.recipe.max_epochs, "lr": self.recipe.lr,
                  "weight_decay": self.recipe.weight_decay, "warm_start": self.recipe.warm_start,
                  "labels": len(trained_on)}
        version = self.store.add_model_version(
            f"{params['network']}-{len(self.store.list_model_versions()) + 1}", params,
            trained_on=trained_on)
        try:
            x = self._images(train.items)
            if x.ndim - 2 != self.recipe.spatial_dims:
                raise ModelError(f"the project's images have {x.ndim - 2} spatial dimensions "
                                 f"but the recipe's network takes {self.recipe.spatial_dims}",
                                 field="spatial_dims")
            x_val = self._images(val.items) if use_val else None
            trained = train_classifier(
                self.recipe, x, train.classes, x_val, val.classes if use_val else None,
                seed=seed, num_classes=len(self.store.config.classes),
                init_state=self._warm_start_state())
            path = save_weights(trained, checkpoints_dir(self.store) / f"model-{version.id}.pt",
                                in_channels=int(x.shape[1]))
        except (WorkbenchError, RuntimeError, ValueError) as error:
            self.store.update_model_version(version.id, status=ModelStatus.FAILED,
                                            error=str(error))
            raise LoopError(f"training model version {version.id} failed: {error}",
                            path=self.store.root) from error
        metrics = {k: v for k, v in trained.metrics.items() if np.isfinite(v)}
        return self.store.update_model_version(version.id, status=ModelStatus.READY,
                                               checkpoint=str(path), metrics=metrics)

    def _warm_start_state(self) -> dict[str, Tensor] | None:
        if not self.recipe.warm_start:
            return None
        latest = self.latest_model()
        if latest is None or latest.checkpoint is None:
            return None
        try:
            return dict(load_weights(self._checkpoint(latest), self.recipe).state_dict)
        except WorkbenchError as error:  # unreadable weights: train from scratch, say so
            warnings.warn(f"warm start skipped: {error}", stacklevel=2)
            return None

    def latest_model(self) -> ModelVersion | None:
        ready = [m for m in self.store.list_model_versions() if m.status is ModelStatus.READY]
        return ready[-1] if ready else None

    def _checkpoint(self, model: ModelVersion) -> Path:
        if model.checkpoint is None or not Path(model.checkpoint).is_file():
            raise LoopError(f"the weights of model version {model.id} are missing",
                            path=model.checkpoint or self.store.root)
        return Path(model.checkpoint)

    def load(self, model: ModelVersion) -> TrainedModel:
        """The network of a ready model version, for scoring."""
        return load_weights(self._checkpoint(model), self.recipe)

    # score --------------------------------------------------------------------------------
    def score(self, model: ModelVersion | None = None, *,
              progress: Progress | None = None) -> int:
        """Write mean probabilities and the scores of `SCORED_STRATEGIES` for every pool item,
        streaming the pool in chunks (memory does not grow with the pool). Returns the count."""
        model = model or self._require_model()
        trained = self.load(model)
        pool = self.pool()
        for start in range(0, len(pool), self.score_chunk):
            chunk = pool[start:start + self.score_chunk]
            ids = np.array([item.id for item in chunk], np.int64)
            probs = predict_probs(trained, self._images(chunk), ids=ids)  # [n, T, C]
            mean = probs.mean(axis=1)
            self.store.add_predictions(model.id, [Prediction(item_id=item.id, probs=p)
                                                  for item, p in zip(chunk, mean, strict=True)])
            for name, values in (("entropy", entropy(probs)), ("bald", bald(probs)),
                                 ("margin", margin(probs)),
                                 ("least_confidence", least_confidence(probs))):
                self.store.add_scores(model.id, name, {
                    item.id: float(v) for item, v in zip(chunk, values, strict=True)})
            if progress:
                progress("scoring", start + len(chunk), len(pool))
        return len(pool)

    def _require_model(self) -> ModelVersion:
        model = self.latest_model()
        if model is None:
            raise LoopError("no trained model yet: run 'workbench train' first",
                            path=self.store.root)
        return model

    # select -------------------------------------------------------------------------------
    def query(self, strategy: str, k: int, *, seed: int = 0,
              **params: object) -> Round:
        """Select ``k`` pool items with ``strategy`` (any name of
        `workbench.strategies.available_strategies`); with no model yet, a cold start
        (``random`` or k-center diversity on downsampled pixels). Recorded as a round."""
        model = self.latest_model()
        cold = model is None
        name = strategy if not cold or strategy == "random" else "cold_start_kcenter"
        round_ = self.store.start_round(name, {"k": k, "seed": seed, **params},
                                        None if model is None else model.id)
        try:
            selected = self._select(name, k, seed, model, params)
        except (WorkbenchError, RuntimeError, ValueError) as error:
            self.store.finish_round(round_.id, status=RoundStatus.FAILED, error=str(error))
            raise LoopError(f"round {round_.id} failed: {error}", path=self.store.root) from error
        return self.store.finish_round(round_.id, status=RoundStatus.DONE, selected=selected)

    def _select(self, name: str, k: int, seed: int, model: ModelVersion | None,
                params: dict[str, object]) -> list[int]:
        pool = self.pool()
        rng = np.random.default_rng(seed)
        if not pool:
            return []
        if name == "cold_start_kcenter":
            images = self._images(pool)
            features = downsample(images[:, 0] if images.ndim == 4 else images, 2)
            picked = select_cold_start(features, k, method="kcenter", rng=rng).indices
            return [pool[int(i)].id for i in picked]
        chosen = get_strategy(name, **params)
        inputs: dict[str, np.ndarray] = {"labelled_mask": np.zeros(len(pool), bool)}
        if model is not None and chosen.needs:
            trained = self.load(model)
            images = self._images(pool)
            if {"probs", "mc_probs"} & set(chosen.needs):
                ids = np.array([item.id for item in pool], np.int64)
                inputs["probs"] = predict_probs(trained, images, ids=ids)
            if "embeddings" in chosen.needs:
                inputs["embeddings"] = embed(trained, images)
        result = chosen(k=k, rng=rng, **inputs)
        return [pool[int(i)].id for i in result.indices]

    # the whole step -------------------------------------------------------------------------
    def run_round(self, strategy: str, k: int, *, seed: int = 0,
                  progress: Progress | None = None) -> Round:
        """Train a new model, score the pool, and select the next ``k`` items."""
        model = self.train(seed=seed)
        self.score(model, progress=progress)
        return self.query(strategy, k, seed=seed)

    def stop_reason(self, criteria: StoppingCriteria) -> str | None:
        """Why the loop should stop now (budget, plateau, low uncertainty), or None."""
        human = [label for label in self.store.current_labels()
                 if label.source.value != "imported"]
        models = [m for m in self.store.list_model_versions() if m.status is ModelStatus.READY]
        history = [float(m.metrics.get("best_val_auc", m.metrics.get("val_auc", 0.0)))
                   for m in models]
        mean_uncertainty = None
        if models:
            scores = self.store.get_scores(models[-1].id, "entropy")
            pool_ids = {item.id for item in self.pool()}
            values = [v for item_id, v in scores.items() if item_id in pool_ids]
            mean_uncertainty = float(np.mean(values)) if values else None
        return criteria.reason_to_stop(labels=len(human), val_history=history,
                                       mean_uncertainty=mean_uncertainty)

