"""NIfTI-1/2 reading and atomic writing (nibabel)."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import nibabel as nib
import numpy as np
from nibabel.filebasedimages import ImageFileError
from nibabel.spatialimages import HeaderDataError

from ..errors import ScanReadError
from ._atomic import atomic_path
from ._image import ScanImage

_NIFTI_ERRORS = (
    OSError,
    EOFError,
    ValueError,
    zlib.error,
    struct.error,
    ImageFileError,
    HeaderDataError,
)


def read_nifti(path: str | Path) -> ScanImage:
    """Read a NIfTI file: voxels in file order, the header's best affine, zooms as spacing.

    ``scl_slope``/``scl_inter`` are applied when the header sets them (then the array is float).
    Extra dimensions (time, channels) stay after the three spatial axes.
    """
    file = Path(path)
    try:
        image = nib.load(file)
        if not isinstance(image, nib.Nifti1Image | nib.Nifti2Image):
            raise ScanReadError("not a NIfTI image", path=file)
        array = np.asanyarray(image.dataobj)
        zooms = image.header.get_zooms()
        affine = np.asarray(image.affine, dtype=np.float64)
    except _NIFTI_ERRORS as exc:
        raise ScanReadError(f"corrupt or truncated NIfTI ({exc})", path=file) from exc
    n_spatial = min(3, array.ndim)
    spacing = tuple(float(z) for z in zooms[:n_spatial])
    return ScanImage(
        array=np.asarray(array),
        spacing=spacing,
        affine=affine,
        modality="OT",
        metadata={"Format": type(image).__name__.replace("Image", "")},
        source=str(file),
    )


def write_nifti(path: str | Path, array: np.ndarray, affine: np.ndarray) -> Path:
    """Write ``array`` with ``affine`` (RAS mm) as NIfTI-1, atomically; returns the path.

    ``.nii.gz`` is compressed. Booleans are stored as uint8 and int64 as int32 when the values
    fit (many tools cannot read int64); sform and qform are both set to the affine (scanner).
    """
    data = np.asarray(array)
    if data.dtype == np.bool_:
        data = data.astype(np.uint8)
    elif data.dtype in (np.int64, np.uint64):
        info = np.iinfo(np.int32)
        if data.size and (data.min() < info.min or data.max() > info.max):
            raise ValueError("int64 values do not fit int32; cast the array before writing")
        data = data.astype(np.int32)
    image = nib.Nifti1Image(data, np.asarray(affine, dtype=np.float64))
    image.header.set_xyzt_units("mm")
    image.set_sform(image.affine, code=1)
    image.set_qform(image.affine, code=1)
    target = Path(path)
    with atomic_path(target) as tmp:
        nib.save(image, tmp)
    return target
