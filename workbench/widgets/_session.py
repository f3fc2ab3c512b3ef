"""The annotation logic behind the annotator widget, as a plain Python object.

``AnnotationSession(store, annotator)`` serves items in active-learning order, shows the latest
ready model's proposal, records labels with their provenance, edits masks through typed edit
records with undo / redo, and keeps in-progress masks (with their undo / redo history) as
drafts on disk. It imports no widget code: the widget is a thin layer of traits over it, and
everything here is testable without a browser.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from workbench.background import mark_annotator_activity
from workbench.errors import StoreError
from workbench.io._image import ScanImage
from workbench.store._interface import ProjectStore
from workbench.store._records import (
    Item,
    LabelSource,
    LabelSubmission,
    LabelVersion,
    ModelStatus,
    Prediction,
    Task,
)
from workbench.widgets._display import Window, auto_window, default_window, presets, to_uint8
from workbench.widgets._drafts import Draft, DraftStore
from workbench.widgets._edits import Edit, EditHistory, MaskDiff, apply_edit
from workbench.widgets._planes import AXES, Plane
from workbench.widgets._read_ahead import ScanReadAhead

ImageLoader = Callable[[Item], ScanImage]


class SessionError(StoreError):
    """An annotation action that does not apply now (no item, wrong task, nothing to accept)."""

    code = "annotation_session_error"


@dataclass(frozen=True)
class Status:
    """What the status bar shows."""

    item_id: int | None
    item_key: str
    position: int  # 1-based position of the current item among those served in this session
    served: int  # items served in this session so far
    labelled: int  # items of the project with a label
    budget: int  # items to label (all items of the project unless a budget was given)
    model_version_id: int | None  # the model whose proposal is shown, if any
    seconds_on_item: float
    revising: bool  # the current item already has a label; a submit writes a new version
    proposal_class: int | None
    edited: bool
    rejected: bool
    can_undo: bool
    can_redo: bool
    done: bool  # no item left to serve
    message: str = ""


@dataclass
class _Current:
    """The item on screen and everything about it that is not in the store yet."""

    item: Item
    image: ScanImage
    prediction: Prediction | None
    model_version_id: int | None
    started_at: float
    label: LabelVersion | None = None  # the label being revised, if any
    mask: np.ndarray | None = None  # the mask being edited (segmentation)
    base: str = "empty"
    base_mask: np.ndarray | None = None
    rejected: bool = False
    history: EditHistory = field(default_factory=EditHistory)
    touched: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))  # may differ
    plane: Plane | None = None
    window: Window = field(default_factory=lambda: Window(127.5, 255.0))
    recovered: bool = False  # the mask came from a draft on disk
    ready_model: int | None = None  # the latest ready model when this was loaded


def default_loader(item: Item) -> ScanImage:
    """Read an item's scan with ``workbench.io.read_uri``, the item's modality filling in where
    the file has none (a NIfTI CT opens in the soft-tissue window)."""
    try:
        from workbench.io import read_uri
    except ImportError as error:
        raise SessionError("workbench.io.read_uri is not available to read scans") from error
    image: ScanImage = read_uri(item.source_uri, modality=item.modality)
    return image


def latest_ready_model(store: ProjectStore) -> int | None:
    """Id of the newest model version whose status is ready, if any."""
    ready = [m.id for m in store.list_model_versions() if m.status is ModelStatus.READY]
    return max(ready) if ready else None


def peek_next(store: ProjectStore, annotator: str, exclude: tuple[int, ...]) -> int | None:
    """Id of the item ``store.next_item`` would serve next if the items in ``exclude`` were
    done, without reserving it (an annotator holds one reservation at a time)."""
    found = store.peek_next(annotator, exclude=exclude)
    return None if found is None else found.id


class AnnotationSession:
    """One annotator working through a project's queue. ``image_loader`` (default:
    `default_loader`, which gives a file without a modality, e.g. NIfTI, the item's) reads an
    item's scan; its image's modality picks the first display window."""

    def __init__(
        self,
        store: ProjectStore,
        annotator: str,
        *,
        drafts_dir: str | Path | None = None,
        image_loader: ImageLoader | None = None,
        lease_seconds: float = 900.0,
        budget: int | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not annotator:
            raise SessionError("annotator must be a non-empty name", field="annotator")
        self.store = store
        self.annotator = annotator
        self.task = store.config.task
        self.classes = tuple(store.config.classes)
        self.lease_seconds = float(lease_seconds)
        self._budget = budget
        self._clock = clock
        self._load_image = image_loader or default_loader
        self._scan_ahead = ScanReadAhead(self._load_image)
        if drafts_dir is None:
            root = getattr(store, "root", None)
            drafts_dir = Path(root) / "drafts" if root is not None else None
        self.drafts = DraftStore(drafts_dir, annotator) if drafts_dir is not None else None
        self._served: list[int] = []  # item ids in the order this session showed them
        self._pos = -1
        self._skipped: list[int] = []
        self._current: _Current | None = None
        self._ahead: _Current | None = None  # the item next() will most likely show, loaded
        self._done = False
        self._message = ""
        self.autosave_drafts = True  # False: edits mark the draft dirty; flush_draft() writes
        self._draft_dirty = False
        root = getattr(store, "root", None)
        self._activity_dir = Path(root) if root is not None else None
        self._activity_marked = -1.0  # time.monotonic() of the last mark

    def mark_activity(self, every: float = 0.2) -> None:
        """Tell trainers of this project that someone is annotating (at most every ``every``
        seconds); `workbench.loop.YieldToAnnotators` pauses training meanwhile."""
        now = time.monotonic()
        if self._activity_dir is not None and now - self._activity_marked >= every:
            self._activity_marked = now
            with contextlib.suppress(OSError):  # a read-only project still labels
                mark_annotator_activity(self._activity_dir)

    # navigation ---------------------------------------------------------------------------
    @property
    def item(self) -> Item | None:
        return self._current.item if self._current else None

    @property
    def done(self) -> bool:
        return self._done

    def next(self) -> Item | None:
        """Show the next item: forward through items revisited with ``previous``, else the
        store's next unlabelled item. None when the queue is empty."""
        self.flush_draft()
        if self._current is not None and 0 <= self._pos < len(self._served) - 1:
            self._show(self._served[self._pos + 1])
            self._pos += 1
            return self.item
        item = self._reserve_next()
        if item is None:
            self._current = None
            self._done = True
            self._message = "No items left to label."
            self._pos = len(self._served)
            return None
        self._done = False
        if item.id in self._served:
            self._pos = self._served.index(item.id)
        else:
            self._served.append(item.id)
            self._pos = len(self._served) - 1
        self._show(item.id)
        return self.item

    def previous(self) -> Item | None:
        """Go back to the item served before this one, to look at or change its label."""
        if self._pos <= 0:
            self._message = "This is the first item of the session."
            return self.item
        self._pos -= 1
        self._show(self._served[self._pos])
        return self.item

    def skip(self) -> Item | None:
        """Leave this item unlabelled (releasing it) and show the next one."""
        cur = self._need_current()
        self.flush_draft()
        if cur.label is None:
            self._skipped.append(cur.item.id)
            self._served.remove(cur.item.id)
            self._pos -= 1
            self.store.release(cur.item.id, self.annotator)
        self._current = None
        return self.next()

    def flag(self, comment: str, kind: str = "unclear") -> None:
        """Flag the current item for review (it stays in the queue)."""
        cur = self._need_current()
        self.store.flag_item(cur.item.id, self.annotator, kind, comment)
        self._message = f"Flagged item {cur.item.key}."

    # labels -------------------------------------------------------------------------------
    @property
    def proposal_class(self) -> int | None:
        cur = self._current
        if cur is None or cur.prediction is None or cur.prediction.probs is None:
            return None
        return int(np.argmax(cur.prediction.probs))

    @property
    def has_mask_proposal(self) -> bool:
        cur = self._current
        return bool(cur and cur.prediction is not None and cur.prediction.mask is not None)

    def accept(self) -> LabelVersion:
        """Accept what is shown: the proposed class, or the current mask (ACCEPTED when it is
        the unchanged proposal, CORRECTED when edited, HUMAN when drawn after a reject)."""
        self.mark_activity()
        cur = self._need_current()
        if self.task is Task.CLASSIFICATION:
            proposed = self.proposal_class
            if proposed is None:
                raise SessionError("there is no proposal to accept: choose a class")
            return self.choose_class(proposed)
        if cur.mask is None:
            raise SessionError("there is no mask to accept")
        return self.submit_mask()

    def choose_class(self, class_index: int) -> LabelVersion:
        """Label the current item with ``class_index`` and show the next item."""
        self.mark_activity()
        cur = self._need_current()
        if self.task is not Task.CLASSIFICATION:
            raise SessionError("choose_class is for classification projects")
        if not 0 <= class_index < len(self.classes):
            raise SessionError(
                f"class {class_index} is not one of {list(self.classes)}", field="class_index"
            )
        proposed = self.proposal_class
        if proposed is None:
            source = LabelSource.HUMAN
        else:
            source = LabelSource.ACCEPTED if class_index == proposed else LabelSource.CORRECTED
        return self._submit(cur, source, class_index=int(class_index))

    def reject_proposal(self) -> MaskDiff | None:
        """Discard the proposed mask: the mask is emptied and what is drawn next is HUMAN."""
        cur = self._need_mask()
        cur.rejected = True
        diff = self.apply_edit_clear_all()
        self._save_draft(None, force=True)
        return diff

    def submit_mask(self) -> LabelVersion:
        """Submit the current mask and show the next item."""
        self.mark_activity()
        cur = self._need_mask()
        assert cur.mask is not None
        proposal = self._proposal_mask(cur)
        if proposal is None or cur.rejected:
            source = LabelSource.HUMAN
        elif np.array_equal(cur.mask, proposal):
            source = LabelSource.ACCEPTED
        else:
            source = LabelSource.CORRECTED
        return self._submit(cur, source, mask=cur.mask.copy())

    # mask editing ------------------------------------------------------------------------
    @property
    def mask(self) -> np.ndarray | None:
        return self._current.mask if self._current else None

    @property
    def edit_state(self) -> tuple[bool, bool, bool]:
        """(can undo, can redo, proposal rejected) for the current item; no store access."""
        cur = self._current
        if cur is None:
            return (False, False, False)
        return (cur.history.can_undo, cur.history.can_redo, cur.rejected)

    def apply_edit(self, edit: Edit) -> MaskDiff:
        """Apply an edit on the displayed plane; the diff goes on the undo stack and the draft
        is saved."""
        self.mark_activity()
        cur = self._need_mask()
        assert cur.mask is not None and cur.plane is not None
        diff = apply_edit(cur.mask, cur.plane, edit)
        cur.history.push(diff)
        self._save_draft(diff)
        return diff

    def apply_edit_clear_all(self) -> MaskDiff:
        from workbench.widgets._edits import Clear

        return self.apply_edit(Clear(whole_mask=True))

    def undo(self) -> MaskDiff | None:
        self.mark_activity()
        cur = self._need_mask()
        assert cur.mask is not None
        diff = cur.history.undo(cur.mask)
        self._save_draft(diff)
        return diff

    def redo(self) -> MaskDiff | None:
        self.mark_activity()
        cur = self._need_mask()
        assert cur.mask is not None
        diff = cur.history.redo(cur.mask)
        self._save_draft(diff)
        return diff

    # display -----------------------------------------------------------------------------
    @property
    def plane(self) -> Plane | None:
        return self._current.plane if self._current else None

    @property
    def window(self) -> Window | None:
        return self._current.window if self._current else None

    @property
    def is_volume(self) -> bool:
        return bool(self._current and self._current.image.ndim_spatial == 3)

    def set_plane(self, axis: str | None = None, index: int | None = None) -> Plane:
        """Show another plane: ``axis`` one of axial / coronal / sagittal (3D only), ``index``
        clipped to the volume; changing the axis without an index goes to its middle slice."""
        self.mark_activity()
        cur = self._need_current()
        assert cur.plane is not None
        if cur.image.ndim_spatial == 2:
            return cur.plane
        new_axis = cur.plane.axis if axis is None else axis
        if new_axis not in AXES:
            raise SessionError(f"axis must be one of {AXES}, got {axis!r}", field="axis")
        probe = Plane(cur.plane.shape, new_axis, 0)
        if index is None:
            index = cur.plane.index if new_axis == cur.plane.axis else probe.n_slices // 2
        cur.plane = Plane(cur.plane.shape, new_axis, int(np.clip(index, 0, probe.n_slices - 1)))
        return cur.plane

    def set_window(self, center: float, width: float) -> Window:
        self.mark_activity()
        cur = self._need_current()
        cur.window = Window(float(center), max(float(width), 1e-3))
        return cur.window

    def set_preset(self, name: str) -> Window:
        """Window by preset name (CT presets, ``auto``, or ``full`` for the whole range)."""
        cur = self._need_current()
        if name == "auto":
            cur.window = auto_window(cur.image.array)
        elif name == "full":
            arr = cur.image.array
            lo, hi = float(arr.min()), float(arr.max())
            cur.window = Window((lo + hi) / 2, max(hi - lo, 1.0))
        else:
            table = presets()
            if name not in table:
                raise SessionError(f"unknown window preset {name!r}; known: {sorted(table)}")
            cur.window = Window(*table[name])
        return cur.window

    def plane_image(self, cur: _Current | None = None) -> np.ndarray:
        """[H, W] or [H, W, 3] uint8: the displayed plane through the current window (of
        ``cur``, by default the item on screen)."""
        cur = cur or self._need_current()
        assert cur.plane is not None
        arr = cur.plane.take(cur.image.array)
        if arr.ndim == 3 and arr.shape[2] == 4:
            arr = arr[:, :, :3]
        return to_uint8(arr, cur.window)

    def plane_mask(self, cur: _Current | None = None) -> np.ndarray | None:
        """[H, W] uint8 of the mask on the displayed plane (segmentation only)."""
        cur = cur or self._current
        if cur is None or cur.mask is None or cur.plane is None:
            return None
        return np.ascontiguousarray(cur.plane.take(cur.mask), np.uint8)

    def slab(self, start: int, stop: int) -> tuple[np.ndarray, np.ndarray | None]:
        """Planes ``start..stop-1`` along the displayed axis of a volume, as shown:
        ([n, H, W] uint8 windowed image, [n, H, W] uint8 mask or None)."""
        cur = self._need_current()
        assert cur.plane is not None
        if cur.image.array.ndim != 3 or cur.plane.axis == "image":
            raise SessionError("slabs are for single-channel volumes")
        image = to_uint8(cur.plane.take_range(cur.image.array, start, stop), cur.window)
        mask = (
            None
            if cur.mask is None
            else cur.plane.take_range(cur.mask, start, stop).astype(np.uint8, copy=False)
        )
        return image, mask

    # looking ahead ---------------------------------------------------------------------
    def upcoming_id(self) -> int | None:
        """The item ``next()`` (after a submit or skip) will most likely show, not reserved."""
        cur = self._current
        if cur is None:
            return None
        if 0 <= self._pos < len(self._served) - 1:
            return self._served[self._pos + 1]
        return peek_next(self.store, self.annotator, (*self._skipped, cur.item.id))

    def prefetch(self) -> _Current | None:
        """Load the upcoming item (scan, proposal, mask, first plane) now, while the annotator
        looks at this one, so ``next()`` shows it without reading anything; returns it."""
        item_id = self.upcoming_id()
        if item_id is None:
            self._ahead = None
            return None
        if self._ahead is None or self._ahead.item.id != item_id:
            self._ahead = self._build(item_id)
        return self._ahead

    def read_ahead(self) -> int | None:
        """Start reading the upcoming item's scan in a background thread and return its id:
        the lighter look-ahead for items too large to ``prefetch`` (volumes), whose file read
        would otherwise hold up the next item. Only the scan is read there; ``next()`` builds
        the rest (proposal, label, mask) as usual."""
        item_id = self.upcoming_id()
        if item_id is None:
            self._scan_ahead.drop()
            return None
        if self._scan_ahead.pending_id != item_id:
            self._scan_ahead.start(self.store.get_item(item_id))
        return item_id

    def close(self) -> None:
        """Write the draft and stop reading ahead (the store stays open: it is the caller's)."""
        self.flush_draft()
        self._scan_ahead.close()

    @property
    def ahead(self) -> _Current | None:
        return self._ahead

    def plane_uncertainty(self) -> np.ndarray | None:
        """[H, W] uint8 of the proposal's uncertainty map on the displayed plane (0..255)."""
        cur = self._current
        if cur is None or cur.prediction is None or cur.plane is None:
            return None
        unc = cur.prediction.uncertainty_map
        if unc is None or unc.shape[: len(cur.plane.shape)] != cur.plane.shape:
            return None
        top = float(np.nanmax(unc)) if unc.size else 0.0
        plane = np.nan_to_num(np.asarray(cur.plane.take(unc), np.float32))
        return to_uint8(plane, Window(top / 2, top if top > 0 else 1.0))

    def pixel_aspect(self) -> float:
        """Height / width of one displayed pixel, from the scan's spacing."""
        cur = self._need_current()
        assert cur.plane is not None
        row_mm, col_mm = cur.plane.spacing(cur.image.spacing)
        return row_mm / col_mm if row_mm > 0 and col_mm > 0 else 1.0

    def busiest_slice(self, what: str = "auto") -> int:
        """The slice along the current axis with the most proposal mask (``"mask"``) or
        uncertainty (``"uncertainty"``); ``"auto"`` prefers uncertainty."""
        cur = self._need_current()
        assert cur.plane is not None
        fixed = cur.plane.fixed_axis
        if fixed is None:
            return 0
        source = None
        if cur.prediction is not None and what in ("auto", "uncertainty"):
            source = cur.prediction.uncertainty_map
        if source is None and what in ("auto", "mask"):
            source = cur.mask if cur.mask is not None and cur.mask.any() else None
            if source is None and cur.prediction is not None:
                source = cur.prediction.mask
        if source is None:
            return cur.plane.index
        others = tuple(a for a in range(3) if a != fixed)
        per_slice = np.nansum(np.asarray(source, np.float64), axis=others)
        best = int(np.argmax(per_slice))
        # plane index along the fixed axis is the voxel index itself
        return best

    def status(self) -> Status:
        cur = self._current
        labelled = len(self.store.current_labels())
        budget = self._budget if self._budget is not None else len(self.store.list_items())
        return Status(
            item_id=cur.item.id if cur else None,
            item_key=cur.item.key if cur else "",
            position=self._pos + 1 if cur else len(self._served),
            served=len(self._served),
            labelled=labelled,
            budget=budget,
            model_version_id=cur.model_version_id if cur else None,
            seconds_on_item=self._clock() - cur.started_at if cur else 0.0,
            revising=bool(cur and cur.label is not None),
            proposal_class=self.proposal_class,
            edited=bool(cur and cur.history.can_undo),
            rejected=bool(cur and cur.rejected),
            can_undo=bool(cur and cur.history.can_undo),
            can_redo=bool(cur and cur.history.can_redo),
            done=self._done,
            message=self._message,
        )

    # internals ---------------------------------------------------------------------------
    def _need_current(self) -> _Current:
        if self._current is None:
            raise SessionError("no item is shown (call next() first, or the queue is empty)")
        return self._current

    def _need_mask(self) -> _Current:
        cur = self._need_current()
        if cur.mask is None:
            raise SessionError("mask editing is for segmentation projects")
        return cur

    def _reserve_next(self) -> Item | None:
        """The store's next item for this annotator, passing over items skipped here."""
        return self.store.next_item(
            self.annotator, lease_seconds=self.lease_seconds, exclude=tuple(self._skipped)
        )

    def _show(self, item_id: int) -> None:
        self.flush_draft()
        ahead, self._ahead = self._ahead, None
        if ahead is not None and ahead.item.id == item_id and self._still_fresh(ahead):
            cur = ahead
            if not cur.recovered:
                cur.started_at = self._clock()
        else:
            cur = self._build(item_id)
        self._message = "Recovered an unsaved draft." if cur.recovered else ""
        self._current = cur

    def _still_fresh(self, cur: _Current) -> bool:
        """Nothing that ``_build`` read for ``cur`` has changed in the store since."""
        label = self.store.current_label(cur.item.id)
        return (label.id if label else None) == (
            cur.label.id if cur.label else None
        ) and latest_ready_model(self.store) == cur.ready_model

    def _build(self, item_id: int) -> _Current:
        """Everything needed to show ``item_id``: its scan, proposal, label and mask."""
        item = self.store.get_item(item_id)
        image = self._scan_ahead.take(item_id)
        if image is None:
            image = self._load_image(item)
        ready = model_id = latest_ready_model(self.store)
        label = self.store.current_label(item_id)
        if label is not None and label.model_version_id is not None:
            model_id = label.model_version_id
        prediction = self.store.get_prediction(model_id, item_id) if model_id is not None else None
        if prediction is None:
            model_id = None
        cur = _Current(
            item=item,
            image=image,
            prediction=prediction,
            model_version_id=model_id,
            started_at=self._clock(),
            label=label,
            ready_model=ready,
        )
        spatial = image.spatial_shape
        cur.plane = (
            Plane(spatial) if image.ndim_spatial == 2 else Plane(spatial, "axial", spatial[2] // 2)
        )
        cur.window = default_window(image)
        if self.task is Task.SEGMENTATION:
            self._init_mask(cur, spatial)  # an RGB scan's mask has no channel axis
        return cur

    def _init_mask(self, cur: _Current, shape: tuple[int, ...]) -> None:
        proposal = self._proposal_mask(cur, shape)
        if cur.label is not None and cur.label.mask_hash is not None:
            cur.base, cur.base_mask = (
                f"label:{cur.label.id}",
                self._as_mask(self.store.get_mask(cur.label.mask_hash), shape),
            )
            cur.rejected = proposal is not None and cur.label.source is LabelSource.HUMAN
        elif proposal is not None:
            cur.base, cur.base_mask = "proposal", proposal
        else:
            cur.base, cur.base_mask = "empty", np.zeros(shape, np.uint8)
        cur.mask = cur.base_mask.copy()
        draft = self.drafts.load(cur.item.id) if self.drafts else None
        if draft is not None and draft.base == cur.base:
            cur.mask = draft.apply_to(cur.base_mask)
            cur.touched = draft.indices
            cur.rejected = draft.rejected
            cur.started_at = draft.started_at
            cur.recovered = True
            if all(
                d.indices.size == 0 or int(d.indices.max()) < cur.mask.size
                for d in (*draft.undo, *draft.redo)
            ):
                cur.history = EditHistory.from_stacks(draft.undo, draft.redo)

    def _proposal_mask(
        self, cur: _Current, shape: tuple[int, ...] | None = None
    ) -> np.ndarray | None:
        if cur.prediction is None or cur.prediction.mask is None:
            return None
        return self._as_mask(cur.prediction.mask, shape or cur.image.spatial_shape)

    @staticmethod
    def _as_mask(mask: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
        arr = np.asarray(mask)
        if arr.dtype.kind == "f":
            arr = arr >= 0.5
        arr = np.ascontiguousarray(arr, np.uint8)
        if arr.shape != shape:
            raise SessionError(f"mask shape {arr.shape} differs from the item's {shape}")
        return arr

    def _save_draft(self, diff: MaskDiff | None, *, force: bool = False) -> None:
        """Write the draft after ``diff`` changed the mask (only the touched voxels are read)."""
        cur = self._current
        if self.drafts is None or cur is None or cur.mask is None or cur.base_mask is None:
            return
        if diff is not None and len(diff):
            cur.touched = np.union1d(cur.touched, diff.indices)
        elif not force:
            return
        self._draft_dirty = True
        if self.autosave_drafts:
            self.flush_draft()

    def flush_draft(self) -> None:
        """Write the current item's draft if an edit changed it since the last write."""
        cur = self._current
        if (
            not self._draft_dirty
            or self.drafts is None
            or cur is None
            or cur.mask is None
            or cur.base_mask is None
        ):
            return
        self._draft_dirty = False
        draft = Draft.from_touched(
            cur.item.id,
            cur.base,
            cur.base_mask,
            cur.mask,
            cur.touched,
            model_version_id=cur.model_version_id,
            rejected=cur.rejected,
            started_at=cur.started_at,
            undo=cur.history.undo_stack,
            redo=cur.history.redo_stack,
        )
        cur.touched = draft.indices
        self.drafts.save(draft)

    def _submit(
        self,
        cur: _Current,
        source: LabelSource,
        *,
        class_index: int | None = None,
        mask: np.ndarray | None = None,
    ) -> LabelVersion:
        now = self._clock()
        version = self.store.submit_label(
            LabelSubmission(
                item_id=cur.item.id,
                annotator=self.annotator,
                source=source,
                class_index=class_index,
                mask=mask,
                started_at=cur.started_at,
                seconds_spent=max(now - cur.started_at, 0.0),
                model_version_id=cur.model_version_id,
                replaces_id=cur.label.id if cur.label is not None else None,
            )
        )
        self._draft_dirty = False
        if self.drafts is not None:
            self.drafts.delete(cur.item.id)
        self._message = f"Saved {source.value} label for {cur.item.key}."
        message = self._message
        self.next()
        if not self._message:
            self._message = message
        return version
