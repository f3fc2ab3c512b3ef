"""A project's scans and masks as the network sees them (windowed uint8 ``[C, *spatial]``; masks
uint8), written once under ``<project>/cache/`` as ``.npy`` files and read back memory-mapped.

For the labelled scans of projects of large scans (those trained on patches): patch training
then holds only the pages its patches touch instead of every labelled scan, and a scan is
decoded and windowed once rather than in every round. The pool is not cached (a second copy of
every scan on disk to save one decode per round). The files never leave the project folder;
delete ``cache/`` at any time to reclaim the disk (about 1 byte per voxel): it is rebuilt on
demand.
"""

from __future__ import annotations

import hashlib
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np

from workbench.io._atomic import atomic_path
from workbench.store import Item

CACHE_DIR = "cache"
FORMAT = "v1"  # bump when the windowing or layout changes: old files are then ignored


class ScanCache:
    """Windowed scans by item and masks by mask hash under ``root/cache``."""

    def __init__(self, root: Path) -> None:
        self.folder = Path(root) / CACHE_DIR

    def scan(self, item: Item, make: Callable[[Item], np.ndarray]) -> np.ndarray:
        """Item's windowed scan, read-only and memory-mapped; ``make(item)`` builds it (uint8
        ``[C, *spatial]``) the first time. Keyed by content hash and modality, so a changed
        file or modality is a new entry."""
        key = hashlib.sha256(f"{FORMAT}|{item.content_hash}|{item.modality}".encode()).hexdigest()
        return self._mapped(self.folder / "scans" / f"{key[:32]}.npy", lambda: make(item))

    def mask(self, mask_hash: str, dtype: np.dtype, make: Callable[[], np.ndarray]) -> np.ndarray:
        """The mask the store keeps under ``mask_hash`` (content-addressed, so an entry never
        goes stale) as ``dtype``, mapped; ``make()`` reads it the first time."""
        key = hashlib.sha256(f"{FORMAT}|{mask_hash}|{np.dtype(dtype).str}".encode()).hexdigest()
        return self._mapped(self.folder / "masks" / f"{key[:32]}.npy", make)

    @staticmethod
    def _mapped(path: Path, make: Callable[[], np.ndarray]) -> np.ndarray:
        if path.is_file():
            try:
                mapped: np.ndarray = np.load(path, mmap_mode="r")
                return mapped
            except (ValueError, OSError, EOFError):  # torn or foreign file: rebuild it
                path.unlink(missing_ok=True)
        array = np.ascontiguousarray(make())
        try:
            with atomic_path(path) as tmp:  # "<name>.tmp.npy": np.save adds no second suffix
                np.save(tmp, array, allow_pickle=False)
        except OSError as error:  # read-only project, full disk: train from memory instead
            warnings.warn(f"scan cache not written ({path.parent}): {error}", stacklevel=3)
            return array
        out: np.ndarray = np.load(path, mmap_mode="r")
        return out
