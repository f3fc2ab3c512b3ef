"""Project items as one array of training images."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from workbench.io import ScanImage, apply_window, default_window, read_uri
from workbench.loop._scan_cache import ScanCache
from workbench.store import Item

ImageLoader = Callable[[Item], ScanImage]


def load_item(item: Item) -> ScanImage:
    return read_uri(item.source_uri, modality=item.modality)


def item_images(
    items: Sequence[Item],
    *,
    size: tuple[int, ...] | None = None,
    loader: ImageLoader = load_item,
    area: bool = False,
) -> np.ndarray:
    """Images as uint8 ``[N, C, *spatial]``, windowed (modality default) and, where shapes
    differ, resized to ``size`` (default: the first item's spatial shape): bilinear /
    trilinear, or with ``area`` averaged (repeated along an axis shorter than ``size``), as a
    cold start shrinks scans of any shape to one small size without aliasing. Read one at a
    time.

    uint8 keeps a 100k-image pool of 28x28 at 78 MB; the recipes scale it to [0, 1].
    """
    if not items:
        return np.zeros((0, 1, *(size or (1, 1))), np.uint8)
    out: np.ndarray | None = None
    for n, item in enumerate(items):
        image = loader(item)
        array = _channels_first(image)
        if size is None:
            size = tuple(array.shape[1:])
        if tuple(array.shape[1:]) != size:
            array = _area(array[None], size)[0] if area else _resize(array, size)
        if out is None:
            out = np.empty((len(items), array.shape[0], *size), np.uint8)
        if array.shape[0] != out.shape[1]:
            array = _match_channels(array, out.shape[1])
        out[n] = array
    assert out is not None
    return out


def thumbnails(images: np.ndarray, max_side: int) -> np.ndarray:
    """uint8 images ``[N, C, *spatial]`` area-resized so that no spatial axis exceeds
    ``max_side`` (returned as they are when none does)."""
    size = tuple(min(int(side), max_side) for side in images.shape[2:])
    return images if size == tuple(images.shape[2:]) else _area(images, size)


def _area(images: np.ndarray, size: tuple[int, ...]) -> np.ndarray:
    """uint8 ``[N, C, *spatial]`` area-resized to ``size``, rounded back to uint8."""
    resized = F.interpolate(
        torch.from_numpy(np.ascontiguousarray(images)).float(), size=size, mode="area"
    )
    return resized.round().clamp(0, 255).to(torch.uint8).numpy()


def _channels_first(image: ScanImage) -> np.ndarray:
    """Windowed to uint8; RGB(A) images become 3 channels first, grey ones 1 channel."""
    if image.array.dtype == np.uint8:
        array = image.array
    else:
        array = np.round(apply_window(image.array, default_window(image)) * 255).astype(np.uint8)
    if image.is_rgb:
        return np.moveaxis(array[..., :3], -1, 0).copy()
    return array[None]


def _resize(array: np.ndarray, size: tuple[int, ...]) -> np.ndarray:
    mode = "bilinear" if len(size) == 2 else "trilinear"
    tensor = torch.from_numpy(array.astype(np.float32))[None]
    resized = F.interpolate(tensor, size=size, mode=mode, align_corners=False)[0]
    return resized.round().clamp(0, 255).to(torch.uint8).numpy()


def _match_channels(array: np.ndarray, channels: int) -> np.ndarray:
    if channels == 1:
        return array.mean(axis=0, keepdims=True).astype(np.uint8)
    return np.repeat(array[:1], channels, axis=0)


def item_arrays(
    items: Sequence[Item],
    *,
    channels: int | None = None,
    loader: ImageLoader = load_item,
    cache: ScanCache | None = None,
) -> list[np.ndarray]:
    """Each item's image as windowed uint8 ``[C, *spatial]`` in its own, original shape
    (segmentation: a prediction must map back voxel for voxel). ``channels`` forces the channel
    count (default: the first item's). With a ``cache`` the arrays are read-only memory maps of
    its files, built on first use."""
    out = []
    for item in items:
        array = (
            cache.scan(item, lambda i: _channels_first(loader(i)))
            if cache is not None
            else _channels_first(loader(item))
        )
        channels = channels or array.shape[0]
        if array.shape[0] != channels:
            array = _match_channels(array, channels)
        out.append(array)
    return out


def padded_shape(shapes: Sequence[tuple[int, ...]], multiple: int) -> tuple[int, ...]:
    """The smallest shape that holds every one of ``shapes`` and is divisible by ``multiple``."""
    top = np.max(np.array(shapes, np.int64), axis=0)
    return tuple(int(-(-side // multiple) * multiple) for side in top)


def centre_box(shape: tuple[int, ...], padded: tuple[int, ...]) -> tuple[slice, ...]:
    """Where an array of ``shape`` sits inside ``padded`` when centred (as MONAI's
    ``SpatialPad(method="symmetric")`` puts it): index a padded output with it to map back."""
    return tuple(slice((p - s) // 2, (p - s) // 2 + s) for s, p in zip(shape, padded, strict=True))


def pad_stack(arrays: Sequence[np.ndarray], padded: tuple[int, ...]) -> np.ndarray:
    """Arrays ``[*lead, *spatial]`` zero-padded (centred) to ``padded`` and stacked:
    ``[N, *lead, *padded]``. Zero is the darkest window value and the background class."""
    dims = len(padded)
    first = arrays[0]
    out = np.zeros((len(arrays), *first.shape[:-dims], *padded), first.dtype)
    for n, array in enumerate(arrays):
        box = centre_box(tuple(array.shape[-dims:]), padded)
        out[n][(Ellipsis, *box)] = array
    return out
