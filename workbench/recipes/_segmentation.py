"""The segmentation recipe (2D or 3D): MONAI U-Net, DiceCE, early stopping on val Dice."""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from lightning.pytorch.callbacks import Callback
from monai.metrics import DiceMetric
from torch import Tensor, nn
from torch.utils.data import Dataset

from workbench.models import (
    ModelError,
    SegmentationModule,
    SlidingWindow,
    build_segmenter,
    default_flips,
    iter_mc_predict,
    keep_global_rng,
    pixels_as_float,
    training_device,
    window_predict,
)
from workbench.recipes._augment import augment_scans
from workbench.recipes._checks import COUNT_MINIMUMS, require_counts
from workbench.recipes._data import (
    SplitDataModule,
    TensorItems,
    as_images,
    as_pixels,
    loader,
    split_val,
)
from workbench.recipes._fit import fit_best
from workbench.recipes._restoration import load_pretrained
from workbench.recipes._scans import PatchDraws, ScanList
from workbench.strategies import moment_uncertainty_map, reduce_map
from workbench.strategies._types import Reduction, UncertaintyKind

SegmenterFactory = Callable[..., nn.Module]
"""Called as ``factory(spatial_dims=, in_channels=, num_classes=)``; returns logits
[B, num_classes, *spatial]."""


def small_unet(*, spatial_dims: int, in_channels: int, num_classes: int) -> nn.Module:
    """A MONAI residual UNet (16-32-64-128) with dropout 0.1, small enough for a CPU."""
    return build_segmenter(
        "unet",
        spatial_dims=spatial_dims,
        in_channels=in_channels,
        num_classes=num_classes,
        dropout=0.1,
        features=(16, 32, 64, 128),
    )


@dataclass(frozen=True)
class UNetFactory:
    """A `SegmenterFactory` for a MONAI residual U-Net with ``features`` channels per level
    (``len(features) - 1`` down-samplings: sides must divide by ``2 ** (len(features) - 1)``),
    e.g. ``UNetFactory((4, 8, 16))`` for a quick CPU run."""

    features: tuple[int, ...] = (16, 32, 64, 128)
    dropout: float = 0.1

    def __post_init__(self) -> None:
        if len(self.features) < 2 or any(int(f) < 1 for f in self.features):
            raise ModelError(
                f"a U-Net needs 2 or more levels of 1 or more channels, got "
                f"features {tuple(self.features)}",
                field="features",
            )
        if not 0.0 <= self.dropout < 1.0:
            raise ModelError(f"dropout must be in [0, 1), got {self.dropout}", field="dropout")

    @property
    def name(self) -> str:
        return "unet_" + "-".join(str(f) for f in self.features)

    def __call__(self, *, spatial_dims: int, in_channels: int, num_classes: int) -> nn.Module:
        return build_segmenter(
            "unet",
            spatial_dims=spatial_dims,
            in_channels=in_channels,
            num_classes=num_classes,
            dropout=self.dropout,
            features=self.features,
        )


@dataclass(frozen=True)
class SegmentationRecipe:
    """How to train a segmenter. Images must share one shape divisible by ``divisible_by`` (2 to
    the number of down-sampling steps of the network; pad or crop them first, e.g. with MONAI
    ``ResizeWithPadOrCrop``; the store-backed loop pads each batch itself). Augmentation: random
    flips of image and mask along ``flip_axes`` (those the images have) and intensity jitter.

    Early stopping ends a training after ``patience`` epochs in which neither val Dice nor val
    loss improved; the kept weights are those of the best val Dice. (Dice can stay flat for
    epochs while the loss still falls, before the network finds the foreground; stopping on Dice
    alone ended such trainings in that plateau.)

    ``patch_size`` (each side divisible by ``divisible_by``) trains on random patches (a third
    centred on foreground; an epoch draws each scan as many times as patches cover it, so it
    sees as many voxels as an epoch on whole scans) and predicts over sliding windows with
    ``sw_overlap``: for scans such as whole CTs that do not fit one forward pass. Images may then
    have any shape (no divisibility needed). Patches are cut in ``loader_workers`` processes
    (None: up to 4 when training on CUDA, where cutting them in the training process leaves the
    GPU waiting; none on the CPU, whose cores train).

    ``devices`` x ``num_nodes`` processes with a data-parallel ``strategy`` (e.g. ``"ddp"``;
    ``accelerator="cpu"`` runs it on CPU with gloo) train the same model as one process, up to
    float rounding: ``batch_size`` stays the global batch, shared between the processes."""

    network: SegmenterFactory = small_unet
    spatial_dims: int = 3
    max_epochs: int = 30
    patience: int = 6
    min_steps_per_epoch: int = 8
    batch_size: int = 4
    lr: float = 2e-3
    weight_decay: float = 1e-4
    augment: bool = True
    flip_axes: tuple[int, ...] = (0, 1, 2)
    intensity: float = 0.1
    mc_samples: int = 8
    tta: bool = False
    warm_start: bool = False
    val_fraction: float = 0.2
    predict_batch_size: int = 8
    seed: int = 0
    divisible_by: int = 8
    patch_size: tuple[int, ...] | None = None
    sw_overlap: float = 0.25
    loader_workers: int | None = None
    accelerator: str = "auto"
    devices: int | str = 1
    strategy: str = "auto"
    num_nodes: int = 1

    def __post_init__(self) -> None:
        require_counts(self, COUNT_MINIMUMS)
        patch = self.patch_size
        if patch is None:
            return
        if len(patch) != self.spatial_dims:
            raise ModelError(
                f"patch size {tuple(patch)} has {len(patch)} axes but the recipe is "
                f"{self.spatial_dims}D",
                field="patch_size",
            )
        if any(int(s) < 1 or int(s) % self.divisible_by for s in patch):
            raise ModelError(
                f"every side of patch size {tuple(patch)} must be a positive "
                f"multiple of {self.divisible_by} (the network's down-sampling)",
                field="patch_size",
            )

    @property
    def window(self) -> SlidingWindow | None:
        """The sliding window predictions run over, when ``patch_size`` is set."""
        if self.patch_size is None:
            return None
        return SlidingWindow(tuple(self.patch_size), self.sw_overlap, self.predict_batch_size)


@dataclass
class TrainedSegmenter:
    """A trained segmentation module, val metrics, best checkpoint (None when trained without a
    ``root_dir``: no file is kept) and its weights."""

    module: nn.Module
    metrics: dict[str, float]
    checkpoint_path: Path | None
    state_dict: dict[str, Tensor]
    spatial_dims: int
    num_classes: int
    seed: int
    mc_samples: int
    predict_batch_size: int
    in_channels: int = 1
    window: SlidingWindow | None = None
    tta: bool = False

    @property
    def flips(self) -> list[tuple[int, ...]] | None:
        """The flips scored under with test-time augmentation (identity and one per axis)."""
        return default_flips(self.spatial_dims) if self.tta else None


@dataclass(frozen=True)
class SegmentationPrediction:
    """Per-image scores ``[N]``, per-voxel uncertainty maps ``[N, *spatial]`` and the mean
    predicted segmentation ``[N, *spatial]`` (argmax of the MC mean)."""

    scores: np.ndarray
    maps: np.ndarray
    segmentation: np.ndarray


_AUGMENT_SALT = 0x3C6EF372


class _AugmentedSegmenter(SegmentationModule):
    """`SegmentationModule` that flips and jitters training batches in the step, after the
    patches are cut; random values keyed by (seed, scan id, draw) when the batch has draws."""

    recipe: SegmentationRecipe | None = None

    def training_batch(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        batch = super().training_batch(batch)  # patches first
        r = self.recipe
        if r is not None and r.augment:
            keys = self.batch_draw_keys(batch, _AUGMENT_SALT)
            x, y = augment_scans(
                batch["image"],
                batch["label"],
                flip_axes=r.flip_axes,
                intensity=r.intensity,
                keys=keys,
            )
            batch = {**batch, "image": x, "label": y}
        return batch


def patches_per_scan(shape: tuple[int, ...], patch_size: tuple[int, ...] | None) -> int:
    """How many patches cover a scan's voxels once (1 without patches): an epoch on patches
    draws each scan that many times, so it sees as many voxels as an epoch on whole scans."""
    if patch_size is None:
        return 1
    return max(1, math.ceil(math.prod(shape) / math.prod(patch_size)))


def _masks(y: np.ndarray, spatial_dims: int) -> Tensor:
    a = np.asarray(y).astype(np.int64)
    return torch.from_numpy(a[:, None] if a.ndim == spatial_dims + 1 else a)


@keep_global_rng()
def train_segmenter(
    recipe: SegmentationRecipe,
    x_train: np.ndarray | Sequence[np.ndarray],
    y_train: np.ndarray | Sequence[np.ndarray],
    x_val: np.ndarray | Sequence[np.ndarray] | None = None,
    y_val: np.ndarray | Sequence[np.ndarray] | None = None,
    *,
    num_classes: int,
    seed: int | None = None,
    root_dir: str | Path | None = None,
    init_state: Mapping[str, Tensor] | None = None,
    pretrained_state: Mapping[str, Tensor] | None = None,
    callbacks: Sequence[Callback] = (),
) -> TrainedSegmenter:
    """Train on images ``[N, (C,) *spatial]`` and masks ``[N, *spatial]`` of class indices;
    early stopping and the kept weights use val Dice (foreground mean) on ``(x_val, y_val)`` or
    on a seeded ``val_fraction`` of the training set.

    With a ``patch_size`` the images may also be a list of scans ``[(C,) *spatial_i]`` of their
    own shapes (masks ``[*spatial_i]``): each is kept once as given (uint8 is scaled to [0, 1]
    patch by patch), not padded, stacked or converted to float (see `PatchDraws`). The caller's
    global random generators are left as they were (`keep_global_rng`).

    ``init_state`` (a previous `TrainedSegmenter.state_dict`) is loaded first when
    ``recipe.warm_start``; otherwise ``pretrained_state`` (`pretrain_restoration`'s weights),
    when given, starts every weight but the output layer's (`load_pretrained`)."""
    seed = recipe.seed if seed is None else seed
    dims = recipe.spatial_dims
    train_set: Dataset[dict[str, Any]]
    val_set: Dataset[dict[str, Any]]
    if recipe.patch_size is not None:
        train_set, val_set, in_channels, draws = _patch_sets(
            recipe, x_train, y_train, x_val, y_val, seed
        )
    else:
        train_set, val_set, in_channels = _whole_sets(recipe, x_train, y_train, x_val, y_val, seed)
        draws = 1
    torch.manual_seed(seed)
    net = recipe.network(spatial_dims=dims, in_channels=in_channels, num_classes=num_classes)
    module = _AugmentedSegmenter(
        net,
        num_classes=num_classes,
        in_channels=in_channels,
        spatial_dims=dims,
        lr=recipe.lr,
        weight_decay=recipe.weight_decay,
        mc_samples=recipe.mc_samples,
        mc_seed=seed,
        patch_size=recipe.patch_size,
        sw_overlap=recipe.sw_overlap,
        sw_batch_size=recipe.predict_batch_size,
    )
    module.recipe = recipe
    if init_state is not None and recipe.warm_start:
        module.net.load_state_dict(dict(init_state))
    elif pretrained_state is not None:
        load_pretrained(module.net, pretrained_state)
    data = SplitDataModule(
        train_set,
        val_set,
        batch_size=recipe.batch_size,
        min_steps=recipe.min_steps_per_epoch,
        # over windows, one whole scan per validation step: its patches make the batches
        predict_batch_size=1 if recipe.patch_size else recipe.predict_batch_size,
        seed=seed,
        draws_per_item=draws,
        workers=patch_workers(recipe) if recipe.patch_size else 0,
    )
    best = fit_best(
        module,
        data,
        max_epochs=recipe.max_epochs,
        patience=recipe.patience,
        monitor="val_dice",
        seed=seed,
        root_dir=root_dir,
        accelerator=recipe.accelerator,
        devices=recipe.devices,
        strategy=recipe.strategy,
        num_nodes=recipe.num_nodes,
        callbacks=callbacks,
    )
    return TrainedSegmenter(
        module=module,
        metrics=best.metrics,
        checkpoint_path=best.checkpoint_path,
        state_dict=best.net_state,
        spatial_dims=dims,
        num_classes=num_classes,
        seed=seed,
        mc_samples=recipe.mc_samples,
        predict_batch_size=recipe.predict_batch_size,
        in_channels=in_channels,
        window=recipe.window,
        tta=recipe.tta,
    )


def patch_workers(recipe: SegmentationRecipe) -> int:
    """Worker processes that cut training patches: ``recipe.loader_workers``, else up to 4 (one
    core left) when training on CUDA and none on the CPU."""
    if recipe.loader_workers is not None:
        return max(0, recipe.loader_workers)
    if training_device(recipe.accelerator) != "cuda":
        return 0
    return max(0, min(4, (os.cpu_count() or 1) - 1))


def _whole_sets(
    recipe: SegmentationRecipe, x_train: Any, y_train: Any, x_val: Any, y_val: Any, seed: int
) -> tuple[TensorItems, TensorItems, int]:
    """Whole-scan training: one stacked float tensor per set."""
    x, y = np.asarray(x_train), np.asarray(y_train)
    if x_val is None or y_val is None:
        in_val = split_val(len(x), recipe.val_fraction, seed, None)
        x, xv, y, yv = x[~in_val], x[in_val], y[~in_val], y[in_val]
    else:
        xv, yv = np.asarray(x_val), np.asarray(y_val)
    dims = recipe.spatial_dims
    images = as_images(x, dims)
    val = TensorItems(as_images(xv, dims), _masks(yv, dims))
    return TensorItems(images, _masks(y, dims)), val, int(images.shape[1])


def _patch_sets(
    recipe: SegmentationRecipe, x_train: Any, y_train: Any, x_val: Any, y_val: Any, seed: int
) -> tuple[PatchDraws, ScanList, int, int]:
    """Patch training: the scans as they are, patches cut per draw; validation scan by scan.
    The last value is the draws per scan and epoch (patches covering the mean scan once)."""
    assert recipe.patch_size is not None
    dims = recipe.spatial_dims
    images, masks = list(x_train), list(y_train)
    if x_val is None or y_val is None:
        in_val = split_val(len(images), recipe.val_fraction, seed, None)
        val_images = [a for a, v in zip(images, in_val, strict=True) if v]
        val_masks = [a for a, v in zip(masks, in_val, strict=True) if v]
        images = [a for a, v in zip(images, in_val, strict=True) if not v]
        masks = [a for a, v in zip(masks, in_val, strict=True) if not v]
    else:
        val_images, val_masks = list(x_val), list(y_val)
    scans = ScanList(images, masks, dims)
    if not len(scans):
        raise ModelError("no labelled scans to train on", field="labels")
    total = sum(patches_per_scan(tuple(m.shape), recipe.patch_size) for m in scans.labels)
    train = PatchDraws(scans, recipe.patch_size, seed=seed)
    return train, ScanList(val_images, val_masks, dims), scans.in_channels, -(-total // len(scans))


def _items(trained: TrainedSegmenter, x: np.ndarray, ids: np.ndarray | None = None) -> Any:
    items = TensorItems(as_pixels(x, trained.spatial_dims), ids=ids)
    # with windows, one scan per step: its patches make the forward batches
    return loader(items, 1 if trained.window else trained.predict_batch_size)


def _pool(probs: Tensor, factor: int, dims: int) -> Tensor:
    # [B, T, C, *S] -> [B, T, C, *S/factor] by average pooling
    if factor == 1:
        return probs
    b, t, c = probs.shape[:3]
    pool = F.avg_pool3d if dims == 3 else F.avg_pool2d
    flat = probs.reshape(b * t, c, *probs.shape[3:])
    out = pool(flat, factor, ceil_mode=True)
    return out.reshape(b, t, c, *out.shape[2:])


PASS_VOXELS = 2**21
"""Voxels one MC forward pass takes on the CPU (samples x scans, or x windows). A 128^3 scan
replicated T = 8-fold scored slower there than one sample per pass (default U-Net: 11.2 s /
1,362 MiB against 6.4 s / 499 MiB, `benchmarks/bench_segmentation_moments.py`), while small
scans gain from replication (a 96x96x64 scan: 3 samples per pass)."""


def _rows_per_pass(trained: TrainedSegmenter, x: np.ndarray) -> int | None:
    """``max_rows`` for `iter_mc_predict`: on the CPU as many rows as fit `PASS_VOXELS` (at
    least one sample of a batch), on CUDA the whole T-fold replicated batch (None)."""
    if torch.cuda.is_available():
        return None
    window = trained.window
    voxels = (
        math.prod(window.roi_size) * window.batch_size
        if window is not None
        else math.prod(x.shape[-trained.spatial_dims :])
    )
    return max(1, PASS_VOXELS // max(1, voxels))


def iter_segmentation_probs(
    trained: TrainedSegmenter,
    x: np.ndarray,
    T: int | None = None,
    *,
    ids: np.ndarray | None = None,
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """MC-dropout probabilities one batch at a time: ``(ids [B], probs [B, T, C, *S])`` for
    images ``x`` ``[N, (C,) *S]``. With ``ids`` (e.g. store item ids) the dropout masks are keyed
    by item, so an item scores the same in any batch or chunk. With ``trained.tta`` the samples
    are taken under each flip too: ``T * (1 + spatial dims)`` of them."""
    return _iter_scored(trained, x, T, ids, moments=False)


def iter_segmentation_moments(
    trained: TrainedSegmenter,
    x: np.ndarray,
    T: int | None = None,
    *,
    ids: np.ndarray | None = None,
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """`iter_segmentation_probs` reduced on the way, sample by sample and flip by flip:
    ``(ids [B], moments [B, C + 1, *S])``, the mean probabilities and the mean per-sample
    entropy (`workbench.models.sample_moments`; maps and scores from them:
    `workbench.strategies.moment_uncertainty_map`, `moment_scores`). Holds about
    T * (1 + flips) times less than the samples themselves: what a CT-sized scan needs."""
    return _iter_scored(trained, x, T, ids, moments=True)


def _iter_scored(
    trained: TrainedSegmenter,
    x: np.ndarray,
    T: int | None,
    ids: np.ndarray | None,
    *,
    moments: bool,
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    samples = trained.mc_samples if T is None else T
    for part in iter_mc_predict(
        trained.module,
        _items(trained, x, ids),
        samples,
        seed=trained.seed,
        window=trained.window,
        flips=trained.flips,
        moments=moments,
        max_rows=_rows_per_pass(trained, x),
    ):
        yield part.ids, part.values.numpy()


def predict_segmentation_probs(
    trained: TrainedSegmenter,
    x: np.ndarray,
    T: int | None = None,
    *,
    pool: int = 1,
    ids: np.ndarray | None = None,
) -> np.ndarray:
    """MC-dropout probabilities average-pooled by ``pool`` per spatial axis (to keep a whole
    pool in memory for the strategies).  # x [N, (C,) *S] -> [N, T, C, *S/pool]"""
    samples = trained.mc_samples if T is None else T
    parts = [
        part.values.numpy()
        for part in iter_mc_predict(
            trained.module,
            _items(trained, x, ids),
            samples,
            seed=trained.seed,
            reduce=partial(_pool, factor=pool, dims=trained.spatial_dims),
            window=trained.window,
            flips=trained.flips,
            max_rows=_rows_per_pass(trained, x),
        )
    ]
    return np.concatenate(parts).astype(np.float32)


def predict_segmentation(
    trained: TrainedSegmenter,
    x: np.ndarray,
    T: int | None = None,
    *,
    kind: UncertaintyKind = "bald",
    reduction: Reduction = "mean",
    ids: np.ndarray | None = None,
) -> SegmentationPrediction:
    """Streaming MC dropout: per-voxel ``kind`` uncertainty maps, their per-image ``reduction``
    and the mean segmentation; the samples are reduced as they come
    (`iter_segmentation_moments`), so not even one scan's T samples are held at once."""
    dims = trained.spatial_dims
    maps, segs = [], []
    for _, m in iter_segmentation_moments(trained, x, T, ids=ids):  # m [B, C + 1, *S]
        maps.append(moment_uncertainty_map(m, kind, spatial_dims=dims).astype(np.float32))
        segs.append(m[:, :-1].argmax(1).astype(np.uint8))
    m = np.concatenate(maps)
    return SegmentationPrediction(
        reduce_map(m, reduction) if reduction != "none" else m, m, np.concatenate(segs)
    )


def predict_labels(trained: TrainedSegmenter, x: np.ndarray) -> np.ndarray:
    """Deterministic (dropout off) argmax segmentation.  # [N, (C,) *S] -> [N, *S] uint8"""
    module = trained.module.eval()
    out = []
    with torch.inference_mode():
        for batch in _items(trained, x):
            x_batch = pixels_as_float(batch["image"])
            logits = (
                module(x_batch)
                if trained.window is None
                else window_predict(module, x_batch, trained.window)
            )
            out.append(logits.argmax(1).to(torch.uint8).cpu().numpy())
    return np.concatenate(out)


def dice_scores(pred: np.ndarray, target: np.ndarray, num_classes: int) -> np.ndarray:
    """Per-image Dice averaged over foreground classes (an empty class pair counts as 1).
    # pred, target [N, *S] -> [N]"""
    p = F.one_hot(torch.from_numpy(pred.astype(np.int64)), num_classes).movedim(-1, 1)
    t = F.one_hot(torch.from_numpy(target.astype(np.int64)), num_classes).movedim(-1, 1)
    metric = DiceMetric(include_background=False, reduction="none", ignore_empty=False)
    per_class = metric(p, t)  # [N, C-1]
    assert isinstance(per_class, Tensor)
    return torch.nanmean(per_class.float(), 1).numpy()
