"""Uncertainty scores: pure functions over probabilities. Higher score = more useful to label.

Shapes: ``probs`` is ``[N, T, C, *spatial]`` (N items, T Monte-Carlo samples, C classes) or
``[N, C, *spatial]`` for one deterministic pass; ``spatial_dims`` says how many trailing
spatial axes there are (0 for classification, 2 or 3 for segmentation). Per-voxel maps are
``[N, *spatial]``; ``reduction`` turns them into one score per item ``[N]``.
"""

from __future__ import annotations

import math

import numpy as np

from workbench.strategies._arrays import as_probs, make_rng, to_numpy, xlogx
from workbench.strategies._errors import InvalidProbabilitiesError, StrategyError
from workbench.strategies._types import ArrayLike, Reduction, RngLike, UncertaintyKind

_REDUCTIONS = ("none", "mean", "foreground_weighted", "top_percentile")


def _entropy_map(p: np.ndarray) -> np.ndarray:
    # [N, T, C, *S] -> [N, *S]: entropy of the mean prediction
    return -xlogx(p.mean(axis=1)).sum(axis=1)


def _bald_map(p: np.ndarray) -> np.ndarray:
    # [N, T, C, *S] -> [N, *S]: H[mean_t p_t] - mean_t H[p_t]
    expected_entropy = -xlogx(p).sum(axis=2).mean(axis=1)
    return np.maximum(_entropy_map(p) - expected_entropy, 0.0)


def _margin_map(p: np.ndarray) -> np.ndarray:
    # [N, T, C, *S] -> [N, *S]: 1 - (p_top1 - p_top2) of the mean prediction
    mean = p.mean(axis=1)  # [N, C, *S]
    n_class = mean.shape[1]
    if n_class < 2:
        raise InvalidProbabilitiesError("margin needs at least two classes", field="probs")
    top2 = np.partition(mean, n_class - 2, axis=1)[:, n_class - 2 :]  # [N, 2, *S]
    return 1.0 - (top2[:, 1] - top2[:, 0])


def _least_confidence_map(p: np.ndarray) -> np.ndarray:
    # [N, T, C, *S] -> [N, *S]: 1 - max_c of the mean prediction
    return 1.0 - p.mean(axis=1).max(axis=1)


_MAPS = {
    "entropy": _entropy_map,
    "bald": _bald_map,
    "margin": _margin_map,
    "least_confidence": _least_confidence_map,
}


def reduce_map(
    umap: ArrayLike,
    reduction: Reduction = "mean",
    *,
    foreground: ArrayLike | None = None,
    q: float = 10.0,
) -> np.ndarray:
    """Reduce a per-voxel map ``[N, *spatial]`` to one score per item ``[N]``.

    ``"mean"``: mean over voxels. ``"foreground_weighted"``: mean weighted by ``foreground``
    ``[N, *spatial]`` (predicted foreground probability; an item with no foreground scores 0).
    ``"top_percentile"``: mean of the top ``q`` percent of voxels (at least one voxel).
    ``"none"`` is refused here: it only makes sense for the scoring functions.
    """
    m = to_numpy(umap, field="umap").astype(np.float64, copy=False)
    if m.ndim < 1:
        raise StrategyError(f"expected a map [N, *spatial], got {m.shape}", field="umap")
    flat = m.reshape(m.shape[0], -1)  # [N, V]
    if reduction == "mean":
        return flat.mean(axis=1) if flat.shape[1] else np.zeros(flat.shape[0])
    if reduction == "top_percentile":
        if not 0 < q <= 100:
            raise StrategyError(f"q must be in (0, 100], got {q}", field="q")
        n_vox = flat.shape[1]
        if n_vox == 0:
            return np.zeros(flat.shape[0])
        top = max(1, math.ceil(n_vox * q / 100.0))
        part = np.partition(flat, n_vox - top, axis=1)[:, n_vox - top :]  # [N, top]
        return part.mean(axis=1)
    if reduction == "foreground_weighted":
        if foreground is None:
            raise StrategyError("foreground_weighted needs a foreground map", field="foreground")
        w = to_numpy(foreground, field="foreground").astype(np.float64, copy=False)
        if w.shape != m.shape:
            raise StrategyError(
                f"foreground shape {w.shape} differs from map shape {m.shape}", field="foreground"
            )
        w = w.reshape(flat.shape)
        total = w.sum(axis=1)
        return np.divide((w * flat).sum(axis=1), total, out=np.zeros_like(total), where=total > 0)
    raise StrategyError(
        f"unknown reduction {reduction!r}; use one of {_REDUCTIONS[1:]}", field="reduction"
    )


def uncertainty_map(
    probs: ArrayLike, kind: UncertaintyKind = "entropy", *, spatial_dims: int
) -> np.ndarray:
    """Per-voxel uncertainty map ``[N, *spatial]`` of ``probs`` ``[N, (T,) C, *spatial]``.

    ``kind`` is one of ``"entropy"``, ``"bald"`` (needs the MC axis), ``"margin"``,
    ``"least_confidence"``. Keep the map for display; reduce it with :func:`reduce_map`.
    """
    if kind not in _MAPS:
        raise StrategyError(f"unknown kind {kind!r}; use one of {tuple(_MAPS)}", field="kind")
    p = as_probs(probs, spatial_dims=spatial_dims, require_mc=kind == "bald")
    return _MAPS[kind](p)


def moment_uncertainty_map(
    moments: ArrayLike, kind: UncertaintyKind = "entropy", *, spatial_dims: int
) -> np.ndarray:
    """`uncertainty_map` from MC moments instead of the samples: ``moments`` ``[N, C + 1,
    *spatial]`` holds the mean probabilities, then the mean per-sample entropy in nats (what
    `workbench.models.sample_moments` gives). The same maps, without holding T samples.
    # -> [N, *spatial]"""
    return _moment_map(*_split_moments(moments, spatial_dims), kind)


def moment_scores(
    moments: ArrayLike,
    kind: UncertaintyKind = "entropy",
    *,
    spatial_dims: int,
    reduction: Reduction = "mean",
    q: float = 10.0,
    background_class: int = 0,
) -> np.ndarray:
    """The scores of `entropy`, `bald`, `margin` and `least_confidence` from MC moments
    ``[N, C + 1, *spatial]`` (see `moment_uncertainty_map`), ``[N]`` (or the maps with
    ``reduction="none"``)."""
    _check_reduction(reduction)
    mean, mean_entropy = _split_moments(moments, spatial_dims)
    umap = _moment_map(mean, mean_entropy, kind)
    return _reduced(umap, mean[:, None], spatial_dims, reduction, q, background_class)


def _moment_map(mean: np.ndarray, mean_entropy: np.ndarray, kind: str) -> np.ndarray:
    # mean probabilities [N, C, *S] and mean per-sample entropy [N, *S] -> [N, *S]
    if kind not in _MAPS:
        raise StrategyError(f"unknown kind {kind!r}; use one of {tuple(_MAPS)}", field="kind")
    if kind == "bald":
        return np.maximum(_entropy_map(mean[:, None]) - mean_entropy, 0.0)
    return _MAPS[kind](mean[:, None])  # the other maps read the mean prediction only


def _split_moments(moments: ArrayLike, spatial_dims: int) -> tuple[np.ndarray, np.ndarray]:
    # [N, C + 1, *S] -> mean probabilities [N, C, *S], mean per-sample entropy [N, *S]
    m = to_numpy(moments, field="moments")
    if m.ndim != 2 + spatial_dims or m.shape[1] < 2:
        raise InvalidProbabilitiesError(
            f"expected moments [N, C + 1{''.join(f', S{i}' for i in range(spatial_dims))}] "
            f"with C >= 1, got {tuple(m.shape)}",
            field="moments",
        )
    mean = as_probs(m[:, :-1], spatial_dims=spatial_dims, field="moments")[:, 0]
    return mean, m[:, -1].astype(mean.dtype, copy=False)


def _check_reduction(reduction: str) -> None:
    if reduction not in _REDUCTIONS:
        raise StrategyError(
            f"unknown reduction {reduction!r}; use one of {_REDUCTIONS}", field="reduction"
        )


def _score(
    kind: UncertaintyKind,
    probs: ArrayLike,
    spatial_dims: int,
    reduction: Reduction,
    q: float,
    background_class: int,
) -> np.ndarray:
    _check_reduction(reduction)
    p = as_probs(probs, spatial_dims=spatial_dims, require_mc=kind == "bald")
    return _reduced(_MAPS[kind](p), p, spatial_dims, reduction, q, background_class)


def _reduced(
    umap: np.ndarray,
    p: np.ndarray,
    spatial_dims: int,
    reduction: Reduction,
    q: float,
    background_class: int,
) -> np.ndarray:
    # umap [N, *S] of probabilities p [N, T, C, *S] -> [N] (the map itself unreduced)
    if spatial_dims == 0 or reduction == "none":
        return umap
    foreground = None
    if reduction == "foreground_weighted":
        if not 0 <= background_class < p.shape[2]:
            raise StrategyError(
                f"background_class {background_class} out of range", field="background_class"
            )
        foreground = 1.0 - p[:, :, background_class].mean(axis=1)  # [N, *S]
    return reduce_map(umap, reduction, foreground=foreground, q=q)


def entropy(
    probs: ArrayLike,
    *,
    spatial_dims: int = 0,
    reduction: Reduction = "mean",
    q: float = 10.0,
    background_class: int = 0,
) -> np.ndarray:
    """Entropy of the mean prediction, ``[N]`` (or ``[N, *spatial]`` with ``reduction="none"``).

    ``probs``: ``[N, T, C, *spatial]`` or ``[N, C, *spatial]``. ``q`` is the percentile for
    ``"top_percentile"``; ``background_class`` defines foreground for ``"foreground_weighted"``.
    """
    return _score("entropy", probs, spatial_dims, reduction, q, background_class)


def bald(
    probs: ArrayLike,
    *,
    spatial_dims: int = 0,
    reduction: Reduction = "mean",
    q: float = 10.0,
    background_class: int = 0,
) -> np.ndarray:
    """BALD mutual information ``H[E_t p] - E_t H[p]`` (Houlsby et al. 2011), ``[N]``.

    ``probs``: ``[N, T, C, *spatial]`` — the Monte-Carlo axis is required.
    """
    return _score("bald", probs, spatial_dims, reduction, q, background_class)


def margin(
    probs: ArrayLike,
    *,
    spatial_dims: int = 0,
    reduction: Reduction = "mean",
    q: float = 10.0,
    background_class: int = 0,
) -> np.ndarray:
    """``1 - (p_top1 - p_top2)`` of the mean prediction, ``[N]``; needs ``C >= 2``."""
    return _score("margin", probs, spatial_dims, reduction, q, background_class)


def least_confidence(
    probs: ArrayLike,
    *,
    spatial_dims: int = 0,
    reduction: Reduction = "mean",
    q: float = 10.0,
    background_class: int = 0,
) -> np.ndarray:
    """``1 - max_c p_c`` of the mean prediction, ``[N]``."""
    return _score("least_confidence", probs, spatial_dims, reduction, q, background_class)


def random_scores(n: int, *, rng: RngLike = None) -> np.ndarray:
    """``[n]`` i.i.d. uniform scores in ``[0, 1)``: the random baseline as a score."""
    if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 0:
        raise StrategyError(f"n must be an integer >= 0, got {n!r}", field="n")
    return make_rng(rng).random(int(n))
