"""The annotator in a real JupyterLab + Chromium: keyboard labelling, proposals, mask strokes at
known canvas positions, undo / redo, 3D slice scrolling, draft recovery (with the undo history)
after a reload, going back to change a label, flagging with a comment, and fill."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from tests.browser._lab import (
    Lab,
    open_and_run,
    screenshot,
    wait_until,
    wait_widget,
    write_notebook,
)
from workbench.io import read_uri
from workbench.store import (
    LabelSource,
    ModelStatus,
    NewItem,
    Prediction,
    ProjectConfig,
    SQLiteStore,
    Task,
    create_project,
)
from workbench.widgets._drafts import DraftStore

pytestmark = pytest.mark.browser


def make_project(
    lab: Lab,
    name: str,
    task: Task,
    classes: tuple[str, ...],
    arrays: list[np.ndarray],
    suffix: str = ".png",
) -> SQLiteStore:
    folder = lab.root / name
    store = create_project(folder, ProjectConfig(name, task, classes))
    items = []
    for n, array in enumerate(arrays):
        path = folder / f"img{n}{suffix}"
        if suffix == ".png":
            Image.fromarray(array).save(path)
        else:
            import nibabel as nib

            nib.save(nib.Nifti1Image(array, np.eye(4)), str(path))
        shape = read_uri(str(path)).spatial_shape
        items.append(
            NewItem(
                key=f"img{n}",
                source_uri=str(path),
                content_hash=f"h{n}",
                modality="OT",
                shape=shape,
                spacing=(1.0,) * len(shape),
            )
        )
    store.add_items(items)
    return store


def annotator_notebook(lab: Lab, project: str, extra: str = "") -> Path:
    return write_notebook(
        lab,
        f"{project}.ipynb",
        [
            "from workbench.widgets import Annotator\n"
            f"w = Annotator({str(lab.root / project)!r}, 'alice')\n" + extra + "w"
        ],
    )


def pixel_xy(root: Any, r: float, c: float) -> tuple[float, float]:
    """Page coordinates of the centre of image pixel (r, c) on the widget's canvas."""
    canvas = root.locator("canvas")
    canvas.scroll_into_view_if_needed()
    box = canvas.bounding_box()
    d = canvas.evaluate("c => ({...c.dataset})")
    scale, aspect = float(d["scale"]), float(d["aspect"])
    return (
        box["x"] + float(d["ox"]) + (c + 0.5) * scale,
        box["y"] + float(d["oy"]) + (r + 0.5) * scale * aspect,
    )


def drag(page: Any, root: Any, points: list[tuple[int, int]], release: bool = True) -> None:
    """Press at the first pixel, move through the others one pixel at a time, release."""
    page.mouse.move(*pixel_xy(root, *points[0]))
    page.mouse.down()
    for (r0, c0), (r1, c1) in zip(points, points[1:], strict=False):
        steps = max(abs(r1 - r0), abs(c1 - c0))
        for k in range(1, steps + 1):
            page.mouse.move(*pixel_xy(root, r0 + (r1 - r0) * k / steps, c0 + (c1 - c0) * k / steps))
    if release:
        page.mouse.up()


def capsule(
    shape: tuple[int, int], a: tuple[int, int], b: tuple[int, int], radius: float
) -> np.ndarray:
    """Pixels whose centre is within ``radius`` of segment a-b (computed independently)."""
    rr, cc = np.mgrid[0 : shape[0], 0 : shape[1]].astype(float)
    (ar, ac), (br, bc) = a, b
    dr, dc = br - ar, bc - ac
    t = np.clip(((rr - ar) * dr + (cc - ac) * dc) / max(dr * dr + dc * dc, 1e-12), 0, 1)
    return (rr - ar - t * dr) ** 2 + (cc - ac - t * dc) ** 2 <= radius**2 + 1e-9


def item_changed(page: Any, before: str) -> None:
    page.wait_for_function(
        "b => { const s = [...document.querySelectorAll('.wb-status')].pop();"
        " return s && s.dataset.itemId !== b; }",
        arg=before,
        timeout=20_000,
    )


def current_item(root: Any) -> str:
    return str(root.locator(".wb-status").get_attribute("data-item-id"))


def test_classify_five_items_by_keyboard(page: Any, lab: Lab) -> None:
    rng = np.random.default_rng(1)
    store = make_project(
        lab,
        "kbd",
        Task.CLASSIFICATION,
        ("benign", "malignant", "normal"),
        [rng.integers(0, 255, (64, 64), dtype=np.uint8) for _ in range(6)],
    )
    root = open_and_run(page, lab, annotator_notebook(lab, "kbd"))
    screenshot(root, "classify_first_item")
    root.focus()
    keys = ["1", "2", "3", "1", "2"]
    for key in keys:
        before = current_item(root)
        page.keyboard.press(key)
        item_changed(page, before)
    labels = wait_until(
        lambda: len(store.current_labels()) == 5 and store.current_labels(),
        what="5 labels in the store",
    )
    assert sorted(lv.class_index for lv in labels) == sorted(int(k) - 1 for k in keys)
    assert {lv.source for lv in labels} == {LabelSource.HUMAN}
    assert {lv.annotator for lv in labels} == {"alice"}
    # the notebook is still there: no key went to JupyterLab (no inserted or changed cells)
    assert page.evaluate("window.jupyterapp.shell.currentWidget.content.widgets.length") == 1
    screenshot(root, "classify_after_five")


def test_accept_a_proposal_with_enter(page: Any, lab: Lab) -> None:
    store = make_project(
        lab,
        "accept",
        Task.CLASSIFICATION,
        ("no", "yes"),
        [np.full((32, 32), v, np.uint8) for v in (50, 150)],
    )
    model = store.add_model_version("m")
    store.add_predictions(
        model.id, [Prediction(i.id, probs=np.array([0.2, 0.8])) for i in store.list_items()]
    )
    store.update_model_version(model.id, status=ModelStatus.READY)
    root = open_and_run(page, lab, annotator_notebook(lab, "accept"))
    assert "model v" in root.locator(".wb-status").inner_text()
    screenshot(root, "accept_proposal")
    root.focus()
    before = current_item(root)
    page.keyboard.press("Enter")
    item_changed(page, before)
    (label,) = wait_until(store.current_labels, what="a label")
    assert label.source is LabelSource.ACCEPTED and label.class_index == 1
    assert label.model_version_id == model.id


def test_brush_eraser_undo_redo_exact_pixels(page: Any, lab: Lab) -> None:
    store = make_project(
        lab,
        "brush",
        Task.SEGMENTATION,
        ("background", "lesion"),
        [np.tile(np.arange(64, dtype=np.uint8) * 4, (64, 1))] * 2,
    )
    root = open_and_run(page, lab, annotator_notebook(lab, "brush", "w.brush_radius = 3\n"))
    item_id = int(current_item(root))
    drafts = DraftStore(lab.root / "brush" / "drafts", "alice")
    root.focus()
    page.keyboard.press("b")
    drag(page, root, [(20, 10), (20, 40)])
    page.keyboard.press("e")
    drag(page, root, [(10, 25), (30, 25)])
    expected = capsule((64, 64), (20, 10), (20, 40), 3) & ~capsule((64, 64), (10, 25), (30, 25), 3)
    wait_until(
        lambda: (
            (d := drafts.load(item_id)) is not None
            and np.array_equal(d.apply_to(np.zeros((64, 64), np.uint8)) > 0, expected)
        ),
        what="draft with brush minus eraser",
    )
    screenshot(root, "brush_and_eraser")
    before_undo = root.get_attribute("data-diffs")
    page.keyboard.press("Control+z")
    page.wait_for_function(
        "b => [...document.querySelectorAll('.wb-annotator')].pop().dataset.diffs !== b",
        arg=before_undo,
    )
    brush_only = capsule((64, 64), (20, 10), (20, 40), 3)
    wait_until(
        lambda: (
            (d := drafts.load(item_id)) is not None
            and np.array_equal(d.apply_to(np.zeros((64, 64), np.uint8)) > 0, brush_only)
        ),
        what="draft after undo",
    )
    assert int(root.get_attribute("data-mask-sum")) == int(brush_only.sum())
    page.keyboard.press("Control+y")
    wait_until(
        lambda: int(root.get_attribute("data-mask-sum")) == int(expected.sum()),
        what="canvas mask after redo",
    )
    before = current_item(root)
    page.keyboard.press("Enter")
    item_changed(page, before)
    label = wait_until(lambda: store.current_label(item_id), what="the submitted mask")
    assert label.source is LabelSource.HUMAN
    stored = store.get_mask(label.mask_hash)
    assert np.array_equal(stored == 1, expected) and set(np.unique(stored)) <= {0, 1}


def test_scroll_volume_and_edit_a_slice(page: Any, lab: Lab) -> None:
    vol = np.zeros((48, 40, 12), np.int16)
    vol[:, :, :] = np.arange(12, dtype=np.int16) * 10
    store = make_project(
        lab, "vol", Task.SEGMENTATION, ("background", "organ"), [vol], suffix=".nii.gz"
    )
    root = open_and_run(page, lab, annotator_notebook(lab, "vol", "w.brush_radius = 2\n"))
    canvas = root.locator("canvas")
    assert canvas.get_attribute("data-view-key").endswith("axial:6")
    page.mouse.move(*pixel_xy(root, 5, 5))
    for _ in range(3):
        page.mouse.wheel(0, 100)
        page.wait_for_timeout(150)
    wait_until(
        lambda: canvas.get_attribute("data-view-key").endswith("axial:3"),
        what="slice 3 after three wheel steps",
    )
    root.focus()
    page.keyboard.press("ArrowUp")
    wait_until(
        lambda: canvas.get_attribute("data-view-key").endswith("axial:4"),
        what="slice 4 after ArrowUp",
    )
    page.keyboard.press("b")
    drag(page, root, [(10, 8), (10, 20)])
    item_id = int(current_item(root))
    drafts = DraftStore(lab.root / "vol" / "drafts", "alice")
    wait_until(lambda: drafts.load(item_id) is not None, what="a draft")
    screenshot(root, "volume_slice_edit")
    page.keyboard.press("Enter")
    label = wait_until(lambda: store.current_label(item_id), what="the volume mask")
    stored = store.get_mask(label.mask_hash)
    # axial plane k=4: rows run along J reversed (J = 40), columns along I
    plane = capsule((40, 48), (10, 8), (10, 20), 2)
    expected = np.zeros((48, 40, 12), bool)
    expected[:, :, 4] = plane[::-1].T
    assert np.array_equal(stored == 1, expected)


def test_reload_mid_stroke_recovers_the_draft(page: Any, lab: Lab) -> None:
    make_project(
        lab,
        "reload",
        Task.SEGMENTATION,
        ("background", "lesion"),
        [np.full((64, 64), 90, np.uint8)] * 2,
    )
    notebook = annotator_notebook(lab, "reload", "w.brush_radius = 2\n")
    root = open_and_run(page, lab, notebook)
    page.evaluate("window.jupyterapp.commands.execute('docmanager:save')")
    item_id = int(current_item(root))
    drafts = DraftStore(lab.root / "reload" / "drafts", "alice")
    root.focus()
    drag(page, root, [(30, 5), (30, 30)], release=False)
    partial = capsule((64, 64), (30, 5), (30, 30), 2)
    wait_until(
        lambda: (d := drafts.load(item_id)) is not None and d.indices.size > 0,
        what="the stroke's chunks reaching the kernel",
    )
    page.wait_for_timeout(300)
    page.reload()
    page.mouse.up()
    # the page shows the kernel's widget again, with the drafted pixels
    root = wait_widget(page)
    wait_until(
        lambda: int(root.get_attribute("data-mask-sum") or 0) == int(partial.sum()),
        what="the drafted stroke on the reloaded page",
    )
    # a kernel-side restart of the widget (re-running the cell) also recovers it from disk
    page.evaluate("window.jupyterapp.commands.execute('notebook:run-all-cells')")
    page.wait_for_timeout(500)
    root = wait_widget(page)
    wait_until(
        lambda: int(root.get_attribute("data-mask-sum") or 0) == int(partial.sum()),
        what="the draft after re-running the cell",
    )
    assert "draft" in root.locator(".wb-message").inner_text().lower()
    screenshot(root, "reload_recovered_draft")
    # the undo history came back with the draft: undo removes the stroke, redo restores it
    root.focus()
    page.keyboard.press("Control+z")
    wait_until(
        lambda: int(root.get_attribute("data-mask-sum") or 0) == 0,
        what="the recovered stroke undone",
    )
    wait_until(
        lambda: (
            (d := drafts.load(item_id)) is not None and d.indices.size == 0 and len(d.redo) == 1
        ),
        what="the draft after undo",
    )
    page.keyboard.press("Control+y")
    wait_until(
        lambda: int(root.get_attribute("data-mask-sum") or 0) == int(partial.sum()),
        what="the recovered stroke redone",
    )


def test_back_to_previous_item_and_change_it_then_flag(page: Any, lab: Lab) -> None:
    store = make_project(
        lab,
        "back",
        Task.CLASSIFICATION,
        ("cat", "dog"),
        [np.full((24, 24), v, np.uint8) for v in (10, 120, 240)],
    )
    root = open_and_run(page, lab, annotator_notebook(lab, "back"))
    root.focus()
    first = current_item(root)
    page.keyboard.press("1")
    item_changed(page, first)
    second = current_item(root)
    page.keyboard.press("Backspace")  # back to the first item, labelled "cat"
    item_changed(page, second)
    assert current_item(root) == first
    wait_until(lambda: "revising" in root.locator(".wb-status").inner_text(), what="revising")
    page.keyboard.press("2")  # change it to "dog": a new label version
    item_changed(page, first)
    assert current_item(root) == second
    label = wait_until(
        lambda: (lv := store.current_label(int(first))) and lv.class_index == 1 and lv,
        what="the changed label",
    )
    assert label.replaces_id is not None
    # flag the second item with a comment typed into the flag box
    page.keyboard.press("f")
    box = root.locator(".wb-flag input")
    box.wait_for(state="visible")
    box.fill("blurry, check with a radiologist")
    box.press("Enter")
    (flag,) = wait_until(lambda: store.list_flags(int(second)), what="a flag")
    assert flag.comment == "blurry, check with a radiologist" and flag.annotator == "alice"
    screenshot(root, "back_and_flag")


def test_fill_inside_a_drawn_outline(page: Any, lab: Lab) -> None:
    make_project(
        lab, "fill", Task.SEGMENTATION, ("background", "lesion"), [np.full((48, 48), 100, np.uint8)]
    )
    root = open_and_run(page, lab, annotator_notebook(lab, "fill", "w.brush_radius = 0\n"))
    item_id = int(current_item(root))
    root.focus()
    page.keyboard.press("b")
    drag(page, root, [(10, 10), (10, 30), (30, 30), (30, 10), (10, 10)])
    outline = int(
        wait_until(
            lambda: (
                int(root.get_attribute("data-mask-sum") or 0) >= 80
                and root.get_attribute("data-mask-sum")
            ),
            what="the outline",
        )
    )
    page.keyboard.press("g")
    page.mouse.click(*pixel_xy(root, 20, 20))
    expected = np.zeros((48, 48), bool)
    expected[10:31, 10:31] = True
    wait_until(
        lambda: int(root.get_attribute("data-mask-sum") or 0) == int(expected.sum()),
        what="the filled square on the canvas",
    )
    assert outline == 4 * 20
    drafts = DraftStore(lab.root / "fill" / "drafts", "alice")
    wait_until(
        lambda: (
            (d := drafts.load(item_id)) is not None
            and np.array_equal(d.apply_to(np.zeros((48, 48), np.uint8)) > 0, expected)
        ),
        what="the filled draft",
    )
    screenshot(root, "fill")
