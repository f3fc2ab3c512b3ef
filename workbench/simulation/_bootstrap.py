"""How sure a "labels to reach" comparison is: a paired bootstrap over seeds.

"Labels to 99% of the full-data metric" is read off a mean curve, one budget per arm, so a run
says "200 vs 240 labels" with no error bar, and the two readings jump by whole steps as seeds
come and go. This resamples the seeds (paired: a seed's two curves stay together) and, when there
are several, the full-data reference trainings, reads both arms on every resample, and gives a
percentile interval of the ratio (arm's labels / baseline's labels).

A resample in which a mean curve never reaches the line within its budget only bounds the ratio:
the baseline never reaching it leaves the ratio below ``arm / last budget``, the arm never
reaching it leaves it above ``last budget / baseline``. Such a resample enters the interval's
lower end at the least it can be and its upper end at the most, so the interval is conservative
(wide) where the curves run out.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from workbench.simulation._stats import labels_to_reach

RESAMPLES = 2000


@dataclass(frozen=True)
class LabelsRatio:
    """``ratio``: labels the arm needs over labels the baseline needs, off the mean curves of
    every seed against the mean reference (None unless both reach the line). ``low``/``high``:
    per resample, the least and the most the ratio can be (equal when both curves reach the
    line; 0 and inf stand for no bound within the curves)."""

    ratio: float | None
    low: np.ndarray
    high: np.ndarray
    reference_resampled: bool

    def interval(self, level: float = 0.95) -> tuple[float | None, float | None]:
        """The percentile interval; an end is None where the curves do not bound it."""
        if not 0 < level < 1:
            raise ValueError(f"level must be in (0, 1), got {level}")
        lo = float(np.quantile(self.low, (1 - level) / 2, method="lower"))
        hi = float(np.quantile(self.high, (1 + level) / 2, method="higher"))
        return (lo if lo > 0 else None), (hi if np.isfinite(hi) else None)

    def share_at_most(self, goal: float) -> tuple[float, float]:
        """Of the resamples, the share whose ratio is surely at most ``goal`` and the share
        whose ratio may be (they differ by the resamples the curves do not settle)."""
        return float(np.mean(self.high <= goal + 1e-9)), float(np.mean(self.low <= goal + 1e-9))

    def summary(self, level: float = 0.95) -> dict[str, Any]:
        """JSON-ready: ratio, lo, hi, level, resamples, the share of resamples where a curve
        never reaches the line (``censored``) and whether the reference was resampled."""
        lo, hi = self.interval(level)
        censored = float(np.mean(~((self.low == self.high) & np.isfinite(self.high))))
        return {
            "ratio": self.ratio,
            "lo": lo,
            "hi": hi,
            "level": level,
            "resamples": int(self.low.size),
            "censored": censored,
            "reference_resampled": self.reference_resampled,
        }


def _first_reach(labels: np.ndarray, curves: np.ndarray, lines: np.ndarray) -> np.ndarray:
    """Per row, the first budget at which the curve reaches its line; nan where it never does.
    # labels [B], curves [R, B], lines [R] -> [R]"""
    hit = np.isfinite(curves) & (curves >= lines[:, None])
    first = labels[np.argmax(hit, axis=1)].astype(np.float64)
    first[~hit.any(axis=1)] = np.nan
    return first


def labels_ratio(
    labels: Sequence[int],
    ours: np.ndarray,
    theirs: np.ndarray,
    reference: Sequence[float],
    fraction: float,
    *,
    resamples: int = RESAMPLES,
    seed: int = 0,
    resample_reference: bool = True,
) -> LabelsRatio:
    """Labels to reach ``fraction`` of the mean ``reference`` for ``ours`` over ``theirs``, with
    ``resamples`` paired bootstrap draws of the seeds (and of the reference trainings when there
    are two or more and ``resample_reference``). ``ours``/``theirs``: [seeds, budgets] test
    metric, rows paired by seed; ``labels``: the budgets. Deterministic for a ``seed``."""
    x = np.asarray(labels, dtype=np.int64)
    a = np.asarray(ours, dtype=np.float64)
    b = np.asarray(theirs, dtype=np.float64)
    refs = np.asarray(reference, dtype=np.float64)
    if a.ndim != 2 or a.shape != b.shape or a.shape[1] != x.size:
        raise ValueError(
            f"ours and theirs must be [seeds, {x.size} budgets] alike, got {a.shape}, {b.shape}"
        )
    if a.shape[0] < 2:
        raise ValueError(f"a bootstrap over seeds needs 2 seeds or more, got {a.shape[0]}")
    if refs.size == 0 or not np.all(np.isfinite(refs)):
        raise ValueError("reference must hold at least one finite full-data metric")
    if not 0 < fraction <= 1:
        raise ValueError(f"fraction is a share of the reference in (0, 1], got {fraction}")
    if resamples < 1:
        raise ValueError(f"resamples must be at least 1, got {resamples}")
    line = fraction * float(refs.mean())
    mine = labels_to_reach(list(x), list(a.mean(0)), line)
    base = labels_to_reach(list(x), list(b.mean(0)), line)
    ratio = None if mine is None or base is None else mine / base

    rng = np.random.default_rng(seed)
    rows = rng.integers(0, a.shape[0], size=(resamples, a.shape[0]))
    with_reference = resample_reference and refs.size >= 2
    if with_reference:
        drawn = refs[rng.integers(0, refs.size, size=(resamples, refs.size))]
        lines = fraction * drawn.mean(axis=1)
    else:
        lines = np.full(resamples, line)
    reach_mine = _first_reach(x, a[rows].mean(axis=1), lines)
    reach_base = _first_reach(x, b[rows].mean(axis=1), lines)
    last = float(x[-1])
    both = ~np.isnan(reach_mine) & ~np.isnan(reach_base)
    only_mine = ~np.isnan(reach_mine) & np.isnan(reach_base)
    only_base = np.isnan(reach_mine) & ~np.isnan(reach_base)
    low = np.zeros(resamples)
    high = np.full(resamples, np.inf)
    low[both] = high[both] = reach_mine[both] / reach_base[both]
    high[only_mine] = reach_mine[only_mine] / last
    low[only_base] = last / reach_base[only_base]
    return LabelsRatio(ratio, low, high, with_reference)
