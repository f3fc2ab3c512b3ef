"""The oracle: holds the pool's hidden labels and reveals only what is selected."""

from __future__ import annotations

import numpy as np


class OracleError(ValueError):
    """A reveal asked for a position outside the pool or one already revealed."""


class Oracle:
    """Hidden labels ``[N, ...]`` of a pool; `reveal` returns those of the picked positions and
    records them. Nothing else of the hidden array is reachable through this object."""

    def __init__(self, labels: np.ndarray) -> None:
        self.__labels = labels
        self._revealed = np.zeros(len(labels), bool)
        self._order: list[int] = []

    def __len__(self) -> int:
        return int(self._revealed.shape[0])

    def reveal(self, positions: np.ndarray | list[int]) -> np.ndarray:
        """Labels of ``positions`` (each unrevealed, in range); marks them revealed."""
        idx = np.asarray(positions, np.int64).reshape(-1)
        if idx.size and (idx.min() < 0 or idx.max() >= len(self)):
            raise OracleError(f"positions out of range 0..{len(self) - 1}")
        if len(np.unique(idx)) != idx.size or self._revealed[idx].any():
            raise OracleError("a position was asked twice")
        self._revealed[idx] = True
        self._order.extend(int(i) for i in idx)
        return self.__labels[idx]

    @property
    def labelled_mask(self) -> np.ndarray:
        """``[N]`` bool, True where revealed (a copy)."""
        return self._revealed.copy()

    @property
    def revealed(self) -> list[int]:
        """Revealed positions in reveal order."""
        return list(self._order)

    def labels_of_revealed(self) -> tuple[np.ndarray, np.ndarray]:
        """Revealed positions (in reveal order) and their labels."""
        idx = np.asarray(self._order, np.int64)
        return idx, self.__labels[idx]
