"""Mask edits as data: small typed records, rasterised into diffs that undo and redo consume.

Every edit happens on one displayed plane (a 2D image, or one slice of a volume). Points are
``(row, col)`` in that plane's display coordinates, pixel centres at integers. ``rasterize``
turns an edit into the flat plane indices it touches; ``apply_edit`` writes them into the mask
and returns a :class:`MaskDiff` holding only the voxels that changed (flat mask indices, old and
new values). Undo writes ``old`` back, redo writes ``new``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from workbench.widgets._planes import Plane

Point = tuple[float, float]


@dataclass(frozen=True)
class Stroke:
    """A brush (``value`` > 0) or eraser (``value`` = 0) stroke: every pixel whose centre lies
    within ``radius`` of the polyline through ``points`` gets ``value``.

    ``stroke_id`` groups the segments of one pointer-down..pointer-up gesture sent in chunks, so
    that one undo removes the whole gesture.
    """

    points: tuple[Point, ...]
    radius: float
    value: int
    stroke_id: str = ""


@dataclass(frozen=True)
class Fill:
    """Flood fill: the 4-connected region of equal value containing ``point`` gets ``value``."""

    point: Point
    value: int


@dataclass(frozen=True)
class Polygon:
    """Every pixel whose centre lies inside the closed polygon (even-odd rule) gets ``value``."""

    points: tuple[Point, ...]
    value: int


@dataclass(frozen=True)
class Clear:
    """Sets the whole plane (or, with ``whole_mask``, the whole mask) to 0."""

    whole_mask: bool = False


Edit = Stroke | Fill | Polygon | Clear


@dataclass(frozen=True)
class MaskDiff:
    """What one edit changed: flat indices into the mask and the values before and after."""

    indices: np.ndarray  # [n] int64, flat indices into the mask, sorted, unique
    old: np.ndarray  # [n] uint8
    new: np.ndarray  # [n] uint8
    group: str = ""  # stroke_id of a chunked stroke; consecutive diffs of one group undo together

    def __len__(self) -> int:
        return int(self.indices.size)

    def inverted(self) -> MaskDiff:
        return MaskDiff(self.indices, self.new, self.old, self.group)

    @staticmethod
    def merge(diffs: Sequence[MaskDiff]) -> MaskDiff:
        """One diff equivalent to applying ``diffs`` in order."""
        if len(diffs) == 1:
            return diffs[0]
        idx = np.concatenate([d.indices for d in diffs])
        old = np.concatenate([d.old for d in diffs])
        new = np.concatenate([d.new for d in diffs])
        # the first old value and the last new value of each index win
        order = np.arange(idx.size)
        first_sort = np.lexsort((order, idx))
        uniq, first = np.unique(idx[first_sort], return_index=True)
        last_sort = np.lexsort((-order, idx))
        _, last = np.unique(idx[last_sort], return_index=True)
        return MaskDiff(uniq, old[first_sort][first], new[last_sort][last], diffs[0].group)


def rasterize(edit: Edit, mask_plane: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The flat plane indices an edit writes and the values it writes there.

    ``mask_plane``: [H, W] the plane as it is now (fill needs it).
    """
    h, w = mask_plane.shape
    if isinstance(edit, Stroke):
        hit = _stroke_pixels(edit.points, edit.radius, h, w)
        flat = np.flatnonzero(hit)
        return flat, np.full(flat.size, edit.value, np.uint8)
    if isinstance(edit, Polygon):
        flat = np.flatnonzero(_polygon_pixels(edit.points, h, w))
        return flat, np.full(flat.size, edit.value, np.uint8)
    if isinstance(edit, Fill):
        flat = _fill_pixels(edit.point, mask_plane)
        return flat, np.full(flat.size, edit.value, np.uint8)
    if isinstance(edit, Clear):
        flat = np.flatnonzero(mask_plane)
        return flat, np.zeros(flat.size, np.uint8)
    raise TypeError(f"not an edit: {edit!r}")


def apply_edit(mask: np.ndarray, plane: Plane, edit: Edit) -> MaskDiff:
    """Apply ``edit`` on ``plane`` of ``mask`` in place; returns what changed."""
    if isinstance(edit, Clear) and edit.whole_mask:
        idx = np.flatnonzero(mask)
        vals = np.zeros(idx.size, np.uint8)
    else:
        plane_flat, vals = rasterize(edit, plane.take(mask))
        idx = plane.to_mask_index(plane_flat)
    group = edit.stroke_id if isinstance(edit, Stroke) else ""
    return write(mask, idx, vals, group)


def write(mask: np.ndarray, indices: np.ndarray, values: np.ndarray, group: str = "") -> MaskDiff:
    """Write ``values`` at flat ``indices`` of ``mask``; returns the diff of what changed."""
    flat = mask.reshape(-1)
    old = flat[indices]
    changed = old != values
    idx = np.asarray(indices, np.int64)[changed]
    order = np.argsort(idx, kind="stable")
    diff = MaskDiff(idx[order], old[changed][order], values[changed][order].astype(np.uint8), group)
    flat[diff.indices] = diff.new
    return diff


def _stroke_pixels(points: Sequence[Point], radius: float, h: int, w: int) -> np.ndarray:
    """[H, W] bool: pixel centres within ``radius`` of the polyline."""
    hit = np.zeros((h, w), bool)
    pts = np.asarray(points, float).reshape(-1, 2)
    if pts.size == 0:
        return hit
    segments = zip(pts, pts[1:], strict=False) if len(pts) > 1 else [(pts[0], pts[0])]
    r = max(float(radius), 0.0)
    for a, b in segments:
        r0 = max(int(np.floor(min(a[0], b[0]) - r)), 0)
        r1 = min(int(np.ceil(max(a[0], b[0]) + r)), h - 1)
        c0 = max(int(np.floor(min(a[1], b[1]) - r)), 0)
        c1 = min(int(np.ceil(max(a[1], b[1]) + r)), w - 1)
        if r0 > r1 or c0 > c1:
            continue
        rr, cc = np.mgrid[r0 : r1 + 1, c0 : c1 + 1]
        d = b - a
        length2 = float(d @ d)
        if length2 == 0.0:
            t = np.zeros(rr.shape)
        else:
            t = np.clip(((rr - a[0]) * d[0] + (cc - a[1]) * d[1]) / length2, 0.0, 1.0)
        dist2 = (rr - (a[0] + t * d[0])) ** 2 + (cc - (a[1] + t * d[1])) ** 2
        hit[r0 : r1 + 1, c0 : c1 + 1] |= dist2 <= r * r + 1e-9
    return hit


def _polygon_pixels(points: Sequence[Point], h: int, w: int) -> np.ndarray:
    """[H, W] bool: pixel centres inside the polygon (even-odd crossing rule)."""
    inside = np.zeros((h, w), bool)
    pts = np.asarray(points, float).reshape(-1, 2)
    if len(pts) < 3:
        return inside
    rr, cc = np.mgrid[0:h, 0:w].astype(float)
    for (ya, xa), (yb, xb) in zip(pts, np.roll(pts, -1, axis=0), strict=True):
        if ya == yb:
            continue
        crosses = (ya > rr) != (yb > rr)
        x_at = xa + (rr - ya) * (xb - xa) / (yb - ya)
        inside ^= crosses & (cc < x_at)
    return inside


def _fill_pixels(point: Point, plane: np.ndarray) -> np.ndarray:
    """Flat indices of the 4-connected region of equal value containing ``point``."""
    from scipy import ndimage

    r, c = int(round(point[0])), int(round(point[1]))
    h, w = plane.shape
    if not (0 <= r < h and 0 <= c < w):
        return np.zeros(0, np.int64)
    labels, _ = ndimage.label(plane == plane[r, c])
    return np.flatnonzero(labels == labels[r, c])


class EditHistory:
    """Undo and redo stacks of diffs. Consecutive diffs of one stroke group undo as one."""

    def __init__(self) -> None:
        self._undo: list[MaskDiff] = []
        self._redo: list[MaskDiff] = []

    def push(self, diff: MaskDiff) -> None:
        if len(diff) == 0:
            return
        self._redo.clear()
        if diff.group and self._undo and self._undo[-1].group == diff.group:
            self._undo[-1] = MaskDiff.merge([self._undo[-1], diff])
        else:
            self._undo.append(diff)

    def undo(self, mask: np.ndarray) -> MaskDiff | None:
        """Revert the last edit on ``mask``; returns the diff that was applied to do it."""
        if not self._undo:
            return None
        diff = self._undo.pop()
        self._redo.append(diff)
        inverse = diff.inverted()
        mask.reshape(-1)[inverse.indices] = inverse.new
        return inverse

    def redo(self, mask: np.ndarray) -> MaskDiff | None:
        if not self._redo:
            return None
        diff = self._redo.pop()
        self._undo.append(diff)
        mask.reshape(-1)[diff.indices] = diff.new
        return diff

    @property
    def can_undo(self) -> bool:
        return bool(self._undo)

    @property
    def can_redo(self) -> bool:
        return bool(self._redo)

    def clear(self) -> None:
        self._undo.clear()
        self._redo.clear()

    @property
    def undo_stack(self) -> tuple[MaskDiff, ...]:
        """The diffs ``undo`` reverts, oldest first (the last one is undone next)."""
        return tuple(self._undo)

    @property
    def redo_stack(self) -> tuple[MaskDiff, ...]:
        """The diffs ``redo`` re-applies; the last one is redone next."""
        return tuple(self._redo)

    @classmethod
    def from_stacks(cls, undo: Sequence[MaskDiff], redo: Sequence[MaskDiff] = ()) -> EditHistory:
        """A history with these stacks (as ``undo_stack`` / ``redo_stack`` gave them)."""
        history = cls()
        history._undo = list(undo)
        history._redo = list(redo)
        return history
