"""The 3D context view (ipyniivue) renders offline in JupyterLab + Chromium: a volume with the
annotator's mask over it, from NIfTI files written under the project's folder."""

from __future__ import annotations

import io
from typing import Any

import numpy as np
import pytest
from PIL import Image

from tests.browser._lab import Lab, open_and_run, screenshot, wait_until, write_notebook
from tests.browser.test_annotator_browser import make_project
from workbench.store import Task

pytestmark = pytest.mark.browser


def test_viewer3d_renders_offline(page: Any, lab: Lab) -> None:
    vol = np.zeros((32, 32, 16), np.int16)
    vol[8:24, 8:24, 4:12] = 500
    make_project(lab, "ctx3d", Task.SEGMENTATION, ("background", "organ"), [vol], suffix=".nii.gz")
    notebook = write_notebook(
        lab,
        "ctx3d.ipynb",
        [
            "from workbench.widgets import Annotator\n"
            f"w = Annotator({str(lab.root / 'ctx3d')!r}, 'alice')\nw",
            "w._handle({'type': 'stroke', 'points': [[10, 10], [10, 20]],"
            " 'radius': 3, 'value': 1})\n"
            "nv = w.view_3d(height=300)\nnv",
        ],
    )
    open_and_run(page, lab, notebook)
    # NiiVue draws into a WebGL2 canvas of its own, next to the annotator's 2D canvas
    page.wait_for_function(
        "() => [...document.querySelectorAll('.jp-OutputArea-output canvas')]"
        ".some(c => !c.classList.contains('wb-canvas') && c.width > 0 && c.height > 0"
        " && c.getContext('webgl2') !== null)",
        timeout=60_000,
    )
    page.wait_for_timeout(1500)  # volumes load asynchronously
    names = sorted(p.name for p in (lab.root / "ctx3d" / "viewer3d").iterdir())
    assert [n.split("-")[-1] for n in names] == ["image.nii", "mask.nii"], names
    outputs = page.locator(".jp-OutputArea-output")
    screenshot(outputs.last, "viewer3d_context")
    # the volume is drawn: the bright cube shows up in the WebGL canvas
    wait_until(
        lambda: (
            (
                np.asarray(Image.open(io.BytesIO(outputs.last.screenshot())).convert("L")) > 200
            ).mean()
            > 0.01
        ),
        what="the volume drawn",
    )
