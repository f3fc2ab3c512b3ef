"""Display windows: CT presets, percentile windows and the choice by modality."""

from __future__ import annotations

import numpy as np
import pytest
from pydicom.data import get_testdata_file

from workbench.io import (
    WINDOW_PRESETS,
    ScanImage,
    Window,
    affine_from_spacing,
    apply_window,
    default_window,
    percentile_window,
    read_scan,
)


def _image(array: np.ndarray, modality: str) -> ScanImage:
    return ScanImage(array, (1.0, 1.0), affine_from_spacing((1.0, 1.0)), modality)


def test_presets_and_apply() -> None:
    lung = WINDOW_PRESETS["lung"]
    assert (lung.width, lung.level) == (1500, -600)
    assert (WINDOW_PRESETS["brain"].low, WINDOW_PRESETS["brain"].high) == (0, 80)
    out = apply_window(np.array([-2000.0, -600.0, 1000.0, np.nan]), lung)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, [0.0, 0.5, 1.0, 0.0])


def test_percentile_window_ignores_outliers() -> None:
    values = np.concatenate([np.linspace(0, 100, 1000), [1e6]])
    window = percentile_window(values)
    assert window.high < 200 and window.low == pytest.approx(1.0, abs=0.2)
    flat = percentile_window(np.full((4, 4), 7.0))
    assert flat.width > 0


def test_default_window_by_modality() -> None:
    ct = read_scan(get_testdata_file("CT_small.dcm"))  # type: ignore[arg-type]
    assert default_window(ct) == WINDOW_PRESETS["soft_tissue"]
    hu = _image(np.array([[-1000.0, 40.0]]), "CT")
    assert default_window(hu).name == "soft_tissue"
    mr = _image(np.arange(100, dtype=np.int16).reshape(10, 10), "MR")
    assert default_window(mr).name == "p1-p99"
    assert default_window(_image(np.zeros((2, 2), np.uint8), "US")) == Window.from_range(
        0, 255, "full"
    )
    with_header = ScanImage(
        np.zeros((2, 2), np.int16),
        (1.0, 1.0),
        np.eye(4),
        "MR",
        {"WindowCenter": "300\\200", "WindowWidth": "800\\600"},
    )
    assert (default_window(with_header).level, default_window(with_header).width) == (300, 800)


def test_percentile_window_of_a_large_volume_samples_it_and_stays_close() -> None:
    rng = np.random.default_rng(0)
    vol = rng.gamma(2.0, 150.0, (256, 256, 80)).astype(np.float32) - 1000  # 5.2 M voxels
    vol[100:140, 100:140, :] = np.nan  # NaNs are still ignored after sampling
    exact = np.nanpercentile(vol, [1, 99])
    window = percentile_window(vol)  # samples about 1 M of them
    assert window.low == pytest.approx(exact[0], abs=0.01 * (exact[1] - exact[0]))
    assert window.high == pytest.approx(exact[1], abs=0.01 * (exact[1] - exact[0]))
    coarse = percentile_window(vol, max_samples=1_000)  # a cruder grid: still in range
    assert exact[0] - 50 < coarse.low < coarse.high < exact[1] + 200
