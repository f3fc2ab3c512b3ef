"""Formatting and parsing of the URI strings a store keeps to reload an image later.

Forms:
  * ``/abs/path/file.nii.gz`` (any absolute path to a supported file, or a one-series DICOM folder)
  * ``npz:/abs/file.npz#train/12`` (image 12 of the ``train_images`` array)
  * ``dicom:/abs/folder#<SeriesInstanceUID>`` (one series among the DICOM files under a folder)
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..errors import ScanReadError

NPZ_SCHEME = "npz:"
DICOM_SCHEME = "dicom:"


@dataclass(frozen=True)
class ParsedUri:
    scheme: str  # "file", "npz" or "dicom"
    path: Path
    fragment: str = ""


def npz_uri(path: str | Path, split: str, index: int) -> str:
    return f"{NPZ_SCHEME}{Path(path).absolute()}#{split}/{int(index)}"


def dicom_uri(folder: str | Path, series_uid: str) -> str:
    return f"{DICOM_SCHEME}{Path(folder).absolute()}#{series_uid}"


def file_uri(path: str | Path) -> str:
    return str(Path(path).absolute())


def parse_uri(uri: str) -> ParsedUri:
    """Split a URI into scheme, absolute path and fragment; ``ScanReadError`` when malformed."""
    for scheme in (NPZ_SCHEME, DICOM_SCHEME):
        if uri.startswith(scheme):
            body, sep, fragment = uri[len(scheme) :].rpartition("#")
            if not sep or not fragment or not body:
                raise ScanReadError(f"URI needs a '#fragment': {uri!r}", path=uri)
            parsed = ParsedUri(scheme.rstrip(":"), Path(body), fragment)
            break
    else:
        parsed = ParsedUri("file", Path(uri))
    if not parsed.path.is_absolute():
        raise ScanReadError(f"URI path must be absolute: {uri!r}", path=uri)
    return parsed


def parse_npz_fragment(uri: str, fragment: str) -> tuple[str, int]:
    """``train/12`` -> ``("train", 12)``."""
    split, sep, index = fragment.partition("/")
    if not sep or not split or not index.isdigit():
        raise ScanReadError(f"npz URI fragment must be '<split>/<index>': {uri!r}", path=uri)
    return split, int(index)
