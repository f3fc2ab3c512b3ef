"""The first picks of a project with no model yet: typical items or k-center on small images.

A cold start compares every pool item at one small size, so it reads each image once, shrinks
it and lets the full-size pixels go: a pool of large images costs its thumbnails, not its
pixels. ``typical`` trains a self-supervised encoder on those thumbnails and takes TypiClust's
picks on its features; ``kcenter`` runs k-center greedy on their pooled grey levels.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from workbench.loop._images import ImageLoader, item_images, thumbnails
from workbench.loop._progress import Progress
from workbench.recipes import ContrastiveEncoder, train_contrastive
from workbench.store import Item
from workbench.strategies import downsample, select_cold_start

COLD_START_SIDE = {2: 64, 3: 32}  # cold starts read images / volumes at most this per axis
COLD_STARTS = {"cold_start_kcenter": "kcenter", "cold_start_typical": "typical"}  # round name


def cold_start_images(
    items: Sequence[Item],
    *,
    segmentation: bool,
    read: Callable[[Sequence[Item]], np.ndarray],
    chunk: int,
    loader: ImageLoader,
) -> np.ndarray:
    """uint8 ``[N, C, *spatial]`` of ``items`` at the cold start's size.

    Images (``read``, `chunk` items at a time) are area-resized to at most 64 per side; scans,
    which differ in shape, are area-averaged one at a time (``loader``) to the pool's median
    shape capped at 64 (2D) or 32 (3D) per axis."""
    if segmentation:
        dims = len(items[0].spacing) or len(items[0].shape)
        side = COLD_START_SIDE[3 if dims >= 3 else 2]
        median = np.median([item.shape[:dims] for item in items], axis=0)
        size = tuple(min(int(s), side) for s in median)
        return item_images(items, size=size, area=True, loader=loader)
    out: np.ndarray | None = None
    for start in range(0, len(items), chunk):
        small = thumbnails(read(items[start : start + chunk]), COLD_START_SIDE[2])
        if out is None:
            out = np.empty((len(items), *small.shape[1:]), np.uint8)
        out[start : start + len(small)] = small
    if out is None:
        raise ValueError("a cold start needs at least one item")
    return out


def cold_start_picks(
    images: np.ndarray,
    k: int,
    *,
    method: str,
    labelled: np.ndarray,
    rng: np.random.Generator,
    seed: int,
    contrastive_steps: int,
    progress: Progress | None = None,
) -> tuple[np.ndarray, ContrastiveEncoder | None]:
    """Positions of ``k`` picks among ``images`` ``[N, C, *spatial]`` (``labelled`` ``[N]``
    flags those already labelled: picks are placed relative to them, never on them), and the
    self-supervised encoder a ``typical`` start trained (None for ``kcenter``)."""
    encoder = None
    if method == "typical":  # trained at the encoder's default size for 2D / 3D
        encoder = train_contrastive(
            images,
            spatial_dims=images.ndim - 2,
            seed=seed,
            steps=contrastive_steps,
            progress=progress,
        )
        features = encoder.features
    else:  # grey level [N, *spatial], pooled
        features = downsample(images.mean(axis=1, dtype=np.float32), 2)
    picks = select_cold_start(features, k, method=method, labelled_mask=labelled, rng=rng).indices
    return np.asarray(picks), encoder
