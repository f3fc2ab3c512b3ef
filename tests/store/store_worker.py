"""A child process for the crash and concurrency tests (run as a script, never imported by them).

python store_worker.py crash PROJECT ACK_FILE FIRST_SEQ
    submit mask labels forever; after each submit_label returns, append
    "label_id item_id seq" to ACK_FILE and fsync it. The parent SIGKILLs us.
python store_worker.py label PROJECT ANNOTATOR GO_FILE
    once GO_FILE exists, next_item + submit_label until the queue is empty; print the
    served (item_id, label_id) pairs as JSON.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import numpy as np

from workbench.store import LabelSource, LabelSubmission, SQLiteStore, open_project


def crash_mask(seq: int, shape: tuple[int, ...]) -> np.ndarray:
    """The mask submitted as number ``seq``: the parent recomputes it to check content."""
    return (np.random.default_rng(seq).random(shape) > 0.8).astype(np.uint8)


def _crash(store: SQLiteStore, ack_file: Path, seq: int) -> None:
    items = store.list_items()
    with open(ack_file, "a", encoding="ascii") as ack:
        print("ready", flush=True)
        while True:
            served = store.next_item("crasher", lease_seconds=60.0)
            item = served if served is not None else items[seq % len(items)]
            label = store.submit_label(
                LabelSubmission(
                    item.id,
                    "crasher",
                    LabelSource.HUMAN,
                    mask=crash_mask(seq, item.shape),
                    comment=str(seq),
                )
            )
            ack.write(f"{label.id} {item.id} {seq}\n")
            ack.flush()
            os.fsync(ack.fileno())
            seq += 1


def _label(store: SQLiteStore, annotator: str, go_file: Path) -> None:
    print("ready", flush=True)
    while not go_file.exists():
        time.sleep(0.002)
    done: list[tuple[int, int]] = []
    while (item := store.next_item(annotator)) is not None:
        label = store.submit_label(
            LabelSubmission(
                item.id,
                annotator,
                LabelSource.HUMAN,
                class_index=item.id % len(store.config.classes),
            )
        )
        done.append((item.id, label.id))
        time.sleep(0.002)  # a (very fast) annotator's pause: others get the lock in between
    print(json.dumps(done), flush=True)


def main(argv: list[str]) -> None:
    mode, project = argv[0], Path(argv[1])
    with open_project(project) as store:
        if mode == "crash":
            _crash(store, Path(argv[2]), int(argv[3]))
        elif mode == "label":
            _label(store, argv[2], Path(argv[3]))
        else:
            raise SystemExit(f"unknown mode {mode!r}")


if __name__ == "__main__":
    main(sys.argv[1:])
