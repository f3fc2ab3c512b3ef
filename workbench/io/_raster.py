"""2D raster images: PNG and JPEG through Pillow, TIFF through tifffile; PNG writing."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np

from ..errors import ScanReadError, UnsupportedFormatError
from ._atomic import atomic_path
from ._image import ScanImage, affine_from_spacing

_GREY_MODES = {"L": np.uint8, "I;16": np.uint16, "I;16L": np.uint16, "I;16B": np.uint16}


def _as_image(array: np.ndarray, path: Path, fmt: str) -> ScanImage:
    return ScanImage(
        array=array,
        spacing=(1.0, 1.0),
        affine=affine_from_spacing((1.0, 1.0)),
        modality="OT",
        metadata={"Format": fmt},
        source=str(path),
    )


def _pillow_array(image: object, keep_palette: bool) -> np.ndarray:
    from PIL import Image

    assert isinstance(image, Image.Image)
    mode = image.mode
    if mode in _GREY_MODES:
        return np.asarray(image).astype(_GREY_MODES[mode], copy=False)
    if mode == "1":
        return np.asarray(image).astype(np.uint8)
    if mode == "P" and keep_palette:
        return np.asarray(image)
    if mode == "I":
        data = np.asarray(image)
        if data.size and data.min() >= 0 and data.max() <= 0xFFFF:
            return data.astype(np.uint16)
        return data.astype(np.int32)
    if mode == "F":
        return np.asarray(image, dtype=np.float32)
    if mode in ("RGB", "RGBA"):
        return np.asarray(image)
    if mode == "LA":
        return np.asarray(image.convert("L"))
    has_alpha = mode in ("PA", "RGBa", "La") or "transparency" in image.info
    return np.asarray(image.convert("RGBA" if has_alpha else "RGB"))


def read_pillow(path: str | Path, *, keep_palette: bool = False) -> ScanImage:
    """Read a PNG or JPEG as displayed (EXIF rotation applied). Grey stays 2D, 16-bit stays uint16.

    Palette images become RGB(A) unless ``keep_palette`` (label maps keep their indices).
    """
    from PIL import Image, ImageOps, UnidentifiedImageError

    file = Path(path)
    try:
        with Image.open(file) as opened:
            fmt = opened.format or "image"
            image = ImageOps.exif_transpose(opened) if fmt == "JPEG" else opened
            image.load()
            array = _pillow_array(image, keep_palette)
    except UnidentifiedImageError as exc:
        raise ScanReadError("not a readable image (unidentified format)", path=file) from exc
    except Image.DecompressionBombError as exc:
        raise ScanReadError(f"image too large ({exc})", path=file) from exc
    except (OSError, ValueError, EOFError, SyntaxError, struct.error, zlib.error) as exc:
        raise ScanReadError(f"corrupt or truncated {fmt_name(file)} ({exc})", path=file) from exc
    return _as_image(np.ascontiguousarray(array), file, fmt)


def fmt_name(path: Path) -> str:
    return path.suffix.lstrip(".").upper() or "image"


def read_tiff(path: str | Path) -> ScanImage:
    """Read the first image of a TIFF (grey 8/16-bit or RGB(A)); stacks are not supported."""
    import tifffile

    file = Path(path)
    try:
        array = np.asarray(tifffile.imread(file, key=0))
    except (OSError, ValueError, EOFError, struct.error, zlib.error, KeyError, IndexError) as exc:
        raise ScanReadError(f"corrupt or truncated TIFF ({exc})", path=file) from exc
    if array.ndim == 3 and array.shape[-1] not in (3, 4):
        raise UnsupportedFormatError(
            f"TIFF page of shape {array.shape} is not a 2D grey or RGB(A) image", path=file
        )
    if array.ndim not in (2, 3):
        raise UnsupportedFormatError(f"TIFF page of shape {array.shape} not supported", path=file)
    if array.dtype.byteorder == ">":
        array = array.astype(array.dtype.newbyteorder("="))
    return _as_image(np.ascontiguousarray(array), file, "TIFF")


def _png_ready(array: np.ndarray) -> np.ndarray:
    data = np.asarray(array)
    if data.dtype == np.bool_:
        return data.astype(np.uint8)
    if data.ndim == 3 and data.shape[-1] in (3, 4):
        if data.dtype != np.uint8:
            raise ValueError(f"RGB(A) PNG needs uint8, got {data.dtype}")
        return data
    if data.ndim != 2:
        raise ValueError(f"PNG needs (H, W) or (H, W, 3|4), got shape {data.shape}")
    if data.dtype in (np.uint8, np.uint16):
        return data
    if np.issubdtype(data.dtype, np.integer):
        low, high = (int(data.min()), int(data.max())) if data.size else (0, 0)
        if low >= 0 and high <= 0xFF:
            return data.astype(np.uint8)
        if low >= 0 and high <= 0xFFFF:
            return data.astype(np.uint16)
    raise ValueError(f"PNG holds uint8 or uint16 values, got {data.dtype}")


def write_png(path: str | Path, array: np.ndarray) -> Path:
    """Write a 2D mask or image as PNG, atomically: uint8/uint16 grey or uint8 RGB(A).

    Other integer arrays are narrowed to uint8/uint16 when their values fit; otherwise
    ``ValueError``. Returns the path.
    """
    from PIL import Image

    data = np.ascontiguousarray(_png_ready(array))
    if data.dtype == np.uint16:
        image = Image.fromarray(data.astype("<u2", copy=False))
    else:
        image = Image.fromarray(data)
    target = Path(path)
    with atomic_path(target) as tmp:
        image.save(tmp, format="PNG")
    return target
