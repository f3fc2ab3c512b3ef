"""Edit records, rasterisation, diffs and undo / redo, without a store."""

from __future__ import annotations

import numpy as np
import pytest

from workbench.widgets._edits import (
    Clear,
    EditHistory,
    Fill,
    MaskDiff,
    Polygon,
    Stroke,
    apply_edit,
)
from workbench.widgets._planes import Plane


def disk(shape: tuple[int, int], center: tuple[int, int], radius: float) -> np.ndarray:
    rr, cc = np.mgrid[0 : shape[0], 0 : shape[1]]
    return (rr - center[0]) ** 2 + (cc - center[1]) ** 2 <= radius**2


def test_single_point_stroke_paints_a_disk() -> None:
    mask = np.zeros((20, 30), np.uint8)
    diff = apply_edit(mask, Plane(mask.shape), Stroke(((10, 12),), radius=3, value=1))
    assert np.array_equal(mask == 1, disk(mask.shape, (10, 12), 3))
    assert len(diff) == int(disk(mask.shape, (10, 12), 3).sum())
    assert set(diff.old.tolist()) == {0} and set(diff.new.tolist()) == {1}


def test_stroke_covers_the_segment_between_points_and_clips_at_edges() -> None:
    mask = np.zeros((10, 10), np.uint8)
    apply_edit(mask, Plane(mask.shape), Stroke(((0, 0), (0, 9)), radius=1, value=2))
    assert mask[0].tolist() == [2] * 10 and mask[1].tolist() == [2] * 10
    assert not mask[2:].any()


def test_eraser_records_only_changed_pixels() -> None:
    mask = np.zeros((10, 10), np.uint8)
    mask[5, 5] = 1
    diff = apply_edit(mask, Plane(mask.shape), Stroke(((5, 4),), radius=2, value=0))
    assert diff.indices.tolist() == [55] and diff.old.tolist() == [1] and diff.new.tolist() == [0]


def test_polygon_fills_pixel_centres_inside() -> None:
    mask = np.zeros((10, 10), np.uint8)
    apply_edit(
        mask, Plane(mask.shape), Polygon(((1.5, 1.5), (1.5, 5.5), (4.5, 5.5), (4.5, 1.5)), 1)
    )
    expected = np.zeros((10, 10), bool)
    expected[2:5, 2:6] = True
    assert np.array_equal(mask == 1, expected)


def test_fill_stops_at_a_closed_outline() -> None:
    mask = np.zeros((12, 12), np.uint8)
    mask[2, 2:9] = mask[8, 2:9] = mask[2:9, 2] = mask[2:9, 8] = 1
    apply_edit(mask, Plane(mask.shape), Fill((5, 5), 1))
    assert mask[3:8, 3:8].all() and mask[3:8, 3:8].sum() == 25
    assert not mask[0].any() and not mask[10:].any()


def test_clear_plane_and_whole_mask() -> None:
    vol = np.ones((4, 5, 3), np.uint8)
    diff = apply_edit(vol, Plane(vol.shape, "axial", 1), Clear())
    assert len(diff) == 20 and not vol[:, :, 1].any() and vol[:, :, 0].all()
    apply_edit(vol, Plane(vol.shape), Clear(whole_mask=True))
    assert not vol.any()


def test_undo_redo_restore_exact_states() -> None:
    mask = np.zeros((16, 16), np.uint8)
    plane, history, states = Plane(mask.shape), EditHistory(), [mask.copy()]
    for edit in (Stroke(((4, 4),), 2, 1), Stroke(((5, 5),), 2, 0), Fill((15, 15), 1)):
        history.push(apply_edit(mask, plane, edit))
        states.append(mask.copy())
    for state in reversed(states[:-1]):
        assert history.undo(mask) is not None
        assert np.array_equal(mask, state)
    assert history.undo(mask) is None
    for state in states[1:]:
        history.redo(mask)
        assert np.array_equal(mask, state)
    assert not history.can_redo


def test_chunks_of_one_stroke_undo_together_and_new_edit_drops_redo() -> None:
    mask = np.zeros((16, 16), np.uint8)
    plane, history = Plane(mask.shape), EditHistory()
    history.push(apply_edit(mask, plane, Stroke(((2, 2), (2, 8)), 1, 1, stroke_id="s1")))
    history.push(apply_edit(mask, plane, Stroke(((2, 8), (10, 8)), 1, 1, stroke_id="s1")))
    history.push(apply_edit(mask, plane, Stroke(((10, 8), (2, 2)), 1, 0, stroke_id="s1")))
    assert mask.any()
    history.undo(mask)
    assert not mask.any()
    history.redo(mask)
    history.undo(mask)
    history.push(apply_edit(mask, plane, Stroke(((1, 1),), 0, 1)))
    assert not history.can_redo and mask.sum() == 1


def test_merge_keeps_first_old_and_last_new() -> None:
    a = MaskDiff(np.array([1, 2]), np.array([0, 0], np.uint8), np.array([1, 1], np.uint8))
    b = MaskDiff(np.array([2, 3]), np.array([1, 0], np.uint8), np.array([2, 2], np.uint8))
    m = MaskDiff.merge([a, b])
    assert m.indices.tolist() == [1, 2, 3]
    assert m.old.tolist() == [0, 0, 0] and m.new.tolist() == [1, 2, 2]


@pytest.mark.parametrize("axis", ["axial", "coronal", "sagittal"])
def test_plane_index_maps_round_trip(axis: str) -> None:
    shape = (5, 6, 7)
    vol = np.arange(np.prod(shape)).reshape(shape)
    plane = Plane(shape, axis, 2)
    view = plane.take(vol)
    assert view.shape == plane.size
    flat = np.arange(view.size)
    mask_idx = plane.to_mask_index(flat)
    assert np.array_equal(vol.reshape(-1)[mask_idx], view.reshape(-1))
    assert np.array_equal(plane.from_mask_index(mask_idx), flat)
    assert plane.on_plane(mask_idx).all()


def test_axial_plane_orientation() -> None:
    vol = np.zeros((4, 3, 2), np.uint8)
    vol[0, 2, 1] = 1  # i=0 (left column), j=2 (most anterior: top row)
    assert Plane(vol.shape, "axial", 1).take(vol)[0, 0] == 1
