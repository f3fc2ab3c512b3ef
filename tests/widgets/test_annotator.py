"""The widget layer without a browser: traits mirror the session, messages drive it."""

from __future__ import annotations

import threading
from typing import Any

import numpy as np

from tests.widgets.conftest import npy_loader, ready_model
from workbench.io._image import ScanImage
from workbench.store import Item, LabelSource, Prediction, SQLiteStore
from workbench.widgets import Annotator, _annotator
from workbench.widgets._annotator import STATIC


class Recorder(Annotator):
    """Keeps what the kernel sends to the front-end."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.sent: list[tuple[dict[str, Any], list[bytes]]] = []
        super().__init__(*args, **kwargs)

    def send(self, content: dict[str, Any], buffers: Any = None) -> None:
        self.sent.append((content, list(buffers or [])))

    def last(self, kind: str) -> tuple[dict[str, Any], list[bytes]]:
        return next(m for m in reversed(self.sent) if m[0]["type"] == kind)


def test_bundle_is_shipped_and_has_no_url_imports() -> None:
    js = (STATIC / "annotator.js").read_text()
    assert "export" in js and "render" in js
    assert "http://" not in js.split("\n", 1)[0] and "import(" not in js
    assert 'from "http' not in js and "from 'http" not in js


def test_classification_traits_and_keyboard_actions(cls_store: SQLiteStore) -> None:
    w = Recorder(cls_store, "ann", image_loader=npy_loader)
    assert isinstance(w.image, bytes) and len(w.image) == 32 * 48
    assert w.image_shape == [32, 48, 1] and w.pixel_aspect == 2.0
    assert w.classes == ["benign", "malignant", "normal"] and w.task == "classification"
    first = w.status["item_id"]
    w._handle({"type": "action", "name": "choose", "index": 1})
    assert w.status["item_id"] != first and w.status["labelled"] == 1
    label = cls_store.current_label(first)
    assert label is not None and label.source is LabelSource.HUMAN
    w._on_message(w, {"type": "action", "name": "accept"}, [])  # no proposal: shown as error
    assert "proposal" in w.error
    assert {s["action"] for s in w.shortcuts} >= {"accept", "skip", "flag", "undo", "redo"}


def test_segmentation_strokes_cross_as_diffs(seg_store: SQLiteStore) -> None:
    w = Recorder(seg_store, "ann", image_loader=npy_loader)
    w._handle({"type": "ready"})
    content, buffers = w.last("mask")
    assert len(buffers[0]) == 40 * 40 and content["key"] == f"{w.view_key}|{w.window_key}"
    w._handle(
        {
            "type": "stroke",
            "stroke_id": "s",
            "points": [[5, 5], [5, 9]],
            "radius": 1,
            "value": 1,
            "seq": 12.5,
        }
    )
    content, (idx, values) = w.sent[-1]
    assert content["type"] == "diff" and content["seq"] == 12.5
    flat = np.frombuffer(idx, "<u4")
    assert content["n"] == flat.size == 17 and set(values) == {1}
    assert w.session.mask is not None
    assert np.array_equal(np.flatnonzero(w.session.mask), np.sort(flat))
    w._handle({"type": "action", "name": "undo"})
    assert not w.session.mask.any() and w.sent[-1][0]["n"] == 17
    w._handle({"type": "action", "name": "redo"})
    w._handle({"type": "action", "name": "accept"})
    item_id = seg_store.list_items()[0].id
    label = seg_store.current_label(item_id)
    assert label is not None and label.mask_hash is not None
    assert seg_store.get_mask(label.mask_hash).sum() == 17


def test_volume_slice_traits(vol_store: SQLiteStore) -> None:
    item = vol_store.list_items()[0]
    unc = np.zeros((20, 24, 10), np.float32)
    unc[:, :, 8] = 1
    ready_model(
        vol_store, [Prediction(item.id, mask=np.zeros((20, 24, 10), np.uint8), uncertainty_map=unc)]
    )
    w = Recorder(vol_store, "ann", image_loader=npy_loader)
    assert (w.axis, w.n_slices, w.slice_index) == ("axial", 10, 5)
    # the first view got slices 0..9 (5 +- 8, clipped) ahead, with their masks
    slab, (images, masks) = w.last("slab")
    assert (slab["start"], slab["count"], slab["shape"]) == (0, 10, [24, 20, 1])
    assert len(images) == len(masks) == 10 * 24 * 20
    assert np.array_equal(np.frombuffer(images, np.uint8).reshape(10, 24, 20)[2], _plane_at(w, 2))
    n_sent = len(w.sent)
    w.slice_index = 2
    assert w.session.plane is not None and w.session.plane.index == 2
    assert w.view_key.endswith("axial:2")
    # the front-end holds slice 2 already: no image and no mask are sent again
    assert w.image_key.endswith("axial:5|" + w.window_key)
    assert not [m for m in w.sent[n_sent:] if m[0]["type"] in ("mask", "plane")]
    w._handle({"type": "need"})
    assert w.last("plane")[0]["key"] == f"{w.view_key}|{w.window_key}"
    w._handle({"type": "action", "name": "jump"})
    assert w.slice_index == 8 and len(w.uncertainty) == 24 * 20
    w.axis = "sagittal"
    assert w.image_shape[:2] == [10, 24] and w.pixel_aspect == 2.5
    w._handle({"type": "action", "name": "preset", "preset": "bone"})
    assert w.window_width > 1000


def _plane_at(w: Annotator, index: int) -> np.ndarray:
    s = w.session
    before = s.plane
    s.set_plane(index=index)
    try:
        return s.plane_image()
    finally:
        assert before is not None
        s.set_plane(index=before.index)


def test_next_item_is_sent_ahead_and_not_resent(cls_store: SQLiteStore) -> None:
    w = Recorder(cls_store, "ann", image_loader=npy_loader)
    ahead, (img, _) = w.last("ahead")
    first = w.status["item_id"]
    assert ahead["after"] == first and len(img) == 32 * 48
    # peeking reserved nothing beyond the item on screen
    assert [a.item_id for a in cls_store.list_assignments()] == [first]
    image_key = w.image_key
    w._handle({"type": "action", "name": "choose", "index": 0})
    assert f"{w.view_key}|{w.window_key}" == ahead["key"]
    assert w.image_key == image_key  # the image was not sent again: the front-end has it
    assert w.last("ahead")[0]["after"] == w.status["item_id"]


def test_a_large_next_item_is_read_ahead_in_a_thread_not_sent(
    cls_store: SQLiteStore, monkeypatch: Any
) -> None:
    """Items over AHEAD_MAX_VOXELS (volumes) are not sent ahead to the page; only their scan is
    read, in a thread, and the next item is shown from it."""
    monkeypatch.setattr(_annotator, "AHEAD_MAX_VOXELS", 100)  # the 32x48 test images count
    loads: list[tuple[int, str]] = []

    def loader(item: Item) -> ScanImage:
        loads.append((item.id, threading.current_thread().name))
        return npy_loader(item)

    w = Recorder(cls_store, "ann", image_loader=loader)
    assert not [m for m in w.sent if m[0]["type"] == "ahead"]
    upcoming = w.session.read_ahead()  # the id whose read the widget started
    assert upcoming is not None and upcoming != w.status["item_id"]
    w._handle({"type": "action", "name": "choose", "index": 0})
    assert w.status["item_id"] == upcoming
    assert [name for item_id, name in loads if item_id == upcoming][0].startswith(
        "workbench-read-ahead"
    )
    assert len([1 for item_id, _ in loads if item_id == upcoming]) == 1
    w.close()


def test_view_3d_writes_nifti_under_the_project(vol_store: SQLiteStore) -> None:
    import nibabel as nib

    w = Recorder(vol_store, "ann", image_loader=npy_loader)
    w._handle({"type": "stroke", "stroke_id": "s", "points": [[3, 3]], "radius": 1, "value": 1})
    nv = w.view_3d(height=300)
    assert [v.path for v in nv.volumes][0].endswith("-image.nii")
    folder = vol_store.root / "viewer3d"
    (mask_file,) = folder.glob("*-mask.nii")
    stored: Any = nib.load(mask_file)
    assert w.session.mask is not None
    assert np.array_equal(np.asarray(stored.dataobj), w.session.mask)
