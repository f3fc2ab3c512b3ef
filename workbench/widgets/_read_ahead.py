"""Reading the next scan in a background thread while the annotator works on this one."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor

from workbench.io._image import ScanImage
from workbench.store._records import Item


class ScanReadAhead:
    """One scan read ahead at a time, by one worker thread that touches only the file (never
    the store, whose SQLite connection belongs to the caller's thread)."""

    def __init__(self, load: Callable[[Item], ScanImage]) -> None:
        self._load = load
        self._pool: ThreadPoolExecutor | None = None
        self._pending: tuple[int, Future[ScanImage]] | None = None

    @property
    def pending_id(self) -> int | None:
        """The item whose scan is being read (or was read and not yet taken)."""
        return None if self._pending is None else self._pending[0]

    def start(self, item: Item) -> None:
        """Start reading ``item``'s scan, dropping any other scan read ahead."""
        if self.pending_id == item.id:
            return
        self.drop()
        if self._pool is None:
            self._pool = ThreadPoolExecutor(1, thread_name_prefix="workbench-read-ahead")
        self._pending = (item.id, self._pool.submit(self._load, item))

    def take(self, item_id: int) -> ScanImage | None:
        """``item_id``'s scan if it was read ahead (waiting for the read to finish), else None;
        a failed read gives None, so the caller reads it again and reports the error itself."""
        if self._pending is None or self._pending[0] != item_id:
            return None
        future = self._pending[1]
        self._pending = None
        try:
            return future.result()
        except Exception:  # noqa: BLE001 - the caller's own read raises the error with context
            return None

    def drop(self) -> None:
        """Forget the scan read ahead (a read in progress finishes and is discarded)."""
        if self._pending is not None:
            self._pending[1].cancel()
            self._pending = None

    def close(self) -> None:
        """Drop the pending read and end the worker thread."""
        self.drop()
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None
