"""AnnotationSession against a real SQLiteStore: serving, provenance, edits, drafts."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.widgets.conftest import npy_loader, ready_model
from workbench.io._image import ScanImage
from workbench.store import Item, LabelSource, LabelVersion, Prediction, SQLiteStore
from workbench.widgets import AnnotationSession, SessionError, Stroke
from workbench.widgets._edits import Fill


def session(
    store: SQLiteStore, clock: Callable[[], float] | None = None, name: str = "ann"
) -> AnnotationSession:
    kwargs: dict[str, Any] = {"clock": clock} if clock else {}
    s = AnnotationSession(store, name, image_loader=npy_loader, **kwargs)
    s.next()
    return s


def saved_mask(store: SQLiteStore, version: LabelVersion) -> np.ndarray:
    """The mask a segmentation label version stored."""
    assert version.mask_hash is not None
    return store.get_mask(version.mask_hash)


# classification -----------------------------------------------------------------------------
def test_choose_class_without_proposal_is_human_and_advances(
    cls_store: SQLiteStore, clock: Callable[[], float]
) -> None:
    s = session(cls_store, clock)
    first = s.item
    assert first is not None and s.status().position == 1
    version = s.choose_class(2)
    assert version.source is LabelSource.HUMAN and version.class_index == 2
    assert version.model_version_id is None and version.seconds_spent == pytest.approx(4.0)
    assert s.item is not None and s.item.id != first.id
    status = s.status()
    assert (status.position, status.labelled, status.budget) == (2, 1, 6)


def test_accept_and_correct_proposals(cls_store: SQLiteStore) -> None:
    items = cls_store.list_items()
    model = ready_model(
        cls_store, [Prediction(i.id, probs=np.array([0.1, 0.7, 0.2])) for i in items]
    )
    s = session(cls_store)
    assert s.proposal_class == 1 and s.status().model_version_id == model
    accepted = s.accept()
    assert accepted.source is LabelSource.ACCEPTED and accepted.class_index == 1
    assert accepted.model_version_id == model
    corrected = s.choose_class(0)
    assert corrected.source is LabelSource.CORRECTED and corrected.model_version_id == model
    same = s.choose_class(1)
    assert same.source is LabelSource.ACCEPTED


def test_accept_without_proposal_is_an_error(cls_store: SQLiteStore) -> None:
    with pytest.raises(SessionError):
        session(cls_store).accept()


def test_skip_releases_and_serves_another_item(cls_store: SQLiteStore) -> None:
    s = session(cls_store)
    first = s.item
    assert first is not None
    s.skip()
    assert s.item is not None and s.item.id != first.id
    held = {a.item_id for a in cls_store.list_assignments() if a.annotator == "ann"}
    assert held == {s.item.id}
    s.choose_class(0)
    assert cls_store.current_label(first.id) is None


def test_flag_keeps_item_and_records_comment(cls_store: SQLiteStore) -> None:
    s = session(cls_store)
    item = s.item
    assert item is not None
    s.flag("blurry, ask an expert")
    assert s.item == item
    flags = cls_store.list_flags(item.id)
    assert [(f.annotator, f.comment) for f in flags] == [("ann", "blurry, ask an expert")]


def test_go_back_and_change_writes_a_new_version(cls_store: SQLiteStore) -> None:
    s = session(cls_store)
    first = s.item
    assert first is not None
    v1 = s.choose_class(0)
    second = s.item
    s.previous()
    assert s.item == first and s.status().revising
    v2 = s.choose_class(2)
    assert v2.replaces_id == v1.id and v2.class_index == 2
    assert [v.id for v in cls_store.label_history(first.id)] == [v1.id, v2.id]
    assert s.item == second and not s.status().revising


def test_keyboard_run_labels_every_item_then_done(cls_store: SQLiteStore) -> None:
    s = session(cls_store)
    for n in range(6):
        s.choose_class(n % 3)
    assert s.item is None and s.done and s.status().labelled == 6


def test_display_of_2d_item(cls_store: SQLiteStore) -> None:
    s = session(cls_store)
    image = s.plane_image()
    assert image.dtype == np.uint8 and image.shape == (32, 48)
    assert s.item is not None
    assert np.array_equal(image, np.load(s.item.source_uri))  # uint8 shown as is
    assert s.pixel_aspect() == pytest.approx(2.0)
    assert s.plane_mask() is None


# segmentation -------------------------------------------------------------------------------
def test_draw_from_scratch_is_human(seg_store: SQLiteStore) -> None:
    s = session(seg_store)
    item = s.item
    s.apply_edit(Stroke(((10, 10), (10, 20)), radius=2, value=1))
    assert s.mask is not None
    expected = s.mask.copy()
    version = s.submit_mask()
    assert version.source is LabelSource.HUMAN and version.model_version_id is None
    assert np.array_equal(saved_mask(seg_store, version), expected)
    assert item is not None and s.item is not None and s.item.id != item.id


def proposal_mask() -> np.ndarray:
    mask = np.zeros((40, 40), np.uint8)
    mask[10:20, 10:20] = 1
    return mask


def seg_model(store: SQLiteStore) -> int:
    return ready_model(
        store,
        [
            Prediction(
                i.id, mask=proposal_mask(), uncertainty_map=np.full((40, 40), 0.2, np.float32)
            )
            for i in store.list_items()
        ],
    )


def test_unchanged_proposal_is_accepted_edited_is_corrected(seg_store: SQLiteStore) -> None:
    model = seg_model(seg_store)
    s = session(seg_store)
    plane_mask = s.plane_mask()
    assert plane_mask is not None and np.array_equal(plane_mask, proposal_mask())
    accepted = s.accept()
    assert accepted.source is LabelSource.ACCEPTED and accepted.model_version_id == model
    s.apply_edit(Stroke(((30, 30),), radius=1, value=1))
    corrected = s.submit_mask()
    assert corrected.source is LabelSource.CORRECTED
    stored = saved_mask(seg_store, corrected)
    assert stored[30, 30] == 1 and stored[10:20, 10:20].all()
    # an edit undone leaves the proposal unchanged: accepted again
    s.apply_edit(Stroke(((30, 30),), radius=1, value=1))
    s.undo()
    assert s.accept().source is LabelSource.ACCEPTED


def test_reject_then_draw_is_human_with_model_recorded(seg_store: SQLiteStore) -> None:
    model = seg_model(seg_store)
    s = session(seg_store)
    s.reject_proposal()
    assert s.mask is not None and not s.mask.any()
    s.apply_edit(Fill((0, 0), 1))
    version = s.submit_mask()
    assert version.source is LabelSource.HUMAN and version.model_version_id == model
    assert saved_mask(seg_store, version).all()


def test_revise_a_mask(seg_store: SQLiteStore) -> None:
    s = session(seg_store)
    s.apply_edit(Stroke(((5, 5),), radius=2, value=1))
    v1 = s.submit_mask()
    s.previous()
    assert s.mask is not None
    assert np.array_equal(s.mask, saved_mask(seg_store, v1))
    s.apply_edit(Stroke(((5, 5),), radius=3, value=0))
    v2 = s.submit_mask()
    assert v2.replaces_id == v1.id and not saved_mask(seg_store, v2).any()


def test_draft_survives_a_new_session(seg_store: SQLiteStore) -> None:
    seg_model(seg_store)
    s = session(seg_store)
    item = s.item
    s.apply_edit(Stroke(((30, 5), (30, 35)), radius=1.5, value=1))
    s.reject_proposal()
    s.apply_edit(Stroke(((2, 2),), radius=1, value=1))
    assert s.mask is not None
    drafted = s.mask.copy()
    # a kernel restart: a new session for the same annotator gets the held item and its draft
    again = session(seg_store)
    assert again.item == item and again.status().rejected
    assert again.mask is not None
    assert np.array_equal(again.mask, drafted)
    assert "draft" in again.status().message.lower()
    assert again.submit_mask().source is LabelSource.HUMAN
    assert again.drafts is not None and again.drafts.items() == []


def test_undo_redo_history_survives_a_restart(seg_store: SQLiteStore) -> None:
    seg_model(seg_store)
    s = session(seg_store)
    assert s.mask is not None
    states = [s.mask.copy()]
    # one chunked stroke (two chunks, one group), a fill, a reject, a dot; then undo the dot
    s.apply_edit(Stroke(((30, 5), (30, 20)), radius=1.5, value=1, stroke_id="a"))
    s.apply_edit(Stroke(((30, 20), (30, 35)), radius=1.5, value=1, stroke_id="a"))
    states.append(s.mask.copy())
    s.apply_edit(Fill((2, 2), 1))
    states.append(s.mask.copy())
    s.reject_proposal()
    states.append(s.mask.copy())
    s.apply_edit(Stroke(((5, 5),), radius=2, value=1))
    states.append(s.mask.copy())
    s.undo()
    # a kernel restart: a new session object on the same store and drafts folder
    again = session(seg_store)
    assert again.mask is not None
    assert again.item == s.item and np.array_equal(again.mask, states[3])
    status = again.status()
    assert status.can_undo and status.can_redo and status.rejected
    again.redo()
    assert np.array_equal(again.mask, states[4])
    for state in reversed(states[:4]):
        again.undo()
        assert np.array_equal(again.mask, state)
    assert not again.status().can_undo  # the stroke's two chunks undid as one edit
    # the draft written by those undos carries the history on: restart again, redo it all
    third = session(seg_store)
    assert third.mask is not None
    assert np.array_equal(third.mask, states[0]) and third.status().can_redo
    for state in states[1:]:
        third.redo()
        assert np.array_equal(third.mask, state)
    assert not third.status().can_redo
    # a new edit after the restart drops the redo stack as usual, and submitting clears it all
    third.undo()
    third.apply_edit(Stroke(((10, 10),), radius=1, value=1))
    assert not third.status().can_redo
    third.submit_mask()
    assert third.drafts is not None and third.drafts.items() == []


def test_draft_history_is_compact_and_old_drafts_still_load(seg_store: SQLiteStore) -> None:
    from workbench.widgets._drafts import Draft, DraftStore

    s = session(seg_store)
    assert s.item is not None and s.drafts is not None
    for row in range(5, 35, 3):
        s.apply_edit(Stroke(((row, 2), (row, 37)), radius=1, value=1))
    path = s.drafts.folder / f"{s.item.id}.npz"
    with np.load(path) as data:
        sizes = data["history_sizes"]
        assert sizes.size == 10 and data["history_indices"].dtype == np.uint32
        assert data["history_indices"].size == data["history_old"].size == int(sizes.sum())
    # 6 bytes per changed voxel of history, besides the draft's own 9 bytes per voxel
    assert s.mask is not None
    assert path.stat().st_size < 6 * int(sizes.sum()) + 9 * int(s.mask.sum()) + 4096
    # a draft file written before histories were kept restores its mask, with no history
    store = DraftStore(s.drafts.folder.parent, "old")
    old = Draft.from_masks(
        s.item.id,
        "empty",
        np.zeros_like(s.mask),
        s.mask,
        model_version_id=None,
        rejected=False,
        started_at=0.0,
    )
    meta = {
        "item_id": old.item_id,
        "base": "empty",
        "model_version_id": None,
        "rejected": False,
        "started_at": 0.0,
    }
    store.folder.mkdir(parents=True)
    np.savez(
        store.folder / f"{s.item.id}.npz",
        indices=old.indices,
        values=old.values,
        meta=np.frombuffer(json.dumps(meta).encode(), np.uint8),
    )
    loaded = store.load(s.item.id)
    assert loaded is not None and loaded.undo == () and loaded.redo == ()
    assert np.array_equal(loaded.apply_to(np.zeros_like(s.mask)), s.mask)


def test_saved_history_keeps_the_newest_edits_within_the_limit(
    seg_store: SQLiteStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    from workbench.widgets import _drafts

    monkeypatch.setattr(_drafts, "HISTORY_LIMIT", 250)
    s = session(seg_store)
    for row in (5, 15, 25, 35):  # about 100 voxels each
        s.apply_edit(Stroke(((row, 0), (row, 39)), radius=1, value=1))
    assert s.item is not None and s.drafts is not None
    draft = s.drafts.load(s.item.id)
    assert draft is not None and len(draft.undo) == 2
    assert int(draft.undo[-1].indices.min()) // 40 == 34  # the newest stroke (rows 34..36)
    again = session(seg_store)
    again.undo()
    again.undo()
    assert again.mask is not None
    assert not again.status().can_undo and int(again.mask.sum()) == 240  # rows 4..6, 14..16


def test_drafts_live_under_the_project_folder(seg_store: SQLiteStore) -> None:
    s = session(seg_store)
    s.apply_edit(Stroke(((5, 5),), radius=1, value=1))
    assert s.item is not None
    assert (seg_store.root / "drafts" / "ann" / f"{s.item.id}.npz").is_file()


# volumes ------------------------------------------------------------------------------------
def test_volume_planes_edit_and_jump(vol_store: SQLiteStore) -> None:
    item = vol_store.list_items()[0]
    prop = np.zeros((20, 24, 10), np.uint8)
    prop[5:8, 5:8, 7] = 1
    unc = np.zeros((20, 24, 10), np.float32)
    unc[:, :, 3] = 1.0
    ready_model(vol_store, [Prediction(item.id, mask=prop, uncertainty_map=unc)])
    s = session(vol_store)
    assert s.is_volume and s.plane is not None and (s.plane.axis, s.plane.index) == ("axial", 5)
    assert s.plane_image().shape == (24, 20)
    assert s.pixel_aspect() == pytest.approx(1.0)
    assert s.busiest_slice("uncertainty") == 3 and s.busiest_slice("mask") == 7
    s.set_plane(index=7)
    plane_mask = s.plane_mask()
    assert plane_mask is not None and plane_mask.sum() == 9
    assert s.plane_uncertainty() is not None
    s.set_plane("coronal")
    assert s.plane is not None and s.plane.index == 12 and s.pixel_aspect() == pytest.approx(2.5)
    s.set_plane("axial", 2)
    s.apply_edit(Stroke(((0, 0),), radius=0, value=1))  # top-left: i=0, j=23
    assert s.mask is not None
    assert s.mask[0, 23, 2] == 1 and s.mask.sum() == 10
    s.set_plane(index=99)
    assert s.plane.index == 9
    window = s.set_preset("lung")
    assert (window.center, window.width) == (-600.0, 1500.0)
    version = s.submit_mask()
    assert version.source is LabelSource.CORRECTED


def test_mask_actions_refused_on_classification(cls_store: SQLiteStore) -> None:
    s = session(cls_store)
    with pytest.raises(SessionError):
        s.apply_edit(Stroke(((1, 1),), 1, 1))


def test_prefetch_loads_the_next_item_without_reserving_it(cls_store: SQLiteStore) -> None:
    loads: list[int] = []

    def counting_loader(item: Item) -> ScanImage:
        loads.append(item.id)
        return npy_loader(item)

    s = AnnotationSession(cls_store, "ann", image_loader=counting_loader)
    first = s.next()
    assert first is not None
    ahead = s.prefetch()
    assert ahead is not None and ahead.item.id != first.id
    assert [a.item_id for a in cls_store.list_assignments()] == [first.id]
    n_loads = len(loads)
    s.choose_class(0)
    assert s.item is not None and s.item.id == ahead.item.id
    assert len(loads) == n_loads  # shown from what was loaded ahead
    # the queue moved on meanwhile (another annotator took the peeked item): the store wins
    peeked = s.prefetch()
    assert peeked is not None
    taken = cls_store.next_item("bob")
    assert taken is not None and taken.id == peeked.item.id
    s.choose_class(1)
    assert s.item is not None and s.item.id not in (peeked.item.id, ahead.item.id)


def test_read_ahead_reads_the_next_scan_in_a_thread_and_next_uses_it(
    cls_store: SQLiteStore,
) -> None:
    loads: list[tuple[int, str]] = []
    release = threading.Event()

    def slow_loader(item: Item) -> ScanImage:
        if threading.current_thread() is not threading.main_thread():
            assert release.wait(10)  # the read ahead runs while the annotator works
        loads.append((item.id, threading.current_thread().name))
        return npy_loader(item)

    s = AnnotationSession(cls_store, "ann", image_loader=slow_loader)
    first = s.next()
    assert first is not None
    upcoming = s.read_ahead()
    assert upcoming is not None and upcoming != first.id
    assert s.read_ahead() == upcoming  # asking again does not start a second read
    assert [a.item_id for a in cls_store.list_assignments()] == [first.id]  # nothing reserved
    release.set()
    s.choose_class(0)
    assert s.item is not None and s.item.id == upcoming
    reads = [name for item_id, name in loads if item_id == upcoming]
    assert len(reads) == 1 and reads[0].startswith("workbench-read-ahead")
    # the queue moved on meanwhile (another annotator took it): that scan is not shown
    ahead = s.read_ahead()
    taken = cls_store.next_item("bob")
    assert taken is not None and taken.id == ahead
    s.choose_class(1)
    assert s.item is not None and s.item.id != ahead
    assert loads[-1] == (s.item.id, threading.main_thread().name)
    s.close()


def test_a_failed_read_ahead_is_read_again_when_the_item_is_shown(cls_store: SQLiteStore) -> None:
    failures = []

    def flaky_loader(item: Item) -> ScanImage:
        if threading.current_thread() is not threading.main_thread():
            failures.append(item.id)
            raise OSError(f"cannot read {item.source_uri}")
        return npy_loader(item)

    s = AnnotationSession(cls_store, "ann", image_loader=flaky_loader)
    assert s.next() is not None
    upcoming = s.read_ahead()
    s.choose_class(0)  # the read ahead failed: read again here, and that read works
    assert s.item is not None and s.item.id == upcoming and failures == [upcoming]
    s.close()


def test_deferred_drafts_are_written_on_flush(seg_store: SQLiteStore) -> None:
    s = AnnotationSession(seg_store, "ann", image_loader=npy_loader)
    s.autosave_drafts = False
    item = s.next()
    assert item is not None and s.drafts is not None
    s.apply_edit(Stroke(((5.0, 5.0),), 1.0, 1))
    assert s.drafts.load(item.id) is None
    s.flush_draft()
    draft = s.drafts.load(item.id)
    assert draft is not None and draft.indices.size == 5
    s.apply_edit(Stroke(((20.0, 20.0),), 1.0, 1))
    s.next()  # moving on writes what is pending
    draft = s.drafts.load(item.id)
    assert draft is not None and draft.indices.size == 10


@pytest.mark.shared_data
def test_rgb_scan_gets_a_2d_mask_and_its_proposal(shared_data: Path, tmp_path: Path) -> None:
    """An RGBA nuclei PNG (256x256x4): the mask, the proposal and the stored label are 256x256."""
    from workbench.ingest import import_sources
    from workbench.store import ProjectConfig, Task, create_project

    folder = tmp_path / "rgb"
    folder.mkdir()
    for png in sorted((shared_data / "nuclei-bbbc038" / "images").glob("*.png"))[:2]:
        (folder / png.name).write_bytes(png.read_bytes())
    store = create_project(
        tmp_path / "proj", ProjectConfig("nuclei", Task.SEGMENTATION, ("background", "nucleus"))
    )
    try:
        import_sources(store, [folder])
        items = store.list_items()
        assert items[0].shape[-1] in (3, 4)  # the scan keeps its channels
        proposal = np.zeros(items[0].shape[:2], np.uint8)
        proposal[5:9, 5:9] = 1
        ready_model(store, [Prediction(i.id, mask=proposal) for i in items])
        s = AnnotationSession(store, "ann")
        s.next()
        assert s.mask is not None and s.mask.shape == items[0].shape[:2]
        plane_mask = s.plane_mask()
        assert plane_mask is not None and np.array_equal(plane_mask, proposal)
        s.apply_edit(Stroke(((30, 30),), radius=1, value=1))
        version = s.submit_mask()
        stored = saved_mask(store, version)
        assert version.source is LabelSource.CORRECTED and stored.shape == proposal.shape
        assert stored[30, 30] == 1 and stored[5:9, 5:9].all()
    finally:
        store.close()


def test_edits_and_submits_mark_the_project_as_being_annotated(seg_store: SQLiteStore) -> None:
    from workbench.background import seconds_since_annotator_activity

    assert seconds_since_annotator_activity(seg_store.root) is None
    s = session(seg_store)
    s.apply_edit(Stroke(((10, 10),), radius=1, value=1))
    since = seconds_since_annotator_activity(seg_store.root)
    assert since is not None and since < 5.0


def test_a_nifti_ct_opens_in_soft_tissue_with_the_default_loader(tmp_path: Path) -> None:
    import nibabel as nib

    from workbench.store import NewItem, ProjectConfig, Task, create_project

    # NIfTI says nothing of the modality; the project knows it (e.g. from MSD's dataset.json)
    vol = np.arange(20 * 24 * 10, dtype=np.int16).reshape(20, 24, 10) - 1000
    path = tmp_path / "ct.nii.gz"
    nib.save(nib.Nifti1Image(vol, np.diag([1.0, 1.0, 2.5, 1.0])), path)
    store = create_project(
        tmp_path / "proj", ProjectConfig("ct", Task.SEGMENTATION, ("background", "organ"))
    )
    store.add_items(
        [
            NewItem(
                key="ct",
                source_uri=str(path),
                content_hash="h",
                modality="CT",
                shape=vol.shape,
                spacing=(1.0, 1.0, 2.5),
            )
        ]
    )
    try:
        s = AnnotationSession(store, "ann")
        assert s.next() is not None and s.window is not None
        assert (s.window.center, s.window.width) == (50.0, 350.0)  # the item is CT, in HU
    finally:
        store.close()
