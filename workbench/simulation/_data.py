"""Simulation data: a labelled pool (labels hidden behind the oracle), a val set and a test set,
from a MedMNIST .npz, an MSD / nnU-Net folder, or a project folder with hidden ground truth."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from workbench.errors import WorkbenchError

Task = Literal["classification", "segmentation"]


class SimulationDataError(WorkbenchError):
    """The data cannot be used for a simulation (no labels, too few items, unknown layout)."""

    code = "simulation_data"


@dataclass(frozen=True)
class SimulationData:
    """Arrays for one simulation. Images ``[N, (C,) *spatial]`` (uint8 or z-scored float32); labels
    ``[N]`` class indices or ``[N, *spatial]`` masks. Pool labels go to the `Oracle` only.
    ``pool_keys``: what each pool position is in the source (``train[i]`` of an npz, a folder's
    relative image path, a project item's key), so a report's picks can be named."""

    name: str
    task: Task
    spatial_dims: int
    num_classes: int
    pool_x: np.ndarray
    pool_y: np.ndarray
    val_x: np.ndarray
    val_y: np.ndarray
    test_x: np.ndarray
    test_y: np.ndarray
    notes: str = ""
    pool_keys: tuple[str, ...] = ()

    def describe(self) -> dict[str, object]:
        """Sizes and settings for the JSON report."""
        return {
            "name": self.name,
            "task": self.task,
            "spatial_dims": self.spatial_dims,
            "num_classes": self.num_classes,
            "image_shape": list(self.pool_x.shape[1:]),
            "pool": len(self.pool_x),
            "val": len(self.val_x),
            "test": len(self.test_x),
            "notes": self.notes,
            "pool_keys": list(self.pool_keys),
        }


def _take(rng: np.random.Generator, n: int, limit: int | None) -> np.ndarray:
    idx = np.arange(n)
    return np.sort(rng.choice(n, limit, replace=False)) if limit is not None and n > limit else idx


def load_simulation_data(
    path: str | Path,
    *,
    seed: int = 0,
    max_pool: int | None = None,
    max_val: int | None = 200,
    max_test: int | None = None,
    shape: Sequence[int] | None = None,
) -> SimulationData:
    """Load ``path``; ``max_*`` take fixed seeded subsets (the same for every strategy and seed).
    Folders without an official split get a fixed seeded one (70% pool, 10% val, 20% test).
    Scans of an MSD/nnU-Net folder are z-scored; a project's scans are windowed to uint8 as the
    loop feeds its network (`workbench.loop.item_arrays`), so a simulation on a project trains
    on what `workbench train` would. Both are centre padded/cropped to ``shape`` (default: the
    median shape rounded up to a multiple of 8)."""
    p = Path(path)
    if not p.exists():
        raise SimulationDataError("not found", path=p)
    if p.is_file() and p.suffix == ".npz":
        data = _from_npz(p)
    elif (p / "project.json").is_file():
        data = _from_project(p, seed, shape)
    elif p.is_dir():
        data = _from_dataset_folder(p, seed, shape)
    else:
        raise SimulationDataError(
            "expected a MedMNIST .npz, an MSD/nnU-Net folder or a project", path=p
        )
    rng = np.random.default_rng(seed)
    pool = _take(rng, len(data.pool_x), max_pool)
    val = _take(rng, len(data.val_x), max_val)
    test = _take(rng, len(data.test_x), max_test)
    return SimulationData(
        data.name,
        data.task,
        data.spatial_dims,
        data.num_classes,
        data.pool_x[pool],
        data.pool_y[pool],
        data.val_x[val],
        data.val_y[val],
        data.test_x[test],
        data.test_y[test],
        data.notes,
        tuple(data.pool_keys[i] for i in pool) if data.pool_keys else (),
    )


def _from_npz(p: Path) -> SimulationData:
    with np.load(p, allow_pickle=False) as z:
        keys = set(z.files)
        need = {f"{s}_{k}" for s in ("train", "val", "test") for k in ("images", "labels")}
        if not need <= keys:
            raise SimulationDataError(f"missing arrays {sorted(need - keys)}", path=p)
        arr = {k: z[k] for k in need}
    ys = [arr[f"{s}_labels"].reshape(len(arr[f"{s}_labels"]), -1) for s in ("train", "val", "test")]
    if any(y.shape[1] != 1 for y in ys):
        raise SimulationDataError("multi-label npz files are not supported", path=p)
    images = arr["train_images"]
    dims = images.ndim - 1 - (images.ndim == 5 or (images.ndim == 4 and images.shape[-1] in (3,)))
    num_classes = int(max(int(y.max()) for y in ys)) + 1
    return SimulationData(
        p.stem,
        "classification",
        int(dims),
        num_classes,
        images,
        ys[0][:, 0].astype(np.int64),
        arr["val_images"],
        ys[1][:, 0].astype(np.int64),
        arr["test_images"],
        ys[2][:, 0].astype(np.int64),
        "official MedMNIST splits",
        tuple(f"train[{i}]" for i in range(len(images))),
    )


def _fit_shape(shapes: list[tuple[int, ...]], shape: Sequence[int] | None) -> tuple[int, ...]:
    if shape is not None:
        return tuple(int(s) for s in shape)
    median = np.median(np.array(shapes), axis=0)
    return tuple(int(np.ceil(m / 8) * 8) for m in median)


def _pad_crop(a: np.ndarray, shape: Sequence[int]) -> np.ndarray:
    """Centre pad (zeros) or crop ``a`` to ``shape``."""
    out = np.zeros(tuple(shape), a.dtype)
    src, dst = [], []
    for n, m in zip(a.shape, shape, strict=True):
        if n >= m:
            s = (n - m) // 2
            src.append(slice(s, s + m))
            dst.append(slice(0, m))
        else:
            s = (m - n) // 2
            src.append(slice(0, n))
            dst.append(slice(s, s + n))
    out[tuple(dst)] = a[tuple(src)]
    return out


def _zscore(a: np.ndarray) -> np.ndarray:
    a = a.astype(np.float32)
    return (a - a.mean()) / (a.std() + 1e-6)


def _seeded_split(n: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    order = np.random.default_rng(seed).permutation(n)
    n_test, n_val = max(1, round(0.2 * n)), max(1, round(0.1 * n))
    return order[n_test + n_val :], order[n_test : n_test + n_val], order[:n_test]


def _segmentation(
    name: str,
    images: list[np.ndarray],
    masks: list[np.ndarray],
    split: tuple[np.ndarray, np.ndarray, np.ndarray],
    shape: Sequence[int] | None,
    notes: str,
    keys: Sequence[str],
    *,
    windowed: bool = False,
) -> SimulationData:
    """Raw scans ``[*spatial]`` z-scored, or with ``windowed`` the loop's windowed uint8
    ``[C, *spatial]`` kept as they are; both centre padded/cropped to one shape."""
    if windowed:
        target = _fit_shape([v.shape[1:] for v in images], shape)
        x = np.stack([_pad_crop(v, (v.shape[0], *target)) for v in images])
        how = "windowed uint8 as the loop feeds its network"
    else:
        target = _fit_shape([v.shape for v in images], shape)
        x = np.stack([_pad_crop(_zscore(v), target) for v in images])
        how = "z-scored"
    y = np.stack([_pad_crop(m.astype(np.uint8), target) for m in masks])
    pool, val, test = split
    return SimulationData(
        name,
        "segmentation",
        len(target),
        int(y.max()) + 1,
        x[pool],
        y[pool],
        x[val],
        y[val],
        x[test],
        y[test],
        f"{notes}; {how}, centre padded/cropped to {list(target)}",
        tuple(keys[i] for i in pool),
    )


def _from_dataset_folder(p: Path, seed: int, shape: Sequence[int] | None) -> SimulationData:
    from workbench.io import iter_dataset

    images, masks, keys = [], [], []
    for record in iter_dataset(p):
        mask = record.load_label()
        if mask is None:
            continue
        images.append(np.asarray(record.load().array))
        masks.append(np.asarray(mask))
        keys.append(record.key)
    if not images:
        images, masks, keys = _paired_folders(p)
    if len(images) < 5:
        raise SimulationDataError(f"only {len(images)} labelled cases; need at least 5", path=p)
    return _segmentation(
        p.name,
        images,
        masks,
        _seeded_split(len(images), seed),
        shape,
        f"fixed seeded split (seed {seed}): 70% pool, 10% val, 20% test",
        keys,
    )


def _from_project(p: Path, seed: int, shape: Sequence[int] | None) -> SimulationData:
    from workbench.loop import item_arrays, item_images
    from workbench.store import Task as StoreTask
    from workbench.store import open_project

    with open_project(p) as store:
        task = store.config.task
        labels = {v.item_id: v for v in store.current_labels(include_ground_truth=True)}
        items = [i for i in store.list_items() if i.id in labels]
        if task is StoreTask.SEGMENTATION:  # as the loop feeds its network
            images = item_arrays(items)
            masks = [store.get_mask(labels[i.id].mask_hash or "") for i in items]
        classes = len(store.config.classes)
    if len(items) < 5:
        raise SimulationDataError(f"only {len(items)} items with labels; need at least 5", path=p)
    splits = np.array([i.split for i in items])
    if {"val", "test"} <= set(splits):
        split = tuple(np.flatnonzero(splits == s) for s in ("train", "val", "test"))
        notes = "project splits"
    else:
        split = _seeded_split(len(items), seed)
        notes = f"fixed seeded split (seed {seed}): 70% pool, 10% val, 20% test"
    pool, val, test = split
    if task is StoreTask.SEGMENTATION:
        return _segmentation(
            p.name,
            images,
            masks,
            (pool, val, test),
            shape,
            notes,
            [i.key for i in items],
            windowed=True,
        )
    # as the loop feeds its classifier: windowed uint8 [N, C, *spatial], one shape
    x = item_images(items, size=tuple(shape) if shape else None)
    y = np.array([labels[i.id].class_index for i in items], np.int64)
    return SimulationData(
        p.name,
        "classification",
        x.ndim - 2,
        classes,
        x[pool],
        y[pool],
        x[val],
        y[val],
        x[test],
        y[test],
        notes,
        tuple(items[i].key for i in pool),
    )


def _paired_folders(p: Path) -> tuple[list[np.ndarray], list[np.ndarray], list[str]]:
    """``imagesTr/<case>[_0000].ext`` paired with ``labelsTr/<case>.ext`` (MSD / nnU-Net layout
    without a dataset.json), with the images' paths relative to ``p``."""
    from workbench.io import read_label, read_scan

    images, masks, keys = [], [], []
    labels_dir = p / "labelsTr"
    for image in sorted((p / "imagesTr").glob("*")):
        name = image.name.replace("_0000.", ".")
        label = labels_dir / name
        if image.name.startswith(".") or not label.is_file():
            continue
        images.append(np.asarray(read_scan(image).array))
        masks.append(np.asarray(read_label(str(label))))
        keys.append(image.relative_to(p).as_posix())
    return images, masks, keys
