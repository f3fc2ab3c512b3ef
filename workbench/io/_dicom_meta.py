"""The safe, non-identifying DICOM attributes kept in ``ScanImage.metadata``."""

from __future__ import annotations

from pydicom.dataset import Dataset
from pydicom.multival import MultiValue

# Never add patient-identifying attributes (PatientName, PatientID, PatientBirthDate, ...).
SAFE_TAGS: tuple[str, ...] = (
    "Modality",
    "SeriesDescription",
    "SeriesInstanceUID",
    "StudyInstanceUID",
    "SeriesNumber",
    "Manufacturer",
    "ManufacturerModelName",
    "BodyPartExamined",
    "SliceThickness",
    "PhotometricInterpretation",
    "BitsStored",
    "RescaleType",
    "WindowCenter",
    "WindowWidth",
    "MagneticFieldStrength",
    "ConvolutionKernel",
    "TransferSyntaxUID",
)


def _text(value: object) -> str:
    if isinstance(value, MultiValue | list | tuple):
        return "\\".join(str(v) for v in value)
    return str(value)


def safe_metadata(ds: Dataset) -> dict[str, str]:
    """Only the attributes in ``SAFE_TAGS`` that are present and non-empty, as strings."""
    found: dict[str, str] = {}
    for tag in SAFE_TAGS:
        if tag == "TransferSyntaxUID":
            meta = getattr(ds, "file_meta", None)
            value = getattr(meta, "TransferSyntaxUID", None) if meta is not None else None
        else:
            value = ds.get(tag)
        if value is not None and str(value) != "":
            found[tag] = _text(value)
    return found


def modality_of(ds: Dataset) -> str:
    """The Modality attribute, ``OT`` (other) when missing."""
    value = str(ds.get("Modality", "") or "").strip()
    return value or "OT"
