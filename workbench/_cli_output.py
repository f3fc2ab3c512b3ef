"""Where the ``workbench`` command writes: one rich console on stderr, and its progress bar."""

from __future__ import annotations

import time
from collections.abc import Callable

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

console = Console(stderr=True)


class ProgressBar:
    """A rich progress bar as a ``progress(done, total)`` callback, in a context manager.
    When stderr is not a terminal (a notebook's ``!workbench ...``, a log file) it prints a
    plain ``what: done/total`` line instead, at most every ``plain_every_s`` seconds and at
    the end (the last state, also when it stops short of the total)."""

    def __init__(self, what: str, *, plain_every_s: float = 30.0) -> None:
        self._what, self._plain_every_s = what, plain_every_s
        self._last_line = time.monotonic()
        self._unprinted: tuple[int, int | None] | None = None
        self._bar = Progress(
            TextColumn(what),
            BarColumn(),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
            console=console,
            transient=True,
            disable=not console.is_terminal,
        )
        self._task = self._bar.add_task(what, total=None)

    def __enter__(self) -> Callable[[int, int | None], None]:
        self._bar.start()

        def advance(done: int, total: int | None) -> None:
            self._bar.update(self._task, completed=done, total=total)
            if not console.is_terminal:
                self._plain_line(done, total)

        return advance

    def __exit__(self, *exc: object) -> None:
        self._bar.stop()
        if self._unprinted is not None:
            self._print(*self._unprinted)

    def _plain_line(self, done: int, total: int | None) -> None:
        if done == total or time.monotonic() - self._last_line >= self._plain_every_s:
            self._print(done, total)
        else:
            self._unprinted = (done, total)

    def _print(self, done: int, total: int | None) -> None:
        self._last_line, self._unprinted = time.monotonic(), None
        console.print(f"{self._what}: {done}/{'?' if total is None else total}", highlight=False)
