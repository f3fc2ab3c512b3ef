"""Path safety for datasets: every referenced path must stay inside the dataset root."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

from ..errors import PathEscapeError, ScanReadError


def resolve_inside(root: Path, value: str, *, source: Path, field: str) -> Path:
    """Resolve ``value`` (relative to ``root``, or absolute) and check it stays inside ``root``.

    Raises ``PathEscapeError`` (naming ``source`` and ``field``) for ``..`` escapes, absolute
    paths outside the root and symlinks that resolve outside it; ``ScanReadError`` when the
    target does not exist. Returns the absolute, normalised (not symlink-resolved) path.
    """
    root_abs = Path(os.path.normpath(root.absolute()))
    root_real = root.resolve()
    raw = Path(value)
    lexical = Path(os.path.normpath(raw if raw.is_absolute() else root_abs / raw))
    if not (lexical.is_relative_to(root_abs) or lexical.is_relative_to(root_real)):
        raise PathEscapeError(
            f"path '{value}' points outside the dataset root {root_abs}", path=source, field=field
        )
    real = lexical.resolve()
    if not real.is_relative_to(root_real):
        raise PathEscapeError(
            f"path '{value}' is a symlink resolving outside the dataset root ({real})",
            path=source,
            field=field,
        )
    if not real.exists():
        raise ScanReadError(f"file '{value}' not found", path=source, field=field)
    return lexical


def walk_files(root: Path, escapes: list[tuple[str, str]] | None = None) -> Iterator[Path]:
    """Files under ``root`` in sorted order, hidden names skipped, symlinked folders not followed.

    Symlinked files that resolve outside ``root`` are left out and, when ``escapes`` is given,
    recorded there as ``(path, reason)``.
    """
    root_real = root.resolve()
    for folder, dirs, files in os.walk(root, followlinks=False):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            if name.startswith("."):
                continue
            path = Path(folder) / name
            if path.is_symlink() and not path.resolve().is_relative_to(root_real):
                if escapes is not None:
                    escapes.append(
                        (str(path), f"[{PathEscapeError.code}] symlink resolves outside the root")
                    )
                continue
            if path.is_file():
                yield path


def relative_key(root: Path, path: Path) -> str:
    """``path`` relative to ``root`` in POSIX form (the stable key of a file in a dataset)."""
    return Path(os.path.relpath(path, root)).as_posix()
