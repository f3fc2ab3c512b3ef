"""Where the ``workbench`` command writes: one rich console on stderr, and its progress bar."""

from __future__ import annotations

from collections.abc import Callable

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

console = Console(stderr=True)


class ProgressBar:
    """A rich progress bar as a ``progress(done, total)`` callback, in a context manager
    (hidden when stderr is not a terminal)."""

    def __init__(self, what: str) -> None:
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

        return advance

    def __exit__(self, *exc: object) -> None:
        self._bar.stop()
