"""Helpers shared by the store tests (imported by name: tests/store is on sys.path)."""

from __future__ import annotations

from workbench.store import NewItem

CLASSES = ("normal", "benign", "malignant")


def new_items(
    n: int, *, shape: tuple[int, ...] = (8, 8), split: str = "train", prefix: str = "case"
) -> list[NewItem]:
    """``n`` items with keys ``{prefix}-0000``... and the given shape."""
    return [
        NewItem(
            key=f"{prefix}-{i:04d}",
            source_uri=f"file:///data/{prefix}-{i:04d}.png",
            content_hash=f"hash-{prefix}-{i}",
            modality="US",
            shape=shape,
            spacing=(1.0,) * len(shape),
            split=split,
            metadata={"site": "a"},
        )
        for i in range(n)
    ]
