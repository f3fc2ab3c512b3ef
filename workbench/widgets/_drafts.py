"""In-progress masks kept on disk so a kernel restart or a page reload loses no work.

A draft is stored as its difference from the mask it started from (the model's proposal, an
earlier label version, or an empty mask), so a draft of a large volume stays small. It also
holds the item's undo / redo history: the edit diffs the session keeps (flat indices, old and new
values), concatenated into three arrays with one length and one stroke group per diff, so undo
still works after a reload or a kernel restart. Each write goes to a temporary file that
replaces the old one atomically.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from workbench.widgets._edits import MaskDiff

# at most this many voxel changes of undo / redo history go into a draft (6 bytes each, about
# 3 MB, written per stroke chunk); older edits beyond it are left out of the saved history (the
# mask itself is always saved whole)
HISTORY_LIMIT = 500_000


@dataclass(frozen=True)
class Draft:
    """An item's unsubmitted mask as a difference from its base mask."""

    item_id: int
    base: str  # "proposal", "empty" or "label:<label version id>"
    model_version_id: int | None
    rejected: bool  # the proposal was rejected: what is drawn now is the annotator's own
    started_at: float
    indices: np.ndarray  # [n] int64 flat mask indices that differ from the base
    values: np.ndarray  # [n] uint8 their values
    undo: tuple[MaskDiff, ...] = ()  # the edit history's undo stack, oldest first
    redo: tuple[MaskDiff, ...] = ()  # its redo stack (the last one is redone next)

    @staticmethod
    def from_masks(
        item_id: int,
        base: str,
        base_mask: np.ndarray,
        mask: np.ndarray,
        *,
        model_version_id: int | None,
        rejected: bool,
        started_at: float,
        undo: Sequence[MaskDiff] = (),
        redo: Sequence[MaskDiff] = (),
    ) -> Draft:
        idx = np.flatnonzero(mask.reshape(-1) != base_mask.reshape(-1))
        return Draft(
            item_id,
            base,
            model_version_id,
            rejected,
            started_at,
            idx.astype(np.int64),
            mask.reshape(-1)[idx].astype(np.uint8),
            tuple(undo),
            tuple(redo),
        )

    @staticmethod
    def from_touched(
        item_id: int,
        base: str,
        base_mask: np.ndarray,
        mask: np.ndarray,
        touched: np.ndarray,
        *,
        model_version_id: int | None,
        rejected: bool,
        started_at: float,
        undo: Sequence[MaskDiff] = (),
        redo: Sequence[MaskDiff] = (),
    ) -> Draft:
        """Like ``from_masks`` but only looks at ``touched`` (flat indices that may differ):
        cheap for a few strokes on a large volume."""
        values = mask.reshape(-1)[touched]
        keep = values != base_mask.reshape(-1)[touched]
        return Draft(
            item_id,
            base,
            model_version_id,
            rejected,
            started_at,
            np.asarray(touched, np.int64)[keep],
            values[keep].astype(np.uint8),
            tuple(undo),
            tuple(redo),
        )

    def apply_to(self, base_mask: np.ndarray) -> np.ndarray:
        """The drafted mask: ``base_mask`` with the draft's voxels written in."""
        out = np.array(base_mask, dtype=np.uint8, order="C", copy=True)
        out.reshape(-1)[self.indices] = self.values
        return out


class DraftStore:
    """Drafts of one annotator under ``folder/<annotator>/<item id>.npz``.

    Writes are atomic (temporary file + rename), so a killed kernel leaves the old or the new
    draft, never half of one. ``fsync`` (off by default: a draft is written per stroke chunk)
    also makes them survive a power cut.
    """

    def __init__(self, folder: str | Path, annotator: str, *, fsync: bool = False):
        self.fsync = fsync
        safe = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in annotator) or "_"
        self.folder = Path(folder) / safe

    def _path(self, item_id: int) -> Path:
        return self.folder / f"{int(item_id)}.npz"

    def save(self, draft: Draft) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        undo, redo = _within_limit(draft.undo, draft.redo, HISTORY_LIMIT)
        arrays: dict[str, Any] = _pack([*undo, *redo])
        meta = {
            "item_id": draft.item_id,
            "base": draft.base,
            "model_version_id": draft.model_version_id,
            "rejected": draft.rejected,
            "started_at": draft.started_at,
            "history_undo": len(undo),
            "history_groups": [d.group for d in (*undo, *redo)],
        }
        fd, tmp = tempfile.mkstemp(dir=self.folder, prefix=".draft-", suffix=".npz")
        try:
            with os.fdopen(fd, "wb") as fh:
                np.savez(
                    fh,
                    indices=draft.indices,
                    values=draft.values,
                    meta=np.frombuffer(json.dumps(meta).encode(), np.uint8),
                    **arrays,
                )
                fh.flush()
                if self.fsync:
                    os.fsync(fh.fileno())
            os.replace(tmp, self._path(draft.item_id))
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def load(self, item_id: int) -> Draft | None:
        path = self._path(item_id)
        if not path.is_file():
            return None
        with np.load(path) as data:
            meta = json.loads(bytes(data["meta"]).decode())
            n_undo = int(meta.pop("history_undo", 0))
            diffs = _unpack(data, meta.pop("history_groups", []))
            return Draft(
                indices=data["indices"].astype(np.int64),
                values=data["values"].astype(np.uint8),
                undo=diffs[:n_undo],
                redo=diffs[n_undo:],
                **meta,
            )

    def delete(self, item_id: int) -> None:
        self._path(item_id).unlink(missing_ok=True)

    def items(self) -> list[int]:
        if not self.folder.is_dir():
            return []
        return sorted(int(p.stem) for p in self.folder.glob("*.npz") if p.stem.isdigit())


def _within_limit(
    undo: Sequence[MaskDiff], redo: Sequence[MaskDiff], limit: int
) -> tuple[tuple[MaskDiff, ...], tuple[MaskDiff, ...]]:
    """The newest undo entries, then the next redo entries, holding at most ``limit`` voxel
    changes together."""
    budget = limit
    kept_undo: list[MaskDiff] = []
    for diff in reversed(undo):
        if len(diff) > budget:
            break
        budget -= len(diff)
        kept_undo.append(diff)
    kept_redo: list[MaskDiff] = []
    for diff in reversed(redo):
        if len(diff) > budget:
            break
        budget -= len(diff)
        kept_redo.append(diff)
    return tuple(reversed(kept_undo)), tuple(reversed(kept_redo))


def _pack(diffs: Sequence[MaskDiff]) -> dict[str, np.ndarray]:
    """Diffs as four arrays: their lengths and their concatenated indices, old and new values
    (indices as uint32 when they fit, as they do for any mask under 4 G voxels)."""
    if not diffs:
        return {}
    indices = np.concatenate([d.indices for d in diffs])
    small = indices.size == 0 or int(indices.max()) < 2**32
    return {
        "history_sizes": np.array([len(d) for d in diffs], np.int64),
        "history_indices": indices.astype(np.uint32 if small else np.int64),
        "history_old": np.concatenate([d.old for d in diffs]).astype(np.uint8),
        "history_new": np.concatenate([d.new for d in diffs]).astype(np.uint8),
    }


def _unpack(data: np.lib.npyio.NpzFile, groups: Sequence[str]) -> tuple[MaskDiff, ...]:
    if "history_sizes" not in data.files:
        return ()
    sizes = data["history_sizes"]
    bounds = np.concatenate([[0], np.cumsum(sizes)])
    indices = data["history_indices"].astype(np.int64)
    old, new = data["history_old"], data["history_new"]
    return tuple(
        MaskDiff(indices[a:b], old[a:b], new[a:b], str(group))
        for a, b, group in zip(bounds[:-1], bounds[1:], groups, strict=True)
    )
