"""Decide what a file is from its first bytes, with the suffix as a cross-check."""

from __future__ import annotations

import gzip
import zlib
from enum import Enum
from pathlib import Path

from ..errors import ScanReadError, UnsupportedFormatError
from ._atomic import full_suffix


class FileFormat(str, Enum):
    NIFTI = "nifti"
    PNG = "png"
    JPEG = "jpeg"
    TIFF = "tiff"
    DICOM = "dicom"
    NPZ = "npz"


SUFFIX_FORMATS: dict[str, FileFormat] = {
    ".nii": FileFormat.NIFTI,
    ".nii.gz": FileFormat.NIFTI,
    ".png": FileFormat.PNG,
    ".jpg": FileFormat.JPEG,
    ".jpeg": FileFormat.JPEG,
    ".tif": FileFormat.TIFF,
    ".tiff": FileFormat.TIFF,
    ".dcm": FileFormat.DICOM,
    ".dicom": FileFormat.DICOM,
    ".npz": FileFormat.NPZ,
}

_HEAD_BYTES = 544


def _nifti_magic(head: bytes) -> bool:
    """NIfTI-1 (sizeof_hdr 348, magic at 344) or NIfTI-2 (540, magic at 4), either endian."""
    size = {int.from_bytes(head[:4], "little"), int.from_bytes(head[:4], "big")}
    nifti1 = 348 in size and head[344:348] in (b"n+1\x00", b"ni1\x00")
    return nifti1 or (540 in size and head[4:8] in (b"n+2\x00", b"ni2\x00"))


def _format_of_bytes(head: bytes) -> FileFormat | None:
    if head[128:132] == b"DICM":  # first: a DICOM preamble may itself look like TIFF
        return FileFormat.DICOM
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return FileFormat.PNG
    if head.startswith(b"\xff\xd8\xff"):
        return FileFormat.JPEG
    if head[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):
        return FileFormat.TIFF
    if head.startswith(b"PK\x03\x04"):
        return FileFormat.NPZ
    if _nifti_magic(head):
        return FileFormat.NIFTI
    return None


def _gunzip_head(path: Path) -> bytes:
    try:
        with gzip.open(path, "rb") as stream:
            return stream.read(_HEAD_BYTES)
    except (OSError, EOFError, zlib.error) as exc:
        raise ScanReadError(f"corrupt gzip stream ({exc})", path=path) from exc


def sniff_format(path: str | Path) -> FileFormat:
    """The format of a file, from its content; raise a typed error when it cannot be read.

    Raises ``ScanReadError`` for a missing, empty or unrecognisable file (naming the expected
    format when the suffix promised one) and ``UnsupportedFormatError`` for other suffixes.
    """
    file = Path(path)
    if not file.exists():
        raise ScanReadError("file not found", path=file)
    if not file.is_file():
        raise ScanReadError("not a regular file", path=file)
    try:
        with file.open("rb") as stream:
            head = stream.read(_HEAD_BYTES)
    except OSError as exc:
        raise ScanReadError(f"cannot open file ({exc.strerror or exc})", path=file) from exc
    if not head:
        raise ScanReadError("empty file (0 bytes)", path=file)
    expected = SUFFIX_FORMATS.get(full_suffix(file))
    if head.startswith(b"\x1f\x8b"):
        inner = _gunzip_head(file)
        if _nifti_magic(inner):
            return FileFormat.NIFTI
        raise ScanReadError("gzip file does not hold a NIfTI image (bad magic)", path=file)
    found = _format_of_bytes(head)
    if found is not None:
        return found
    if expected is FileFormat.DICOM:
        return FileFormat.DICOM  # DICOM without the 128-byte preamble; the reader decides
    if expected is not None:
        raise ScanReadError(f"wrong magic bytes for a {expected.value.upper()} file", path=file)
    raise UnsupportedFormatError(
        f"unsupported file type '{full_suffix(file) or '(no suffix)'}' "
        f"(supported: {', '.join(sorted(SUFFIX_FORMATS))} and DICOM folders)",
        path=file,
    )
