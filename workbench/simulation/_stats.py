"""Learning-curve statistics: normalised AULC, t-intervals over seeds, labels to reach a target."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

INTERVAL = "95% Student t-interval over seeds (mean +/- t_{0.975, n-1} * sd / sqrt(n))"


@dataclass(frozen=True)
class Interval:
    """A mean with its two-sided 95% t-interval (``lo``/``hi`` None with fewer than 2 values)."""

    mean: float
    lo: float | None
    hi: float | None
    n: int


def aulc(labels: Sequence[float], metric: Sequence[float]) -> float:
    """Normalised area under a learning curve: the trapezoid area divided by the label range, i.e.
    the mean metric over the budget (in metric units). A one-point curve returns its value."""
    x = np.asarray(labels, np.float64)
    y = np.asarray(metric, np.float64)
    if x.shape != y.shape or x.ndim != 1 or x.size == 0:
        raise ValueError(f"labels and metric must be equal 1D sequences, got {x.shape}, {y.shape}")
    if x.size == 1 or x[-1] == x[0]:
        return float(y.mean())
    if np.any(np.diff(x) < 0):
        raise ValueError("labels must be non-decreasing")
    area = float(np.sum((y[1:] + y[:-1]) / 2 * np.diff(x)))
    return area / float(x[-1] - x[0])


def t_interval(values: Sequence[float], level: float = 0.95) -> Interval:
    """Mean and Student-t interval of ``values`` (independent seeds, or paired differences)."""
    v = np.asarray(values, np.float64)
    if v.size == 0:
        raise ValueError("no values")
    mean = float(v.mean())
    if v.size < 2:
        return Interval(mean, None, None, int(v.size))
    half = float(stats.t.ppf((1 + level) / 2, v.size - 1) * v.std(ddof=1) / np.sqrt(v.size))
    return Interval(mean, mean - half, mean + half, int(v.size))


def labels_to_reach(labels: Sequence[int], metric: Sequence[float], target: float) -> int | None:
    """The first label count at which ``metric >= target``; None if never within the curve."""
    for n, m in zip(labels, metric, strict=True):
        if np.isfinite(m) and m >= target:
            return int(n)
    return None


def labels_to_reach_range(
    labels: Sequence[int], lo: Sequence[float], hi: Sequence[float], target: float
) -> tuple[int | None, int | None]:
    """How finely a mean curve with interval ``[lo, hi]`` per budget tells when it reaches
    ``target``: ``(earliest, surely)``, the first budgets at which the interval's upper and
    lower ends reach it (None: not within the curve). The mean's own `labels_to_reach` lies
    between the two."""
    return labels_to_reach(labels, hi, target), labels_to_reach(labels, lo, target)
