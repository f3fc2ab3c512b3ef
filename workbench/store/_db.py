"""SQLite connection settings and write transactions that retry while another process writes."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from workbench.errors import StoreError

BUSY_TIMEOUT_MS = 5_000  # SQLite's own wait inside one attempt
WRITE_DEADLINE_S = 60.0  # give up (StoreError) after retrying this long
_BUSY_CODES = {sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED}


def is_busy(error: sqlite3.OperationalError) -> bool:
    """True when ``error`` means another connection holds the lock (worth retrying)."""
    return getattr(error, "sqlite_errorcode", None) in _BUSY_CODES or "locked" in str(error)


def connect(path: Path) -> sqlite3.Connection:
    """Open ``path`` in WAL mode with full fsync on commit, foreign keys on, and a busy timeout.

    The connection is in autocommit mode; :class:`Database` issues ``BEGIN``/``COMMIT`` itself.
    """
    conn = sqlite3.connect(
        path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None, check_same_thread=False
    )
    conn.row_factory = sqlite3.Row
    conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    _retry(lambda: conn.execute("PRAGMA journal_mode = WAL"), WRITE_DEADLINE_S)
    conn.execute("PRAGMA synchronous = FULL")  # a commit is on disk when it returns
    conn.execute("PRAGMA foreign_keys = ON")
    return conn


def _retry(step: Callable[[], object], deadline_s: float) -> None:
    """Run ``step``, retrying with backoff while the database is busy, up to ``deadline_s``."""
    end = time.monotonic() + deadline_s
    delay = 0.005
    while True:
        try:
            step()
            return
        except sqlite3.OperationalError as error:
            if not is_busy(error) or time.monotonic() > end:
                raise
            time.sleep(delay)
            delay = min(delay * 2, 0.2)


class Database:
    """One connection, shared by the threads of one process under a lock.

    Writes run in ``BEGIN IMMEDIATE`` transactions: the write lock is taken up front, so a
    read-then-write inside one transaction (serving the next item) is atomic across processes.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.conn = connect(path)
        self._lock = threading.RLock()

    @contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        """A write transaction: commits (durably) on success, rolls back on any exception.

        Database errors surface as StoreError (no sqlite types leave the store).
        """
        with self._lock:
            try:
                _retry(lambda: self.conn.execute("BEGIN IMMEDIATE"), WRITE_DEADLINE_S)
            except sqlite3.Error as error:
                raise StoreError(
                    f"could not lock the project database: {error}", path=self.path
                ) from error
            try:
                yield self.conn
                self.conn.execute("COMMIT")
            except BaseException as error:
                self._rollback()
                if isinstance(error, sqlite3.Error):
                    raise StoreError(f"database error: {error}", path=self.path) from error
                raise

    @contextmanager
    def read(self) -> Iterator[sqlite3.Connection]:
        """A read transaction: every query inside sees one consistent snapshot."""
        with self._lock:
            try:
                self.conn.execute("BEGIN")
                yield self.conn
                self.conn.execute("COMMIT")
            except BaseException as error:
                self._rollback()
                if isinstance(error, sqlite3.Error):
                    raise StoreError(f"database error: {error}", path=self.path) from error
                raise

    def _rollback(self) -> None:
        """Roll back if a transaction is still open (SQLite may have ended it already)."""
        if self.conn.in_transaction:
            self.conn.execute("ROLLBACK")

    def close(self) -> None:
        with self._lock:
            self.conn.close()
