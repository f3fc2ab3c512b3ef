"""Turning scan intensities into 8-bit display pixels (window / level)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from workbench.io._image import ScanImage

# (center, width) in Hounsfield units; the usual CT presets.
CT_PRESETS: dict[str, tuple[float, float]] = {
    "brain": (40.0, 80.0),
    "subdural": (75.0, 215.0),
    "stroke": (40.0, 40.0),
    "soft_tissue": (50.0, 350.0),
    "abdomen": (40.0, 400.0),
    "liver": (60.0, 150.0),
    "mediastinum": (50.0, 350.0),
    "lung": (-600.0, 1500.0),
    "bone": (400.0, 1800.0),
}


@dataclass(frozen=True)
class Window:
    center: float
    width: float

    @property
    def low(self) -> float:
        return self.center - self.width / 2.0

    @property
    def high(self) -> float:
        return self.center + self.width / 2.0


def presets() -> dict[str, tuple[float, float]]:
    """Window presets ``name -> (center, width)``: ``workbench.io``'s over the built-in CT ones."""
    table = dict(CT_PRESETS)
    try:
        from workbench.io._windowing import WINDOW_PRESETS
    except ImportError:
        return table
    for name, window in WINDOW_PRESETS.items():
        table[str(name)] = (float(window.level), float(window.width))
    return table


def default_window(image: ScanImage) -> Window:
    """The first window to show ``image`` with (``workbench.io``'s choice when available)."""
    try:
        from workbench.io._windowing import default_window as io_default
    except ImportError:
        if image.array.dtype == np.uint8:
            return Window(127.5, 255.0)
        if image.modality.upper() == "CT":
            return Window(*CT_PRESETS["soft_tissue"])
        return auto_window(image.array)
    chosen = io_default(image)
    return Window(float(chosen.level), float(chosen.width))


def auto_window(array: np.ndarray, low_pct: float = 0.5, high_pct: float = 99.5) -> Window:
    """A window spanning the given percentiles of the (subsampled) intensities."""
    flat: np.ndarray = np.asarray(array).reshape(-1)
    if flat.size > 1_000_000:
        flat = flat[:: flat.size // 1_000_000]
    if flat.dtype.kind == "f":
        flat = flat[np.isfinite(flat)]
    if flat.size == 0:
        return Window(0.5, 1.0)
    lo, hi = (float(v) for v in np.percentile(flat, [low_pct, high_pct]))
    if hi <= lo:
        hi = lo + 1.0
    return Window((lo + hi) / 2.0, hi - lo)


def to_uint8(array: np.ndarray, window: Window) -> np.ndarray:
    """Map ``array`` through ``window`` to uint8 (0 at ``low``, 255 at ``high``)."""
    if array.dtype == np.uint8 and window.low == 0.0 and window.high == 255.0:
        return np.ascontiguousarray(array)
    scale = 255.0 / max(window.width, 1e-6)
    out = (np.asarray(array, np.float32) - np.float32(window.low)) * np.float32(scale)
    np.clip(out, 0.0, 255.0, out=out)
    return np.ascontiguousarray(out + 0.5, dtype=np.float32).astype(np.uint8)
