"""Datasets and a LightningDataModule over in-memory arrays with stable item ids."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import lightning as L
import monai.transforms as mt
import numpy as np
import torch
from monai.utils import convert_to_tensor
from torch import Tensor
from torch.utils.data import DataLoader, Dataset, WeightedRandomSampler

from workbench.models._dropout import _M32, _mix32, item_keys
from workbench.models._errors import ModelError
from workbench.models._sharding import RankShardSampler, rank_and_world

ArrayLike = np.ndarray | Sequence[np.ndarray]
Task = Literal["classification", "segmentation"]
Transform = Callable[[Any], Any]


def _as_image(array: np.ndarray, spatial_dims: int, scale_uint8: bool = True) -> Tensor:
    """[*spatial] or [C, *spatial] -> float [C, *spatial], uint8 scaled to [0, 1]; with
    ``scale_uint8=False`` uint8 stays uint8."""
    if array.ndim == spatial_dims:
        array = array[None]
    if array.ndim != spatial_dims + 1:
        raise ModelError(
            f"expected {spatial_dims}D images shaped [*spatial] or [C, *spatial], "
            f"got an item of shape {array.shape}"
        )
    tensor = torch.from_numpy(np.ascontiguousarray(array))
    if array.dtype == np.uint8 and not scale_uint8:
        return tensor.clone()  # its own memory, as the scaled one has
    return tensor.float().div_(255.0) if array.dtype == np.uint8 else tensor.float()


class ArrayDataset(Dataset[dict[str, Any]]):
    """Items ``{"image": float [C, *spatial], "label": ..., "id": ...}`` from arrays.

    ``images`` is an array [N, *spatial] / [N, C, *spatial] or a list of per-item arrays
    (3D volumes of different shapes); uint8 is scaled to [0, 1]. ``labels`` are class indices
    [N] / [N, 1] or masks per item; ``ids`` default to positions. ``transform`` is a MONAI
    dictionary transform over "image" (and "label" for masks). `batch` fetches many items at once.
    With ``scale_uint8=False`` (and no transform), uint8 images are handed over unscaled, for
    a consumer that scales them where they land (`mc_predict` and the modules' steps do): 4x
    less to copy to a GPU.
    """

    def __init__(
        self,
        images: ArrayLike,
        labels: ArrayLike | None = None,
        ids: Sequence[Any] | np.ndarray | None = None,
        *,
        spatial_dims: int = 2,
        transform: Transform | None = None,
        scale_uint8: bool = True,
    ) -> None:
        self.images = images
        self.scale_uint8 = scale_uint8
        self.labels = labels
        self.ids = np.arange(len(images)) if ids is None else np.asarray(ids)
        self.spatial_dims = spatial_dims
        self.transform = transform
        if len(self.ids) != len(images) or (labels is not None and len(labels) != len(images)):
            raise ModelError(
                f"{len(images)} images, {len(self.ids)} ids and "
                f"{'no' if labels is None else len(labels)} labels: lengths differ"
            )
        if len(images) and np.ndim(images[0]) not in (spatial_dims, spatial_dims + 1):
            raise ModelError(
                f"images of shape {np.shape(images[0])} per item do not fit spatial_dims="
                f"{spatial_dims}"
            )

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, index: int) -> dict[str, Any]:
        item: dict[str, Any] = {
            "image": _as_image(
                np.asarray(self.images[index]),
                self.spatial_dims,
                self.scale_uint8 or self.transform is not None,
            )
        }
        if self.labels is not None:
            label = np.asarray(self.labels[index])
            if label.ndim >= self.spatial_dims:  # a mask
                item["label"] = torch.from_numpy(label.astype(np.int64)).reshape(
                    1, *label.shape[-self.spatial_dims :]
                )
            else:
                item["label"] = torch.tensor(int(label.reshape(-1)[0]))
        if self.transform is not None:
            item = {
                k: convert_to_tensor(v, track_meta=False) for k, v in self.transform(item).items()
            }
        item["id"] = self.ids[index].item()
        return item

    def batch(self, indices: Sequence[int]) -> dict[str, Any]:
        """Many items as one batch; one array index when there is no transform."""
        out: dict[str, Any]
        if self.transform is not None or not isinstance(self.images, np.ndarray):
            items = [self[i] for i in indices]
            out = {k: torch.stack([it[k] for it in items]) for k in items[0] if k != "id"}
            out["id"] = (
                torch.as_tensor(self.ids[list(indices)])
                if self.ids.dtype.kind in "iub"
                else [it["id"] for it in items]
            )
            return out
        idx = np.asarray(indices)
        images = np.array(self.images[_as_slice(idx)], order="C")  # a copy, never a view
        if images.ndim == self.spatial_dims + 1:
            images = images[:, None]
        x = torch.from_numpy(images)
        if images.dtype == np.uint8:
            out = {"image": x.float().div_(255.0) if self.scale_uint8 else x}
        else:
            out = {"image": x.float()}
        if self.labels is not None:
            labels = np.asarray(self.labels)[idx]
            if labels.ndim - 1 >= self.spatial_dims:  # masks [B, (1,) *S] -> [B, 1, *S]
                shape = (len(idx), 1, *labels.shape[-self.spatial_dims :])
                out["label"] = torch.from_numpy(labels.astype(np.int64)).reshape(shape)
            else:
                out["label"] = torch.from_numpy(labels.reshape(len(idx), -1)[:, 0])
        ids = self.ids[idx]
        out["id"] = torch.from_numpy(ids.astype(np.int64)) if ids.dtype.kind in "iub" else list(ids)
        return out


def _as_slice(idx: np.ndarray) -> slice | np.ndarray:
    """A run of consecutive indices as a slice (3x faster to copy out than an index array);
    any other as it is."""
    if len(idx) and idx[0] >= 0 and np.array_equal(idx, np.arange(idx[0], idx[0] + len(idx))):
        return slice(int(idx[0]), int(idx[0]) + len(idx))
    return idx


class _Batched(Dataset[dict[str, Any]]):
    """Lets a DataLoader fetch a whole batch with one call (``__getitems__``)."""

    def __init__(self, dataset: ArrayDataset) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> dict[str, Any]:
        return self.dataset[index]

    def __getitems__(self, indices: list[int]) -> dict[str, Any]:
        return self.dataset.batch(indices)


def _identity(batch: Any) -> Any:
    return batch


def batch_loader(dataset: ArrayDataset, batch_size: int, **kwargs: Any) -> DataLoader[Any]:
    """A sequential DataLoader that fetches each batch with one array index."""
    return DataLoader(
        _Batched(dataset), batch_size=batch_size, shuffle=False, collate_fn=_identity, **kwargs
    )


def split_fraction(ids: Sequence[Any] | np.ndarray, seed: int) -> np.ndarray:
    """A value in [0, 1) per id, hashed from (seed, id): a split by threshold is stable when
    items are added or removed.  # [N]"""
    keys = item_keys(np.asarray(ids))
    mixed = _mix32((_mix32((keys ^ (keys >> 32)) & _M32) + _mix32(torch.tensor(seed))) & _M32)
    return mixed.numpy().astype(np.float64) / 2.0**32


def stable_val_mask(
    ids: Sequence[Any] | np.ndarray, fraction: float, seed: int, labels: np.ndarray | None = None
) -> np.ndarray:
    """A val mask ``[N]`` that keeps each item on its side as items are added: an item is in
    val when its `split_fraction` is below ``fraction``. Each class (of ``labels`` ``[N]``;
    one group without them) with two or more items keeps at least one val and one training
    item (those with the lowest / highest value); a class of one item trains."""
    value = split_fraction(ids, seed)
    mask = value < fraction
    groups = (
        [np.arange(len(value))]
        if labels is None
        else [np.flatnonzero(np.asarray(labels).reshape(-1) == c) for c in np.unique(labels)]
    )
    for group in groups:
        if len(group) < 2:
            mask[group] = False
            continue
        if not mask[group].any():
            mask[group[np.argmin(value[group])]] = True
        if mask[group].all():
            mask[group[np.argmax(value[group])]] = False
    return mask


def augmentations(task: Task, spatial_dims: int, roi_size: Sequence[int] | None) -> mt.Compose:
    """Per-item training augmentation: flips and intensity jitter; for segmentation, pad +
    random crop to ``roi_size`` with image and mask flipped together. (Small rotations for 2D
    classification are applied per batch, see `rotate_batch`.)"""
    keys = ["image", "label"] if task == "segmentation" else ["image"]
    steps: list[Any] = []
    if task == "segmentation" and roi_size is not None:
        steps += [mt.SpatialPadd(keys, roi_size), mt.RandSpatialCropd(keys, roi_size)]
    axes = [1] if task == "classification" and spatial_dims == 2 else list(range(spatial_dims))
    steps += [mt.RandFlipd(keys, prob=0.5, spatial_axis=a) for a in axes]
    steps += [
        mt.RandScaleIntensityd("image", factors=0.1, prob=0.5),
        mt.RandShiftIntensityd("image", offsets=0.1, prob=0.5),
    ]
    return mt.Compose(steps)


def rotate_batch(
    x: Tensor, max_radians: float, generator: torch.Generator, p: float = 0.5
) -> Tensor:
    """Rotate each 2D image by a random angle in [-max, max] with probability ``p``: one
    grid-sample for the whole batch (per-item MONAI rotation costs ~20 ms a 28x28 image on CPU).
    # [B, C, H, W] -> [B, C, H, W]"""
    b = x.shape[0]
    angle = (torch.rand(b, generator=generator) * 2 - 1) * max_radians
    angle = torch.where(torch.rand(b, generator=generator) < p, angle, torch.zeros(()))
    cos, sin = angle.cos(), angle.sin()
    theta = torch.stack(
        [torch.stack([cos, -sin, torch.zeros(b)], 1), torch.stack([sin, cos, torch.zeros(b)], 1)], 1
    ).to(x)  # [B, 2, 3]
    grid = torch.nn.functional.affine_grid(theta, list(x.shape), align_corners=False)
    return torch.nn.functional.grid_sample(x, grid, padding_mode="zeros", align_corners=False)


@dataclass(frozen=True)
class Arrays:
    """Images, labels (None for the pool) and stable item ids."""

    images: ArrayLike
    labels: ArrayLike | None
    ids: np.ndarray


class ArrayDataModule(L.LightningDataModule):
    """Labelled arrays split into train/val by a seeded hash of each id (stable across rounds),
    and an unlabelled pool served by `predict_dataloader`.

    Subclasses (e.g. one over the project store) override `load_labelled` and `load_pool`;
    `setup` calls them, so every round sees the current labels.

    With several processes the pool is scored in disjoint shards, but training is Lightning's
    usual data parallelism (a DistributedSampler: ``batch_size`` per process, per-process
    randomness), not equal to one process; the recipes' `SplitDataModule` is.
    """

    def __init__(
        self,
        images: ArrayLike | None = None,
        labels: ArrayLike | None = None,
        ids: Sequence[Any] | np.ndarray | None = None,
        *,
        pool_images: ArrayLike | None = None,
        pool_ids: Sequence[Any] | np.ndarray | None = None,
        task: Task = "classification",
        spatial_dims: int = 2,
        val_fraction: float = 0.2,
        batch_size: int = 32,
        predict_batch_size: int = 256,
        augment: bool = True,
        balance: bool = False,
        roi_size: Sequence[int] | None = None,
        seed: int = 0,
        num_workers: int = 0,
    ) -> None:
        super().__init__()
        self.save_hyperparameters(ignore=["images", "labels", "ids", "pool_images", "pool_ids"])
        self._labelled = (
            None
            if images is None
            else Arrays(images, labels, np.arange(len(images)) if ids is None else np.asarray(ids))
        )
        self._pool = (
            None
            if pool_images is None
            else Arrays(
                pool_images,
                None,
                np.arange(len(pool_images)) if pool_ids is None else np.asarray(pool_ids),
            )
        )
        self.train_set: ArrayDataset | None = None
        self.val_set: ArrayDataset | None = None
        self.pool_set: ArrayDataset | None = None
        self._rotation = torch.Generator().manual_seed(seed)

    def on_after_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        """Batched random rotation (±15°) of 2D classification training batches."""
        hp = self.hparams
        trainer = self.trainer
        training = trainer is not None and trainer.training
        if (
            training
            and hp["augment"]
            and hp["task"] == "classification"
            and hp["spatial_dims"] == 2
        ):
            batch["image"] = rotate_batch(batch["image"], 0.26, self._rotation)
        return batch

    def load_labelled(self) -> Arrays:
        """The labelled items (override to read them from elsewhere)."""
        if self._labelled is None or self._labelled.labels is None:
            raise ModelError("no labelled images were given")
        return self._labelled

    def load_pool(self) -> Arrays | None:
        """The unlabelled pool, or None (override to read it from elsewhere)."""
        return self._pool

    def setup(self, stage: str) -> None:
        hp = self.hparams
        dims, task = hp["spatial_dims"], hp["task"]
        roi = hp["roi_size"]
        plain = (
            mt.ResizeWithPadOrCropd(
                ["image", "label"] if task == "segmentation" else ["image"],
                roi,
                allow_missing_keys=True,
            )
            if roi is not None
            else None
        )
        if stage in ("fit", "validate"):
            data = self.load_labelled()
            in_val = split_fraction(data.ids, hp["seed"]) < hp["val_fraction"]
            if hp["val_fraction"] > 0 and len(in_val) >= 2 and in_val.all() | (~in_val).all():
                in_val[:] = False
                in_val[int(np.argmin(split_fraction(data.ids, hp["seed"])))] = True
            augment = augmentations(task, dims, roi) if hp["augment"] else plain
            if isinstance(augment, mt.Randomizable):
                augment.set_random_state(hp["seed"])
            self.train_set = self._subset(data, ~in_val, augment)
            self.val_set = self._subset(data, in_val, plain)
        if stage == "predict":
            pool = self.load_pool()
            if pool is None:
                raise ModelError("this data module has no unlabelled pool to predict on")
            self.pool_set = ArrayDataset(
                pool.images, None, pool.ids, spatial_dims=dims, transform=plain
            )

    def _subset(self, data: Arrays, mask: np.ndarray, transform: Transform | None) -> ArrayDataset:
        idx = np.flatnonzero(mask)
        pick = (
            (lambda a: a[idx])
            if isinstance(data.images, np.ndarray)
            else (lambda a: [a[i] for i in idx])
        )
        labels = None if data.labels is None else pick(data.labels)
        return ArrayDataset(
            pick(data.images),
            labels,
            data.ids[idx],
            spatial_dims=self.hparams["spatial_dims"],
            transform=transform,
        )

    def class_weights(self) -> list[float]:
        """Inverse class frequencies of the training split (mean 1), for weighted CE."""
        counts = self._class_counts()
        weights = np.where(counts > 0, counts.sum() / np.maximum(counts, 1) / len(counts), 0.0)
        return [float(w) for w in weights / weights[counts > 0].mean()]

    def _class_counts(self) -> np.ndarray:
        if self.train_set is None:
            self.setup("fit")
        assert self.train_set is not None and self.train_set.labels is not None
        labels = np.asarray(self.train_set.labels).reshape(len(self.train_set), -1)[:, 0]
        return np.bincount(labels.astype(np.int64))

    def train_dataloader(self) -> DataLoader[Any]:
        assert self.train_set is not None, "call setup('fit') first"
        hp = self.hparams
        generator = torch.Generator().manual_seed(hp["seed"])
        if hp["balance"] and hp["task"] == "classification":
            counts = self._class_counts()
            labels = np.asarray(self.train_set.labels).reshape(len(self.train_set), -1)[:, 0]
            weights = torch.as_tensor(1.0 / counts[labels.astype(np.int64)], dtype=torch.double)
            sampler = WeightedRandomSampler(
                weights,  # type: ignore[arg-type]
                len(labels),
                generator=generator,
            )
            return DataLoader(
                self.train_set,
                batch_size=hp["batch_size"],
                sampler=sampler,
                num_workers=hp["num_workers"],
            )
        return DataLoader(
            self.train_set,
            batch_size=hp["batch_size"],
            shuffle=True,
            generator=generator,
            num_workers=hp["num_workers"],
        )

    def val_dataloader(self) -> DataLoader[Any]:
        assert self.val_set is not None, "call setup('fit') first"
        return batch_loader(
            self.val_set,
            self.hparams["predict_batch_size"],
            num_workers=self.hparams["num_workers"],
        )

    def predict_dataloader(self) -> DataLoader[Any]:
        """The pool in order; with several processes each scores its own shard (every item once,
        whether or not the Trainer injects distributed samplers)."""
        assert self.pool_set is not None, "call setup('predict') first"
        rank, world = rank_and_world(self.trainer)
        return batch_loader(
            self.pool_set,
            self.hparams["predict_batch_size"],
            sampler=RankShardSampler(len(self.pool_set), num_replicas=world, rank=rank),
            num_workers=self.hparams["num_workers"],
        )
