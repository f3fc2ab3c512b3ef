"""Segmentation in the store-backed loop: items of different shapes padded to one shape the
network accepts (or, on patches and windows, each scan taken as it is), and every prediction
cropped back to its item's own shape before anything is
stored or scored, so masks and uncertainty maps align voxel for voxel with the scan shown.

What scoring keeps per pool item and model version (see `item_outcome`):

* ``Prediction.mask``: the argmax of the MC-mean probabilities, uint8 ``[*spatial]``.
* ``Prediction.uncertainty_map``: the per-voxel entropy of the MC-mean prediction in nats,
  float16 ``[*spatial]`` (at most ln C; float16 keeps 3 significant digits at half the size of
  float32, and the annotator scales it for display anyway).
* scores ``"<kind>_<reduction>"`` for kind ``entropy`` / ``bald`` and reduction ``mean``,
  ``foreground_weighted`` (weighted by the predicted foreground probability, 1 - p(background
  class 0)) and ``top_percentile`` (mean of the top `TOP_PERCENT` % of voxels), e.g.
  ``bald_foreground_weighted``. Padding never enters a score.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from lightning.pytorch.callbacks import Callback
from torch import Tensor

from workbench.loop._images import centre_box, pad_stack, padded_shape
from workbench.models import ModelError
from workbench.recipes import (
    SegmentationRecipe,
    TrainedSegmenter,
    iter_segmentation_moments,
    iter_segmentation_probs,
    train_segmenter,
)
from workbench.recipes._scans import check_masks
from workbench.store import Item
from workbench.strategies import moment_uncertainty_map, reduce_map
from workbench.strategies._types import Reduction, UncertaintyKind

SCORE_KINDS: tuple[UncertaintyKind, ...] = ("entropy", "bald")
REDUCTIONS: tuple[Reduction, ...] = ("mean", "foreground_weighted", "top_percentile")
TOP_PERCENT = 10.0
BACKGROUND = 0
MAP_DTYPE = np.float16
WHOLE_SCAN_VOXELS = {2: 2048 * 2048, 3: 128**3}
"""Largest scan the default recipe trains on whole; larger projects train on patches."""
DEFAULT_PATCH_SIDE = {2: 512, 3: 96}


def score_name(kind: str, reduction: str) -> str:
    """The store's score name of an uncertainty kind under a reduction, e.g. ``bald_mean``."""
    return f"{kind}_{reduction}"


# written in this order; serving ranks by the newest written score, so ``bald_mean`` goes last
SCORE_NAMES = tuple(score_name(k, r) for k in reversed(SCORE_KINDS) for r in reversed(REDUCTIONS))


@dataclass(frozen=True)
class ItemOutcome:
    """What scoring keeps for one item (shapes are the item's own ``[*spatial]``)."""

    item_id: int
    mask: np.ndarray  # uint8 argmax of the MC mean (uint16 past 256 classes)
    uncertainty: np.ndarray  # float16 entropy of the MC mean, nats
    scores: dict[str, float]


def default_patch_size(
    shapes: Sequence[tuple[int, ...]], spatial_dims: int, divisible_by: int
) -> tuple[int, ...] | None:
    """None (whole scans) while every scan has at most ``WHOLE_SCAN_VOXELS`` voxels; else a
    patch of ``DEFAULT_PATCH_SIDE`` per axis, shorter along axes where every scan is shorter,
    rounded up to a multiple of ``divisible_by``. ``shapes`` are the scans' array shapes (spatial
    axes first)."""
    if not shapes:
        return None
    spatial = np.array([s[:spatial_dims] for s in shapes], np.int64)  # [N, dims]
    if int(spatial.prod(axis=1).max()) <= WHOLE_SCAN_VOXELS[spatial_dims]:
        return None
    side = DEFAULT_PATCH_SIDE[spatial_dims]
    longest = spatial.max(axis=0)
    return tuple(int(-(-min(side, int(n)) // divisible_by) * divisible_by) for n in longest)


def check_dims(arrays: Sequence[np.ndarray], spatial_dims: int) -> None:
    """ModelError naming both counts unless images ``[C, *spatial]`` have ``spatial_dims``."""
    found = {a.ndim - 1 for a in arrays}
    if found != {spatial_dims}:
        dims = " and ".join(str(d) for d in sorted(found))
        raise ModelError(
            f"the project's images have {dims} spatial dimensions but the "
            f"recipe's network takes {spatial_dims}",
            field="spatial_dims",
        )


def train_padded(
    recipe: SegmentationRecipe,
    images: Sequence[np.ndarray],
    masks: Sequence[np.ndarray],
    val_images: Sequence[np.ndarray] | None,
    val_masks: Sequence[np.ndarray] | None,
    *,
    num_classes: int,
    seed: int,
    init_state: Mapping[str, Tensor] | None,
    root_dir: Path | None = None,
    callbacks: Sequence[Callback] = (),
) -> TrainedSegmenter:
    """Train on images ``[C, *spatial_i]`` and masks ``[*spatial_i]`` of any shapes, padded
    (centred, zeros) to the smallest shape divisible by ``recipe.divisible_by`` that holds all;
    padding is labelled background, which the images' zero (darkest) value matches. With a
    ``patch_size`` nothing is padded or stacked: patches are cut from each scan as it is."""
    check_dims([*images, *(val_images or [])], recipe.spatial_dims)
    check_masks(images, masks)
    if recipe.patch_size is not None:  # patches are cut from each scan as it is: no padding
        val = (list(val_images), list(val_masks)) if val_images and val_masks else (None, None)
        return train_segmenter(
            recipe,
            list(images),
            list(masks),
            *val,
            num_classes=num_classes,
            seed=seed,
            init_state=init_state,
            root_dir=root_dir,
            callbacks=callbacks,
        )
    shapes = [tuple(a.shape[1:]) for a in [*images, *(val_images or [])]]
    shape = padded_shape(shapes, recipe.divisible_by)
    x, y = pad_stack(images, shape), pad_stack(masks, shape)
    xv = yv = None
    if val_images and val_masks:
        xv, yv = pad_stack(val_images, shape), pad_stack(val_masks, shape)
    return train_segmenter(
        recipe,
        x,
        y,
        xv,
        yv,
        num_classes=num_classes,
        seed=seed,
        init_state=init_state,
        root_dir=root_dir,
        callbacks=callbacks,
    )


def iter_item_probs(
    trained: TrainedSegmenter,
    items: Sequence[Item],
    images: Sequence[np.ndarray],
    divisible_by: int,
    *,
    moments: bool = False,
) -> Iterator[tuple[Item, np.ndarray]]:
    """MC-dropout probabilities per item, cropped back to the item's shape:
    ``(item, probs [T, C, *spatial_i])``, or with ``moments`` the samples reduced as they come
    (`iter_segmentation_moments`): ``(item, moments [C + 1, *spatial_i])``. The items are padded
    to one shape for the network, or, for a model with sliding windows, each is scored alone in
    its own shape; dropout masks are keyed by item id, so an item scores the same in any chunk."""
    check_dims(images, trained.spatial_dims)
    if not items:
        return
    predict = iter_segmentation_moments if moments else iter_segmentation_probs
    lead = (slice(None),) * (1 if moments else 2)  # the axes before the spatial ones
    if trained.window is not None:
        for item, image in zip(items, images, strict=True):
            for _, values in predict(trained, image[None], ids=np.array([item.id], np.int64)):
                yield item, values[0]
        return
    shape = padded_shape([tuple(a.shape[1:]) for a in images], divisible_by)
    by_id = {item.id: (item, tuple(a.shape[1:])) for item, a in zip(items, images, strict=True)}
    ids = np.array([item.id for item in items], np.int64)
    for batch_ids, values in predict(trained, pad_stack(images, shape), ids=ids):
        for item_id, v in zip(batch_ids, values, strict=True):  # v [T, C, *padded] or [C + 1, ...]
            item, spatial = by_id[int(item_id)]
            yield item, v[(*lead, *centre_box(spatial, shape))]


def item_outcome(item: Item, moments: np.ndarray) -> ItemOutcome:
    """Mask, entropy map and every ``SCORE_NAMES`` score of one item, from the `sample_moments`
    of its MC samples.  # moments [C + 1, *S] -> mask [*S] uint8, uncertainty [*S] float16"""
    m = moments[None]  # [1, C + 1, *S]
    maps = {
        kind: moment_uncertainty_map(m, kind, spatial_dims=moments.ndim - 1) for kind in SCORE_KINDS
    }  # [1, *S]
    mean = m[:, :-1]  # [1, C, *S]
    foreground = 1.0 - mean[:, BACKGROUND]  # [1, *S]
    scores = {
        score_name(kind, reduction): float(
            reduce_map(maps[kind], reduction, foreground=foreground, q=TOP_PERCENT)[0]
        )
        for kind in SCORE_KINDS
        for reduction in REDUCTIONS
    }
    mask_dtype = np.uint8 if mean.shape[1] <= 256 else np.uint16
    return ItemOutcome(
        item_id=item.id,
        mask=mean[0].argmax(axis=0).astype(mask_dtype),
        uncertainty=maps["entropy"][0].astype(MAP_DTYPE),
        scores=scores,
    )
