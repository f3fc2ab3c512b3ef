"""MedMNIST-style ``.npz`` archives: ``{split}_images`` / ``{split}_labels`` arrays."""

from __future__ import annotations

import zipfile
from functools import lru_cache
from pathlib import Path

import numpy as np

from ..errors import ManifestError, ScanReadError
from ._image import ScanImage, affine_from_spacing

SPLITS: tuple[str, ...] = ("train", "val", "test")

# MedMNIST file stem -> DICOM-style modality code (others read as "OT")
_MODALITIES = {
    "breastmnist": "US",
    "pneumoniamnist": "DX",
    "chestmnist": "DX",
    "organmnist3d": "CT",
    "nodulemnist3d": "CT",
    "fracturemnist3d": "CT",
    "vesselmnist3d": "MR",
}


def npz_modality(path: Path) -> str:
    return _MODALITIES.get(path.stem.lower(), "OT")


def npz_array_shapes(path: Path) -> dict[str, tuple[int, ...]]:
    """Shapes of the arrays in an ``.npz`` read from the ``.npy`` headers (no decompression)."""
    shapes: dict[str, tuple[int, ...]] = {}
    try:
        with zipfile.ZipFile(path) as archive:
            for name in archive.namelist():
                if not name.endswith(".npy"):
                    continue
                with archive.open(name) as member:
                    version = np.lib.format.read_magic(member)
                    if version == (1, 0):
                        shape, _, _ = np.lib.format.read_array_header_1_0(member)
                    else:
                        shape, _, _ = np.lib.format.read_array_header_2_0(member)
                shapes[name[: -len(".npy")]] = tuple(int(s) for s in shape)
    except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile) as exc:
        raise ManifestError(f"not a readable .npz archive ({exc})", path=path) from exc
    return shapes


@lru_cache(maxsize=4)
def _cached_array(path: str, mtime_ns: int, size: int, name: str) -> np.ndarray:
    del mtime_ns, size  # part of the cache key only: a changed file is read again
    with np.load(path, allow_pickle=False) as archive:
        array = np.asarray(archive[name])
    array.setflags(write=False)
    return array


def load_npz_array(path: Path, name: str) -> np.ndarray:
    """One array of an ``.npz`` (read-only; the last few are cached, keyed by file mtime)."""
    try:
        stat = path.stat()
        return _cached_array(str(path), stat.st_mtime_ns, stat.st_size, name)
    except KeyError as exc:
        raise ScanReadError(f"no array '{name}' in the archive", path=path, field=name) from exc
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise ScanReadError(f"corrupt .npz archive ({exc})", path=path, field=name) from exc


def image_is_rgb(sample_shape: tuple[int, ...]) -> bool:
    """``(H, W, 3|4)`` is a colour image; ``(D, H, W)`` otherwise (MedMNIST 3D)."""
    return len(sample_shape) == 3 and sample_shape[-1] in (3, 4) and sample_shape[0] > 4


def read_npz_image(path: Path, split: str, index: int, *, source: str) -> ScanImage:
    """Image ``index`` of ``{split}_images``: 2D ``(H, W[, C])`` or 3D, with 1 mm spacing."""
    images = load_npz_array(path, f"{split}_images")
    if not 0 <= index < images.shape[0]:
        raise ScanReadError(
            f"index {index} out of range (0..{images.shape[0] - 1})",
            path=path,
            field=f"{split}_images",
        )
    array = np.array(images[index])
    n_spatial = 2 if array.ndim == 2 or image_is_rgb(array.shape) else 3
    spacing = (1.0,) * n_spatial
    return ScanImage(
        array=array,
        spacing=spacing,
        affine=affine_from_spacing(spacing),
        modality=npz_modality(path),
        metadata={"Format": "npz", "Split": split},
        source=source,
    )
