"""In-progress masks kept on disk so a kernel restart or a page reload loses no work.

A draft is stored as its difference from the mask it started from (the model's proposal, an
earlier label version, or an empty mask), so a draft of a large volume stays small. Each write
goes to a temporary file that replaces the old one atomically.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np


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

    @staticmethod
    def from_masks(item_id: int, base: str, base_mask: np.ndarray, mask: np.ndarray, *,
                   model_version_id: int | None, rejected: bool, started_at: float) -> Draft:
        idx = np.flatnonzero(mask.reshape(-1) != base_mask.reshape(-1))
        return Draft(item_id, base, model_version_id, rejected, started_at,
                     idx.astype(np.int64), mask.reshape(-1)[idx].astype(np.uint8))

    @staticmethod
    def from_touched(item_id: int, base: str, base_mask: np.ndarray, mask: np.ndarray,
                     touched: np.ndarray, *, model_version_id: int | None, rejected: bool,
                     started_at: float) -> Draft:
        """Like ``from_masks`` but only looks at ``touched`` (flat indices that may differ):
        cheap for a few strokes on a large volume."""
        values = mask.reshape(-1)[touched]
        keep = values != base_mask.reshape(-1)[touched]
        return Draft(item_id, base, model_version_id, rejected, started_at,
                     np.asarray(touched, np.int64)[keep], values[keep].astype(np.uint8))

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
        meta = {k: v for k, v in asdict(draft).items() if k not in ("indices", "values")}
        fd, tmp = tempfile.mkstemp(dir=self.folder, prefix=".draft-", suffix=".npz")
        try:
            with os.fdopen(fd, "wb") as fh:
                np.savez(fh, indices=draft.indices, values=draft.values,
                         meta=np.frombuffer(json.dumps(meta).encode(), np.uint8))
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
            return Draft(indices=data["indices"].astype(np.int64),
                         values=data["values"].astype(np.uint8), **meta)

    def delete(self, item_id: int) -> None:
        self._path(item_id).unlink(missing_ok=True)

    def items(self) -> list[int]:
        if not self.folder.is_dir():
            return []
        return sorted(int(p.stem) for p in self.folder.glob("*.npz") if p.stem.isdigit())
