"""Check, before decoding, that a DICOM transfer syntax has a decoder plugin installed."""

from __future__ import annotations

from pathlib import Path

from pydicom.uid import UID

from ..errors import MissingCodecError, UnsupportedFormatError

_LIBJPEG = "pylibjpeg pylibjpeg-libjpeg"
_OPENJPEG = "pylibjpeg pylibjpeg-openjpeg"

# transfer syntax UID -> pip packages that give pydicom a decoder for it
_INSTALL_HINTS: dict[str, str] = {
    "1.2.840.10008.1.2.4.50": _LIBJPEG,  # JPEG Baseline
    "1.2.840.10008.1.2.4.51": _LIBJPEG,  # JPEG Extended
    "1.2.840.10008.1.2.4.57": _LIBJPEG,  # JPEG Lossless
    "1.2.840.10008.1.2.4.70": _LIBJPEG,  # JPEG Lossless SV1
    "1.2.840.10008.1.2.4.80": _LIBJPEG,  # JPEG-LS Lossless
    "1.2.840.10008.1.2.4.81": _LIBJPEG,  # JPEG-LS Near-Lossless
    "1.2.840.10008.1.2.4.90": _OPENJPEG,  # JPEG 2000 Lossless
    "1.2.840.10008.1.2.4.91": _OPENJPEG,  # JPEG 2000
    "1.2.840.10008.1.2.4.201": _OPENJPEG,  # HTJ2K Lossless
    "1.2.840.10008.1.2.4.202": _OPENJPEG,  # HTJ2K Lossless RPCL
    "1.2.840.10008.1.2.4.203": _OPENJPEG,  # HTJ2K
    "1.2.840.10008.1.2.5": "pylibjpeg pylibjpeg-rle",  # RLE (normally built in)
}


def install_hint(uid: str) -> str:
    """The pip packages to install for a compressed transfer syntax."""
    return _INSTALL_HINTS.get(uid, "python-gdcm")


def ensure_decoder(transfer_syntax: str, path: str | Path) -> None:
    """Raise ``MissingCodecError`` when pydicom has no usable decoder for ``transfer_syntax``.

    The message names the transfer syntax (name and UID) and the pip package(s) to install.
    Uncompressed syntaxes pass through.
    """
    from pydicom.pixels import get_decoder

    uid = UID(transfer_syntax)
    if not uid.is_compressed:
        return
    try:
        decoder = get_decoder(uid)
    except NotImplementedError as exc:
        raise UnsupportedFormatError(
            f"transfer syntax {uid.name} ({uid}) has no pydicom decoder", path=path
        ) from exc
    if decoder.is_available:
        return
    raise MissingCodecError(
        f"pixel data uses {uid.name} ({uid}) and no decoder plugin is installed; "
        f"install one with: pip install {install_hint(str(uid))} "
        f"(or: pip install python-gdcm)",
        path=path,
        field="TransferSyntaxUID",
    )
