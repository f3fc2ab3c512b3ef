"""The annotator's view transform in a real JupyterLab + Chromium: zoom (ctrl+wheel at the
cursor, ``=`` about the centre), pan (shift+drag, middle-drag), then a brush stroke at known
screen positions lands on the expected image pixels of the stored mask; window / level drag
(right-drag and the ``w`` tool) changes the displayed window and no stored data.

Screen positions are computed here from the zoom and pan steps themselves (a 64x64 image on a
512 px canvas starts at 8 px per pixel), not read back from the widget.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.browser._lab import Lab, open_and_run, screenshot, wait_until, write_notebook
from tests.browser.test_annotator_browser import capsule, current_item, item_changed, make_project
from workbench.store import Task
from workbench.widgets._display import Window, to_uint8

pytestmark = pytest.mark.browser

SIZE = 64  # image side (pixels); the canvas is 512 px, so 8 px per pixel before zooming


@dataclass
class View:
    """The expected view transform: canvas px = offset + (pixel + 0.5) * scale."""

    left: float  # the canvas's page position
    top: float
    scale: float = 512 / SIZE
    ox: float = 0.0
    oy: float = 0.0

    def zoom_at(self, x: float, y: float, factor: float) -> None:
        """Zoom by ``factor`` keeping canvas point (x, y) fixed."""
        self.ox = x - (x - self.ox) * factor
        self.oy = y - (y - self.oy) * factor
        self.scale *= factor

    def pan(self, dx: float, dy: float) -> None:
        self.ox += dx
        self.oy += dy

    def page_xy(self, r: float, c: float) -> tuple[float, float]:
        return (
            self.left + self.ox + (c + 0.5) * self.scale,
            self.top + self.oy + (r + 0.5) * self.scale,
        )

    def visible(self, r: float, c: float) -> bool:
        x, y = self.page_xy(r, c)
        return self.left < x < self.left + 512 and self.top < y < self.top + 512


def gradient() -> np.ndarray:
    """[64, 64] uint8, value 4 * column."""
    return np.tile(np.arange(SIZE, dtype=np.uint8) * 4, (SIZE, 1))


def view_of(root: Any) -> View:
    canvas = root.locator("canvas")
    canvas.scroll_into_view_if_needed()
    box = canvas.bounding_box()
    assert (round(box["width"]), round(box["height"])) == (512, 512)
    return View(box["x"], box["y"])


def assert_widget_agrees(root: Any, view: View) -> None:
    d = root.locator("canvas").evaluate("c => ({...c.dataset})")
    got = (float(d["scale"]), float(d["ox"]), float(d["oy"]))
    assert got == pytest.approx((view.scale, view.ox, view.oy), abs=1e-6), (got, view)


def stroke(page: Any, view: View, points: list[tuple[int, int]]) -> None:
    """Brush through ``points`` (row or column moves) one pixel at a time, at the screen
    positions of the pixel centres."""
    assert all(view.visible(*p) for p in points), "the stroke must be on screen"
    page.mouse.move(*view.page_xy(*points[0]))
    page.mouse.down()
    for (r0, c0), (r1, c1) in zip(points, points[1:], strict=False):
        assert r0 == r1 or c0 == c1
        steps = max(abs(r1 - r0), abs(c1 - c0))
        for k in range(1, steps + 1):
            page.mouse.move(*view.page_xy(r0 + (r1 - r0) * k // steps, c0 + (c1 - c0) * k // steps))
    page.mouse.up()


def test_zoom_and_pan_then_brush_lands_on_the_expected_pixels(page: Any, lab: Lab) -> None:
    store = make_project(lab, "zoom", Task.SEGMENTATION, ("background", "lesion"), [gradient()] * 2)
    nb = write_notebook(
        lab,
        "zoom.ipynb",
        [
            "from workbench.widgets import Annotator\n"
            f"w = Annotator({str(lab.root / 'zoom')!r}, 'alice')\nw.brush_radius = 1\nw"
        ],
    )
    root = open_and_run(page, lab, nb)
    item_id = int(current_item(root))
    view = view_of(root)
    assert_widget_agrees(root, view)
    # ctrl+wheel zooms in at the cursor: three notches of 1.15 around the cursor (mouse events
    # carry whole CSS pixels, so the cursor goes to a whole page position)
    x, y = round(view.left + 120), round(view.top + 380)
    page.mouse.move(x, y)
    page.keyboard.down("Control")
    for _ in range(3):
        page.mouse.wheel(0, -100)
        page.wait_for_timeout(50)
    page.keyboard.up("Control")
    for _ in range(3):
        view.zoom_at(x - view.left, y - view.top, 1.15)
    page.wait_for_timeout(100)
    assert_widget_agrees(root, view)
    # "=" zooms in about the canvas centre
    root.focus()
    page.keyboard.press("=")
    view.zoom_at(256, 256, 1.25)
    page.wait_for_timeout(100)
    assert_widget_agrees(root, view)
    # shift+drag pans, and so does a middle-button drag
    page.mouse.move(view.left + 300, view.top + 200)
    page.keyboard.down("Shift")
    page.mouse.down()
    page.mouse.move(view.left + 270, view.top + 230, steps=5)
    page.mouse.move(view.left + 240, view.top + 245, steps=5)
    page.mouse.up()
    page.keyboard.up("Shift")
    view.pan(-60, 45)
    page.mouse.move(view.left + 100, view.top + 100)
    page.mouse.down(button="middle")
    page.mouse.move(view.left + 125, view.top + 90, steps=5)
    page.mouse.up(button="middle")
    view.pan(25, -10)
    page.wait_for_timeout(100)
    assert_widget_agrees(root, view)
    assert view.scale == pytest.approx(8 * 1.15**3 * 1.25)
    # nothing was painted by zooming or panning
    assert int(root.get_attribute("data-mask-sum") or 0) == 0
    # a brush stroke (radius 1) at the screen positions of pixels (20, 12) -> (20, 30) -> (34, 30)
    page.keyboard.press("b")
    a, corner, b = (20, 12), (20, 30), (34, 30)
    stroke(page, view, [a, corner, b])
    expected = capsule((SIZE, SIZE), a, corner, 1) | capsule((SIZE, SIZE), corner, b, 1)
    wait_until(
        lambda: int(root.get_attribute("data-mask-sum") or 0) == int(expected.sum()),
        what=f"the stroke on the canvas ({int(expected.sum())} pixels)",
    )
    screenshot(root, "zoom_pan_brush")
    before = current_item(root)
    page.keyboard.press("Enter")
    item_changed(page, before)
    label = wait_until(lambda: store.current_label(item_id), what="the submitted mask")
    stored = store.get_mask(label.mask_hash)
    assert np.array_equal(stored == 1, expected), np.argwhere((stored == 1) != expected)
    # "r" resets zoom and pan on the next item
    page.keyboard.press("r")
    page.wait_for_timeout(100)
    assert_widget_agrees(root, View(view.left, view.top))


STATE_CELL = """
import json, os, pathlib
state = pathlib.Path({path!r})
def dump(_=None):
    s = w.session
    part = state.with_suffix(".part")  # then renamed: the test never reads a half-written file
    part.write_text(json.dumps({{
        "traits": [w.window_center, w.window_width], "window_key": w.window_key,
        "session": [s.window.center, s.window.width], "mask_sum": int((s.mask > 0).sum())}}))
    os.replace(part, state)
w.observe(dump, names=["window_center", "window_width", "window_key"])
dump()
"""


def canvas_grey(root: Any, view: View, r: int, c: int) -> int:
    """The grey value drawn at the centre of image pixel (r, c)."""
    x, y = view.page_xy(r, c)
    return int(
        root.locator("canvas").evaluate(
            "(cv, [x, y]) => { const b = cv.getBoundingClientRect(); const d = devicePixelRatio;"
            " return cv.getContext('2d').getImageData(Math.floor((x - b.left) * d),"
            " Math.floor((y - b.top) * d), 1, 1).data[0]; }",
            [x, y],
        )
    )


def test_window_level_drag_changes_the_window_and_no_stored_data(page: Any, lab: Lab) -> None:
    store = make_project(lab, "window", Task.SEGMENTATION, ("background", "lesion"), [gradient()])
    state_file = lab.root / "window_state.json"
    nb = write_notebook(
        lab,
        "window.ipynb",
        [
            "from workbench.widgets import Annotator\n"
            f"w = Annotator({str(lab.root / 'window')!r}, 'alice')\n"
            + STATE_CELL.format(path=str(state_file))
            + "w"
        ],
    )
    scan = Path(store.list_items()[0].source_uri)
    scan_hash = hashlib.sha256(scan.read_bytes()).hexdigest()
    root = open_and_run(page, lab, nb)
    item_id = int(current_item(root))
    view = view_of(root)

    def state() -> dict[str, Any]:
        return dict(json.loads(state_file.read_text()))

    c0, w0 = state()["traits"]
    assert (c0, w0) == (127.5, 255.0)
    assert canvas_grey(root, view, 32, 20) == 80  # column 20 holds 80, shown through 0..255
    # right-drag: right widens the window (x e^(dx/200)), down lowers the level (w dy/400)
    page.mouse.move(view.left + 200, view.top + 200)
    page.mouse.down(button="right")
    page.mouse.move(view.left + 260, view.top + 220, steps=6)
    page.mouse.move(view.left + 160, view.top + 280, steps=6)
    page.mouse.up(button="right")
    page.mouse.move(view.left - 50, view.top - 50)  # off the canvas: no brush cursor drawn
    page.wait_for_timeout(200)
    assert not page.locator(".lm-Menu").is_visible(), "JupyterLab's context menu opened"
    width, center = w0 * np.exp(-40 / 200), c0 - 80 * w0 / 400
    wait_until(
        lambda: (
            state()["session"] == pytest.approx([center, width], rel=1e-6)
            and state()["window_key"] != "127.5,255"
        ),
        what="the new window in the kernel",
    )
    assert state()["traits"] == pytest.approx([center, width], rel=1e-6)
    window = Window(*state()["session"])
    for col in (5, 20, 40, 60):
        want = int(to_uint8(gradient()[32:33, col : col + 1], window)[0, 0])
        wait_until(
            lambda col=col, want=want: canvas_grey(root, view, 32, col) == want,
            what=f"column {col} drawn through the new window ({want})",
        )
    assert canvas_grey(root, view, 32, 20) != 80
    screenshot(root, "window_level_drag")
    # the window tool ("w") does the same with the left button, and paints nothing
    root.focus()
    page.keyboard.press("w")
    wait_until(
        lambda: (
            "wb-active"
            in (root.locator(".wb-tools button", has_text="window").get_attribute("class") or "")
        ),
        what="the window tool",
    )
    page.mouse.move(view.left + 300, view.top + 300)
    page.mouse.down()
    page.mouse.move(view.left + 340, view.top + 300, steps=6)
    page.mouse.up()
    width2 = width * np.exp(40 / 200)
    wait_until(
        lambda: state()["session"] == pytest.approx([center, width2], rel=1e-6),
        what="the window tool's window in the kernel",
    )
    page.keyboard.press("w")  # back to the brush
    page.wait_for_timeout(300)
    # no stored data changed: no mask voxel, no draft, no label, the scan file untouched
    assert state()["mask_sum"] == 0
    assert int(root.get_attribute("data-mask-sum") or 0) == 0
    assert not (lab.root / "window" / "drafts" / "alice" / f"{item_id}.npz").exists()
    assert store.current_label(item_id) is None and store.current_labels() == []
    assert hashlib.sha256(scan.read_bytes()).hexdigest() == scan_hash
    screenshot(root, "window_tool_drag")
