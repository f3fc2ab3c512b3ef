"""A content hash of voxel data, independent of file format and byte order."""

from __future__ import annotations

import hashlib

import numpy as np

from ._image import ScanImage


def content_hash(data: ScanImage | np.ndarray) -> str:
    """``sha256`` hex digest of the voxel bytes, shape and dtype (little-endian, C order).

    The same voxels give the same hash whether they came from NIfTI, DICOM or an npz; a change in
    shape or dtype changes it. Geometry (spacing, affine) is not included.
    """
    array = data.array if isinstance(data, ScanImage) else np.asarray(data)
    if array.dtype.byteorder == ">":
        array = array.astype(array.dtype.newbyteorder("<"))
    array = np.ascontiguousarray(array)
    digest = hashlib.sha256()
    digest.update(f"{array.dtype.str}|{array.shape}|".encode())
    digest.update(array.reshape(-1).view(np.uint8).data)
    return digest.hexdigest()
