"""Serving: order, leases, expiry, release; two open stores stand for two processes."""

from __future__ import annotations

import time

from store_helpers import new_items

from workbench.store import (
    LabelSource,
    LabelSubmission,
    ModelStatus,
    RoundStatus,
    SQLiteStore,
)


def _ready_model(store: SQLiteStore, scores: dict[int, float], strategy: str = "entropy") -> int:
    model = store.add_model_version("m")
    store.update_model_version(model.id, status=ModelStatus.READY)
    store.add_scores(model.id, strategy, scores)
    return model.id


def _drain(store: SQLiteStore, annotator: str = "ann") -> list[int]:
    served = []
    while (item := store.next_item(annotator)) is not None:
        served.append(item.id)
        store.submit_label(LabelSubmission(item.id, annotator, LabelSource.HUMAN, class_index=0))
    return served


def test_order_is_item_id_without_rounds_or_scores(cls_store: SQLiteStore) -> None:
    ids = cls_store.add_items(new_items(4))
    assert _drain(cls_store) == ids


def test_order_round_then_scores_then_id(cls_store: SQLiteStore) -> None:
    i = cls_store.add_items(new_items(6))
    model_id = _ready_model(cls_store, {i[1]: 0.2, i[2]: 0.9, i[4]: 0.5})
    old = cls_store.start_round("entropy", {}, model_id)
    cls_store.finish_round(old.id, status=RoundStatus.DONE, selected=[i[0]])
    latest = cls_store.start_round("entropy", {}, model_id)
    cls_store.finish_round(latest.id, status=RoundStatus.DONE, selected=[i[5], i[3]])
    running = cls_store.start_round("entropy", {}, model_id)  # unfinished: ignored
    assert running.status is RoundStatus.RUNNING
    assert _drain(cls_store) == [i[5], i[3], i[2], i[4], i[1], i[0]]


def test_scores_of_the_latest_ready_model_and_its_newest_strategy(cls_store: SQLiteStore) -> None:
    i = cls_store.add_items(new_items(3))
    _ready_model(cls_store, {i[0]: 0.9, i[1]: 0.1, i[2]: 0.5})
    newer = _ready_model(cls_store, {i[0]: 0.1, i[1]: 0.2, i[2]: 0.3})
    cls_store.add_model_version("still training")  # not ready: ignored
    time.sleep(0.01)
    cls_store.add_scores(newer, "margin", {i[0]: 0.3, i[1]: 0.9, i[2]: 0.2})
    assert _drain(cls_store) == [i[1], i[0], i[2]]


def test_failed_round_is_not_used(cls_store: SQLiteStore) -> None:
    i = cls_store.add_items(new_items(3))
    run = cls_store.start_round("entropy", {}, None)
    cls_store.finish_round(run.id, status=RoundStatus.FAILED, selected=[i[2]])
    assert _drain(cls_store) == i


def test_labelled_items_are_skipped(cls_store: SQLiteStore) -> None:
    a, b = cls_store.add_items(new_items(2))
    cls_store.submit_label(LabelSubmission(a, "x", LabelSource.IMPORTED, class_index=0))
    assert _drain(cls_store) == [b]


def test_split_filter(cls_store: SQLiteStore) -> None:
    cls_store.add_items(new_items(2))
    (v,) = cls_store.add_items(new_items(1, split="val", prefix="v"))
    item = cls_store.next_item("ann", split="val")
    assert item is not None and item.id == v


def test_same_annotator_gets_the_item_they_hold(cls_store: SQLiteStore) -> None:
    a, b = cls_store.add_items(new_items(2))
    first = cls_store.next_item("ann", lease_seconds=60)
    assert first is not None and first.id == a
    held = cls_store.list_assignments()[0]
    time.sleep(0.01)
    again = cls_store.next_item("ann", lease_seconds=60)
    assert again == first
    (renewed,) = cls_store.list_assignments()
    assert renewed.annotator == "ann" and renewed.expires_at > held.expires_at


def test_two_processes_never_share_a_live_lease(cls_store: SQLiteStore) -> None:
    a, b = cls_store.add_items(new_items(2))
    with SQLiteStore(cls_store.path) as other:  # a second connection, as another process has
        first = cls_store.next_item("ann")
        second = other.next_item("bob")
        assert first is not None and second is not None
        assert (first.id, second.id) == (a, b)
        assert other.next_item("cat") is None
        assignments = {(x.item_id, x.annotator) for x in other.list_assignments()}
        assert assignments == {(a, "ann"), (b, "bob")}


def test_expired_lease_is_served_again(cls_store: SQLiteStore) -> None:
    (a,) = cls_store.add_items(new_items(1))
    first = cls_store.next_item("ann", lease_seconds=0.05)
    assert first is not None and cls_store.next_item("bob") is None
    time.sleep(0.1)
    assert cls_store.list_assignments() == []
    taken = cls_store.next_item("bob")
    assert taken is not None and taken.id == a
    assert [x.annotator for x in cls_store.list_assignments()] == ["bob"]
    # ann's late submit is still recorded (a label is never thrown away); bob's lease stays
    cls_store.submit_label(LabelSubmission(a, "ann", LabelSource.HUMAN, class_index=1))
    assert [x.annotator for x in cls_store.list_assignments()] == ["bob"]
    assert cls_store.next_item("bob") is None  # the item is labelled now
    assert cls_store.list_assignments() == []


def test_submit_ends_the_assignment(cls_store: SQLiteStore) -> None:
    a, b = cls_store.add_items(new_items(2))
    item = cls_store.next_item("ann")
    assert item is not None
    cls_store.submit_label(LabelSubmission(item.id, "ann", LabelSource.HUMAN, class_index=2))
    assert cls_store.list_assignments() == []
    following = cls_store.next_item("ann")
    assert following is not None and following.id == b


def test_release(cls_store: SQLiteStore) -> None:
    a, b = cls_store.add_items(new_items(2))
    cls_store.next_item("ann")
    cls_store.release(a, "bob")  # not bob's: nothing happens
    assert len(cls_store.list_assignments()) == 1
    cls_store.release(a, "ann")
    assert cls_store.list_assignments() == []
    served = cls_store.next_item("bob")
    assert served is not None and served.id == a


def test_empty_queue(cls_store: SQLiteStore) -> None:
    assert cls_store.next_item("ann") is None


def test_excluded_items_are_passed_over_and_served_again_later(tmp_path) -> None:
    from workbench.store import NewItem, ProjectConfig, Task, create_project

    store = create_project(tmp_path / "p", ProjectConfig("p", Task.CLASSIFICATION, ("a", "b")))
    ids = store.add_items(
        [
            NewItem(
                key=f"k{n}",
                source_uri=f"/x/{n}.png",
                content_hash=str(n),
                modality="OT",
                shape=(4, 4),
                spacing=(1.0, 1.0),
            )
            for n in range(3)
        ]
    )
    first = store.next_item("ann")
    assert first is not None and first.id == ids[0]
    store.release(first.id, "ann")
    second = store.next_item("ann", exclude=[ids[0]])
    assert second is not None and second.id == ids[1]
    # held items that are excluded are dropped too; without exclude the first one comes back
    third = store.next_item("ann", exclude=[ids[0], ids[1]])
    assert third is not None and third.id == ids[2]
    store.release(third.id, "ann")
    again = store.next_item("ann")
    assert again is not None and again.id == ids[0]


def test_peek_next_reserves_nothing(tmp_path) -> None:
    from workbench.store import NewItem, ProjectConfig, Task, create_project

    store = create_project(tmp_path / "p", ProjectConfig("p", Task.CLASSIFICATION, ("a", "b")))
    ids = store.add_items(
        [
            NewItem(
                key=f"k{n}",
                source_uri=f"/x/{n}.png",
                content_hash=str(n),
                modality="OT",
                shape=(4, 4),
                spacing=(1.0, 1.0),
            )
            for n in range(3)
        ]
    )
    held = store.next_item("ann")
    assert held is not None and held.id == ids[0]
    peeked = store.peek_next("ann", exclude=[held.id])
    assert peeked is not None and peeked.id == ids[1]
    assert [a.item_id for a in store.list_assignments()] == [ids[0]]  # still only the held one
    other = store.next_item("other")  # the peeked item is free for anyone
    assert other is not None and other.id == ids[1]
