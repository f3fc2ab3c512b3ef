"""Typed errors shared by every layer.

Each error carries a stable ``code`` so the CLI, a widget or an HTTP endpoint can map it to a
clear message, and, where it applies, the ``path`` of the file or the ``field`` that was wrong.
"""

from __future__ import annotations

from pathlib import Path


class WorkbenchError(Exception):
    """Base class of every error the workbench raises on purpose."""

    code = "workbench_error"

    def __init__(self, message: str, *, path: str | Path | None = None, field: str | None = None):
        self.message = message
        self.path = str(path) if path is not None else None
        self.field = field
        self.context: str | None = None
        super().__init__(self._render())

    def add_context(self, context: str) -> None:
        """Say where the error happened, before the rest of the message (e.g. which curve of a
        simulation, so that it can be run again alone)."""
        self.context = context if self.context is None else f"{context}: {self.context}"
        self.args = (self._render(),)

    def _render(self) -> str:
        where = [] if self.context is None else [self.context]
        if self.path is not None:
            where.append(self.path)
        if self.field is not None:
            where.append(f"field '{self.field}'")
        return f"{': '.join(where)}: {self.message}" if where else self.message


class ScanReadError(WorkbenchError):
    """A file could not be read as a scan: unreadable, truncated, corrupt or unsupported."""

    code = "scan_read_error"


class UnsupportedFormatError(ScanReadError):
    """The file's format (or a DICOM transfer syntax) is not supported here."""

    code = "unsupported_format"


class MissingCodecError(ScanReadError):
    """A DICOM transfer syntax needs a decoder plugin that is not installed."""

    code = "missing_codec"


class PathEscapeError(WorkbenchError):
    """A path in a manifest or dataset folder points outside its root."""

    code = "path_escape"


class ManifestError(WorkbenchError):
    """A manifest, dataset.json or CSV is malformed."""

    code = "manifest_error"


class StoreError(WorkbenchError):
    """The project store refused an operation (unknown item, bad label, wrong task...)."""

    code = "store_error"


class ProjectNotFoundError(StoreError):
    """The folder holds no workbench project."""

    code = "project_not_found"
