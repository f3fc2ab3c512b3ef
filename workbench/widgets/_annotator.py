"""``Annotator``: the anywidget front of an :class:`AnnotationSession`.

The widget is a list of traits mirroring the session (the displayed plane as raw uint8 bytes,
status, classes, view settings) plus a small message protocol for actions. Masks never cross the
wire whole per edit: the front-end sends stroke points, the kernel answers with the diff (flat
plane indices as uint32 bytes and values as uint8 bytes), and writes the draft after the diff is
on its way.

Latency: every displayed plane has a *display key* (``view_key|window_key``). Right after a
plane is shown the kernel sends, as binary messages, what the annotator will most likely look at
next: the next item's first plane (``ahead``) and, in a volume, the neighbouring slices
(``slab``). The front-end caches them by key, so accepting an item or scrolling a slice draws at
once without waiting for the kernel; the kernel then skips resending planes it knows the
front-end holds. A front-end that lacks a plane asks for it (``need``).
"""

from __future__ import annotations

import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import anywidget
import numpy as np
import traitlets as t

from workbench.errors import WorkbenchError
from workbench.store._interface import ProjectStore
from workbench.store._records import Task
from workbench.widgets._display import presets
from workbench.widgets._edits import Clear, Fill, MaskDiff, Polygon, Stroke
from workbench.widgets._session import AnnotationSession, ImageLoader

STATIC = Path(__file__).parent / "static"

# (keys, action, description): the front-end builds its key map from this list
SHORTCUTS: tuple[tuple[str, str, str], ...] = (
    ("Enter a", "accept", "accept the proposal / submit the mask"),
    ("1-9", "digit", "choose class n (classification) or paint label n (segmentation)"),
    ("s", "skip", "skip this item"),
    ("f", "flag", "flag this item with a comment"),
    ("Backspace ArrowLeft", "previous", "go back to the previous item"),
    ("ArrowRight", "next", "go forward again after going back"),
    ("b", "brush", "brush tool"),
    ("e", "eraser", "eraser tool"),
    ("g", "fill", "fill tool (click inside a closed outline)"),
    ("p", "polygon", "polygon tool (click corners, Enter or double-click closes)"),
    ("[ ]", "size", "smaller / larger brush"),
    ("ctrl+z", "undo", "undo"),
    ("ctrl+y ctrl+shift+z", "redo", "redo"),
    ("x", "reject", "reject the proposed mask (start from empty)"),
    ("ArrowUp ArrowDown wheel", "slice", "next / previous slice (3D)"),
    ("v", "axis", "cycle axial / coronal / sagittal (3D)"),
    ("j", "jump", "jump to the slice with the most uncertainty / proposal (3D)"),
    ("ctrl+wheel = -", "zoom", "zoom in / out"),
    ("shift+drag middle-drag", "pan", "pan"),
    ("right-drag w", "window", "window / level (drag); w toggles the window tool"),
    ("r", "reset", "reset zoom and pan"),
    ("o", "outline", "mask as outline / filled"),
    ("u", "uncertainty", "show / hide the uncertainty map"),
    ("h ?", "help", "show / hide this help"),
    ("Escape", "escape", "cancel the polygon / close help"),
)


SLAB_RADIUS = 8  # slices sent ahead on each side of the displayed one
SENT_LIMIT = 48  # display keys the kernel assumes the front-end still holds (it keeps 64)
AHEAD_MAX_VOXELS = 4_000_000  # larger items (volumes): only their scan is read ahead


def _shape3(img: np.ndarray) -> list[int]:
    return [int(img.shape[0]), int(img.shape[1]), int(img.shape[2]) if img.ndim == 3 else 1]


class Annotator(anywidget.AnyWidget):
    """Label a project's items in the notebook: ``Annotator("path/to/project", "alice")``."""

    _esm = STATIC / "annotator.js"

    # what is shown (kernel -> browser)
    task = t.Unicode("classification").tag(sync=True)
    classes = t.List(t.Unicode()).tag(sync=True)
    image = t.Bytes(b"").tag(sync=True)  # raw uint8, row-major, image_shape = [H, W, C]
    image_shape = t.List(t.Int(), [0, 0, 1]).tag(sync=True)
    pixel_aspect = t.Float(1.0).tag(sync=True)  # height / width of one pixel
    uncertainty = t.Bytes(b"").tag(sync=True)  # uint8 [H, W] or empty
    view_key = t.Unicode("").tag(sync=True)  # "<item id>:<axis>:<index>", or "done"
    window_key = t.Unicode("").tag(sync=True)  # the window the planes are shown through
    # display key of the bytes in `image`; planes sent ahead travel as messages, so `image` is
    # the last plane the front-end did not already hold, not necessarily the displayed one
    image_key = t.Unicode("").tag(sync=True)
    status = t.Dict().tag(sync=True)
    proposal = t.Dict().tag(sync=True)  # {"probs": [...], "class": k} or {"mask": true}
    shortcuts = t.List(t.Dict()).tag(sync=True)
    presets = t.List(t.Unicode()).tag(sync=True)
    n_slices = t.Int(1).tag(sync=True)
    error = t.Unicode("").tag(sync=True)
    # view settings (both ways)
    axis = t.Unicode("image").tag(sync=True)
    slice_index = t.Int(0).tag(sync=True)
    window_center = t.Float(127.5).tag(sync=True)
    window_width = t.Float(255.0).tag(sync=True)
    opacity = t.Float(0.5).tag(sync=True)
    outline = t.Bool(False).tag(sync=True)
    show_uncertainty = t.Bool(False).tag(sync=True)
    tool = t.Unicode("brush").tag(sync=True)
    brush_radius = t.Float(5.0).tag(sync=True)
    brush_value = t.Int(1).tag(sync=True)
    display_size = t.Int(512).tag(sync=True)
    show_help = t.Bool(False).tag(sync=True)

    def __init__(
        self,
        project_or_store: str | Path | ProjectStore,
        annotator: str = "annotator",
        *,
        image_loader: ImageLoader | None = None,
        lease_seconds: float = 900.0,
        budget: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if isinstance(project_or_store, str | Path):
            from workbench.store import open_project

            store: ProjectStore = open_project(project_or_store)
        else:
            store = project_or_store
        self.session = AnnotationSession(
            store, annotator, image_loader=image_loader, lease_seconds=lease_seconds, budget=budget
        )
        self._syncing = False
        self._sent: dict[str, None] = {}  # display keys the front-end was sent (insertion order)
        self._gen = 0  # bumped when an edit may change masks off the displayed plane
        self._shown_item: int | None = None
        self.task = self.session.task.value
        self.classes = list(self.session.classes)
        self.brush_value = 1 if len(self.classes) > 1 else 0
        self.presets = ["auto", "full", *sorted(presets())]
        self.shortcuts = [{"keys": k, "action": a, "description": d} for k, a, d in SHORTCUTS]
        self.on_msg(self._on_message)
        self.observe(self._on_plane, names=["axis", "slice_index"])
        self.observe(self._on_window, names=["window_center", "window_width"])
        self.session.autosave_drafts = False  # drafts are written after the diff is sent
        self.session.next()
        self._refresh()

    def close(self) -> None:
        """Close the widget; the session writes its draft and stops reading ahead."""
        session = getattr(self, "session", None)  # None when __init__ failed before it
        if session is not None:
            session.close()
        super().close()

    # kernel -> browser ---------------------------------------------------------------------
    def _refresh(self, *, image_only: bool = False) -> None:
        """Mirror the session into the traits; then send the displayed plane's mask."""
        s = self.session
        self._syncing = True
        try:
            with self.hold_sync():
                self._sync_traits(s, image_only=image_only)
        finally:
            self._syncing = False
        if not image_only and self._display_key() not in self._sent:
            self._send_plane_mask()
        self._after_display()

    def _sync_traits(self, s: AnnotationSession, *, image_only: bool) -> None:
        if s.item is None:
            self.image, self.image_shape, self.uncertainty = b"", [0, 0, 1], b""
            self.view_key = "done"
            self.proposal = {}
            self.status = self._status()
            return
        plane, window = s.plane, s.window
        assert plane is not None and window is not None
        self.window_center, self.window_width = window.center, window.width
        self.window_key = f"{window.center:.6g},{window.width:.6g}"
        self.view_key = f"{s.item.id}:{plane.key}"
        key = self._display_key()
        if key not in self._sent:
            img = s.plane_image()
            self.image = img.tobytes()
            self.image_key = key
            self.image_shape = _shape3(img)
        if image_only:
            return
        self.pixel_aspect = s.pixel_aspect()
        unc = s.plane_uncertainty()
        self.uncertainty = b"" if unc is None else unc.tobytes()
        self.axis, self.n_slices, self.slice_index = plane.axis, plane.n_slices, plane.index
        self.proposal = self._proposal()
        self.status = self._status()

    def _proposal(self) -> dict[str, Any]:
        s = self.session
        cur = s._current
        if cur is None or cur.prediction is None:
            return {}
        out: dict[str, Any] = {
            "model_version_id": cur.model_version_id,
            "mask": s.has_mask_proposal,
        }
        if cur.prediction.probs is not None:
            out["probs"] = [float(p) for p in np.asarray(cur.prediction.probs).reshape(-1)]
            out["class"] = s.proposal_class
        return out

    def _status(self) -> dict[str, Any]:
        status = asdict(self.session.status())
        status["sent_at"] = time.time()
        return status

    def _display_key(self) -> str:
        return f"{self.view_key}|{self.window_key}"

    def _send_plane_mask(self) -> None:
        mask = self.session.plane_mask()
        if mask is None:
            return
        self.send(
            {"type": "mask", "key": self._display_key(), "shape": list(mask.shape)},
            [mask.tobytes()],
        )

    def _remember(self, key: str) -> None:
        self._sent.pop(key, None)
        self._sent[key] = None
        while len(self._sent) > SENT_LIMIT:
            self._sent.pop(next(iter(self._sent)))

    def _send_plane(self) -> None:
        """The displayed plane as one message (for a front-end that lacks it)."""
        s = self.session
        if s.item is None:
            return
        img, mask = s.plane_image(), s.plane_mask()
        key = self._display_key()
        self.send(
            {"type": "plane", "key": key, "shape": _shape3(img), "has_mask": mask is not None},
            [img.tobytes(), b"" if mask is None else mask.tobytes()],
        )
        self._remember(key)

    def _after_display(self) -> None:
        """Send what the annotator will likely look at next: neighbouring slices of a volume
        and the next item's first plane. Runs after the displayed plane was sent."""
        s = self.session
        if s.item is None:
            return
        self._remember(self._display_key())
        if s.is_volume and s._current is not None and s._current.image.array.ndim == 3:
            self._send_slab()
        if s.item.id != self._shown_item:
            self._shown_item = s.item.id
            self._send_ahead()

    def _send_slab(self) -> None:
        s = self.session
        plane = s.plane
        assert plane is not None and s.item is not None
        lo = max(plane.index - SLAB_RADIUS, 0)
        hi = min(plane.index + SLAB_RADIUS + 1, plane.n_slices)
        prefix = f"{s.item.id}:{plane.axis}:"
        missing = [k for k in range(lo, hi) if f"{prefix}{k}|{self.window_key}" not in self._sent]
        if not missing:
            return
        start, stop = missing[0], missing[-1] + 1
        images, masks = s.slab(start, stop)
        self.send(
            {
                "type": "slab",
                "prefix": prefix,
                "window_key": self.window_key,
                "start": start,
                "count": stop - start,
                "gen": self._gen,
                "shape": [int(images.shape[1]), int(images.shape[2]), 1],
                "has_mask": masks is not None,
            },
            [images.tobytes(), b"" if masks is None else masks.tobytes()],
        )
        for k in range(start, stop):
            self._remember(f"{prefix}{k}|{self.window_key}")

    def _send_ahead(self) -> None:
        """The upcoming item's first plane, for the front-end to show on accept / skip."""
        s = self.session
        item = s.item
        if item is None:
            return
        upcoming = s.store.get_item(up) if (up := s.upcoming_id()) is not None else None
        if upcoming is not None and int(np.prod(upcoming.shape)) > AHEAD_MAX_VOXELS:
            s.read_ahead()  # too large to send: only its scan is read, in a thread
            return
        try:
            ahead = s.prefetch()
        except WorkbenchError:
            return
        if ahead is None or ahead.plane is None:
            return
        img, mask = s.plane_image(ahead), s.plane_mask(ahead)
        w = ahead.window
        key = f"{ahead.item.id}:{ahead.plane.key}|{w.center:.6g},{w.width:.6g}"
        self.send(
            {
                "type": "ahead",
                "key": key,
                "after": item.id,
                "shape": _shape3(img),
                "has_mask": mask is not None,
            },
            [img.tobytes(), b"" if mask is None else mask.tobytes()],
        )
        self._remember(key)

    def _send_diff(
        self, diff: MaskDiff | None, seq: Any = None, timing: dict[str, Any] | None = None
    ) -> None:
        """Send ``diff``'s part on the displayed plane; ``timing`` (wall-clock ms: chunk sent by
        the page, received and answered here) rides along for the benchmark."""
        plane = self.session.plane
        if plane is None:
            return
        if diff is None or len(diff) == 0:
            self.send(
                {
                    "type": "diff",
                    "view_key": self.view_key,
                    "seq": seq,
                    "n": 0,
                    "gen": self._gen,
                    "timing": timing,
                },
                [b"", b""],
            )
        else:
            on = plane.on_plane(diff.indices)
            idx = plane.from_mask_index(diff.indices).astype("<u4")
            self.send(
                {
                    "type": "diff",
                    "view_key": self.view_key,
                    "seq": seq,
                    "n": int(idx.size),
                    "gen": self._gen,
                    "timing": timing,
                },
                [idx.tobytes(), diff.new[on].tobytes()],
            )
        if self.session.edit_state != tuple(
            self.status.get(k) for k in ("can_undo", "can_redo", "rejected")
        ):
            self.status = self._status()

    # browser -> kernel ---------------------------------------------------------------------
    def _on_plane(self, change: dict[str, Any]) -> None:
        if self._syncing or self.session.item is None:
            return
        self.session.set_plane(self.axis if self.axis != "image" else None, self.slice_index)
        self._refresh()

    def _on_window(self, change: dict[str, Any]) -> None:
        if self._syncing or self.session.item is None:
            return
        self.session.set_window(self.window_center, self.window_width)
        self._refresh(image_only=True)

    def _on_message(self, widget: Any, content: dict[str, Any], buffers: list[bytes]) -> None:
        try:
            self.error = ""
            self._handle(content)
        except WorkbenchError as error:
            self.error = str(error)
            self.status = self._status()

    def _handle(self, msg: dict[str, Any]) -> None:
        kind = msg.get("type")
        s = self.session
        if kind == "ready":
            self._sent.clear()  # a new view has nothing cached
            self._shown_item = None
            self._refresh()
        elif kind == "need":
            self._send_plane()
        elif kind == "stroke":
            received = time.time() * 1000.0
            diff = s.apply_edit(
                Stroke(
                    tuple((float(r), float(c)) for r, c in msg["points"]),
                    float(msg["radius"]),
                    int(msg["value"]),
                    str(msg.get("stroke_id", "")),
                )
            )
            self._send_diff(
                diff,
                msg.get("seq"),
                timing={
                    "sent": msg.get("sent"),
                    "drawn": msg.get("drawn"),
                    "received": received,
                    "replied": time.time() * 1000.0,
                },
            )
            s.flush_draft()
        elif kind == "fill":
            r, c = msg["point"]
            self._send_diff(s.apply_edit(Fill((float(r), float(c)), int(msg["value"]))))
            s.flush_draft()
        elif kind == "polygon":
            points = tuple((float(r), float(c)) for r, c in msg["points"])
            self._send_diff(s.apply_edit(Polygon(points, int(msg["value"]))))
            s.flush_draft()
        elif kind == "action":
            self._action(str(msg.get("name")), msg)

    def _action(self, name: str, msg: dict[str, Any]) -> None:
        s = self.session
        edits = {
            "undo": s.undo,
            "redo": s.redo,
            "reject": s.reject_proposal,
            "clear": lambda: s.apply_edit(Clear()),
        }
        if name in edits:
            self._gen += 1  # these may change the mask off the displayed plane
            item = f"{s.item.id}:" if s.item else "-"
            for key in [k for k in self._sent if k.startswith(item)]:
                del self._sent[key]
            self._send_diff(edits[name]())
            s.flush_draft()
            self._after_display()
            return
        if name == "accept":
            s.accept()
        elif name == "choose":
            s.choose_class(int(msg["index"]))
        elif name == "skip":
            s.skip()
        elif name == "flag":
            s.flag(str(msg.get("comment", "")))
        elif name == "previous":
            s.previous()
        elif name == "next":
            s.next()
        elif name == "jump":
            s.set_plane(index=s.busiest_slice())
        elif name == "preset":
            s.set_preset(str(msg["preset"]))
            self._refresh(image_only=True)
            return
        else:
            self.error = f"unknown action {name!r}"
            return
        self._refresh()

    # notebook conveniences -----------------------------------------------------------------
    def view_3d(self, height: int = 400) -> Any:
        """A 3D context view (NiiVue) of the current volume with the mask being edited over
        it; the NIfTI files it reads go under ``<project>/viewer3d/``. Display the result."""
        from workbench.widgets._viewer3d import VIEWER_DIR, Viewer3D

        s = self.session
        cur = s._current
        if cur is None or not s.is_volume:
            raise WorkbenchError("view_3d needs a 3D volume on screen")
        root = getattr(s.store, "root", None)
        folder = (Path(root) if root is not None else Path.cwd()) / VIEWER_DIR
        return Viewer3D(
            cur.image, s.mask, folder, name=f"item{cur.item.id}", window=s.window, height=height
        ).widget

    @property
    def is_segmentation(self) -> bool:
        return self.session.task is Task.SEGMENTATION
