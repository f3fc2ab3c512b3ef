"""Tensors in memory, batches by one index, and a DataModule with an explicit val split."""

from __future__ import annotations

from typing import Any

import lightning as L
import numpy as np
import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

from workbench.models import ModelError, pixels_as_float
from workbench.models._sharding import (
    DrawnItems,
    EpochDraws,
    GlobalBatchSampler,
    RankShardSampler,
    rank_and_world,
)


def _pixel_array(x: np.ndarray, spatial_dims: int) -> np.ndarray:
    """``[N, (C,) *spatial]`` as a C-contiguous, writeable ``[N, C, *spatial]`` array (copied
    only when it is not one already, e.g. a read-only memory map)."""
    a = np.asarray(x)
    if a.ndim == spatial_dims + 1:
        a = a[:, None]
    if a.ndim != spatial_dims + 2:
        raise ModelError(
            f"expected images [N, (C,) *spatial] with {spatial_dims} spatial dims, "
            f"got shape {a.shape}"
        )
    a = np.ascontiguousarray(a)
    return a if a.flags.writeable else a.copy()  # torch wants memory it may own


def as_images(x: np.ndarray, spatial_dims: int) -> Tensor:
    """``[N, *spatial]`` or ``[N, C, *spatial]``, uint8 scaled to [0, 1] -> float ``[N, C, *S]``."""
    return pixels_as_float(torch.from_numpy(_pixel_array(x, spatial_dims)))


def as_pixels(x: np.ndarray, spatial_dims: int) -> Tensor:
    """`as_images` for scoring: uint8 stays uint8, without a float copy of the pool (4x less to
    hold and to copy to a GPU; the scorers scale each batch where it lands with
    `pixels_as_float`); any other dtype as float.  # [N, (C,) *spatial] -> [N, C, *spatial]"""
    tensor = torch.from_numpy(_pixel_array(x, spatial_dims))
    return tensor if tensor.dtype == torch.uint8 else pixels_as_float(tensor)


class TensorItems(Dataset[dict[str, Any]]):
    """``{"image", "label", "id"}`` batches fetched with one tensor index (``__getitems__``)."""

    def __init__(
        self, images: Tensor, labels: Tensor | None = None, ids: np.ndarray | None = None
    ) -> None:
        self.images = images
        self.labels = labels
        self.ids = None if ids is None else torch.as_tensor(np.asarray(ids, np.int64))

    def __len__(self) -> int:
        return int(self.images.shape[0])

    def __getitem__(self, index: int) -> dict[str, Any]:
        return self.__getitems__([index])

    def __getitems__(self, indices: list[int]) -> dict[str, Any]:
        idx = torch.as_tensor(indices, dtype=torch.int64)
        out: dict[str, Any] = {
            "image": self.images[idx],
            "id": idx if self.ids is None else self.ids[idx],
        }
        if self.labels is not None:
            out["label"] = self.labels[idx]
        return out


def _identity(batch: Any) -> Any:
    return batch


def loader(items: Dataset[dict[str, Any]], batch_size: int, sampler: Any = None) -> DataLoader[Any]:
    """A DataLoader whose batches are fetched in one call each."""
    return DataLoader(items, batch_size=batch_size, sampler=sampler, collate_fn=_identity)


class SplitDataModule(L.LightningDataModule):
    """Train and val sets given explicitly. Each epoch draws ``max(N * draws_per_item, batch *
    min_steps)`` training items (with replacement when that is more than N) so tiny labelled sets
    still get enough updates; ``draws_per_item`` > 1 when each draw sees only part of an item
    (a patch of a scan).

    The draws are the same in every process (seeded by (seed, epoch)) and cut into global
    batches of ``batch_size``, of which each of the Trainer's processes takes its share
    (`GlobalBatchSampler`; an incomplete last batch is dropped, so a permutation epoch skips
    ``N mod batch_size`` items, different ones each epoch). Every process validates on the whole
    val set. Run it with ``use_distributed_sampler=False`` (as `fit_best` does) so that Lightning
    keeps these samplers. Training batches carry ``draw`` numbers for keyed randomness; a train
    set that ``serves_draws`` itself (`PatchDraws`) gets the ``(index, draw)`` pairs directly.
    ``workers`` > 0 prepares training batches in that many worker processes (kept for the whole
    fit), for data that is slow to cut; the batches are the same as with none."""

    def __init__(
        self,
        train: Dataset[dict[str, Any]],
        val: Dataset[dict[str, Any]],
        *,
        batch_size: int,
        min_steps: int,
        predict_batch_size: int,
        seed: int,
        draws_per_item: int = 1,
        workers: int = 0,
    ) -> None:
        super().__init__()
        self.train, self.val = train, val
        self.workers = max(0, int(workers))
        self.batch_size, self.min_steps = batch_size, min_steps
        self.draws_per_item = max(1, int(draws_per_item))
        self.predict_batch_size, self.seed = predict_batch_size, seed
        self.hparams.update(batch_size=batch_size)

    def train_dataloader(self) -> DataLoader[Any]:
        n = len(self.train)  # type: ignore[arg-type]
        wanted = max(n * self.draws_per_item, self.batch_size * self.min_steps)
        batch = min(self.batch_size, wanted)
        draws = EpochDraws(n, wanted // batch * batch, replacement=wanted > n, seed=self.seed)
        rank, world = rank_and_world(self.trainer)
        batches = GlobalBatchSampler(draws, batch, rank=rank, world_size=world)
        items = self.train if getattr(self.train, "serves_draws", False) else DrawnItems(self.train)
        return DataLoader(
            items,
            batch_sampler=batches,
            collate_fn=_identity,
            num_workers=self.workers,
            persistent_workers=self.workers > 0,
        )

    def val_dataloader(self) -> DataLoader[Any]:
        return loader(self.val, self.predict_batch_size)


class PoolDataModule(L.LightningDataModule):
    """An unlabelled pool for ``Trainer.predict``: each process gets its shard, in order."""

    def __init__(self, pool: TensorItems, *, batch_size: int) -> None:
        super().__init__()
        self.pool, self.batch_size = pool, batch_size

    def predict_dataloader(self) -> DataLoader[Any]:
        rank, world = rank_and_world(self.trainer)
        sampler = RankShardSampler(len(self.pool), num_replicas=world, rank=rank)
        return loader(self.pool, self.batch_size, sampler)


def split_val(n: int, fraction: float, seed: int, labels: np.ndarray | None) -> np.ndarray:
    """A seeded boolean val mask ``[N]``, stratified by class when ``labels`` are given; at least
    one val item (two when two classes are present) and at least one training item."""
    rng = np.random.default_rng(seed)
    mask = np.zeros(n, bool)
    groups = (
        [np.arange(n)]
        if labels is None
        else [np.flatnonzero(labels == c) for c in np.unique(labels)]
    )
    for g in groups:
        take = int(round(len(g) * fraction))
        take = max(take, 1) if len(g) > 1 else 0
        mask[rng.permutation(g)[:take]] = True
    if not mask.any() and n > 1:
        mask[rng.integers(n)] = True
    return mask
