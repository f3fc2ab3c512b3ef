"""Diversity selection on embeddings ``[N, D]``: core-set (k-center greedy) and BADGE."""

from __future__ import annotations

import numpy as np

from workbench.strategies._arrays import (
    as_embeddings,
    as_mask,
    as_probs,
    check_k,
    make_rng,
    to_numpy,
)
from workbench.strategies._errors import InvalidEmbeddingsError
from workbench.strategies._select import empty_result, select_random, with_nan
from workbench.strategies._types import ArrayLike, RngLike, SelectionResult
from workbench.strategies._typical import select_typiclust

_BLOCK = 256


def _sq_dist_to(x: np.ndarray, c: np.ndarray) -> np.ndarray:
    # [N, D], [D] -> [N] squared Euclidean distances
    d = x - c
    return np.einsum("nd,nd->n", d, d)


def _min_sq_dist(x: np.ndarray, centres: np.ndarray) -> np.ndarray:
    # [N, D], [L, D] -> [N] squared distance to the nearest centre, in blocks of centres
    out = np.full(x.shape[0], np.inf)
    x_sq = np.einsum("nd,nd->n", x, x)
    for start in range(0, centres.shape[0], _BLOCK):
        c = centres[start : start + _BLOCK]
        d = x_sq[:, None] - 2.0 * (x @ c.T) + np.einsum("ld,ld->l", c, c)[None]
        np.minimum(out, d.min(axis=1), out=out)
    return np.maximum(out, 0.0)


def select_coreset(
    embeddings: ArrayLike,
    k: int,
    *,
    labelled_mask: ArrayLike | None = None,
    rng: RngLike = None,
) -> SelectionResult:
    """Core-set (Sener & Savarese 2018) k-center greedy on ``embeddings`` ``[N, D]``.

    Starts from the labelled items as centres and repeatedly picks the unlabelled item
    farthest from every centre (ties: lowest position). With nothing labelled the first centre
    is drawn by ``rng``. ``scores``: Euclidean distance to the nearest centre at pick time
    (``inf`` for a first centre); ``pool_scores``: distance to the labelled set, or ``None``.
    """
    x = as_embeddings(embeddings)
    k = check_k(k)
    n = x.shape[0]
    labelled = as_mask(labelled_mask, n)
    k = min(k, int((~labelled).sum()))
    pool = None
    if labelled.any():
        min_d = _min_sq_dist(x, x[labelled])
        pool = with_nan(np.sqrt(min_d), labelled)
    else:
        min_d = np.full(n, np.inf)
    if k == 0:
        return empty_result(pool)
    min_d[labelled] = -np.inf
    picks: list[int] = []
    scores: list[float] = []
    if not labelled.any():
        first = int(make_rng(rng).choice(np.flatnonzero(~labelled)))
        picks.append(first)
        scores.append(np.inf)
        min_d = np.minimum(min_d, _sq_dist_to(x, x[first]))
        min_d[first] = -np.inf
    while len(picks) < k:
        i = int(np.argmax(min_d))
        picks.append(i)
        scores.append(float(np.sqrt(min_d[i])))
        min_d = np.minimum(min_d, _sq_dist_to(x, x[i]))
        min_d[i] = -np.inf
    return SelectionResult(np.asarray(picks, np.int64), np.asarray(scores), pool)


def badge_embeddings(probs: ArrayLike, penultimate: ArrayLike) -> np.ndarray:
    """BADGE gradient embeddings ``[N, C * D]`` (Ash et al. 2020).

    The gradient of the cross-entropy with respect to the last linear layer ``W`` ``[C, D]``
    under the hallucinated label ``argmax_c p``: ``(p - onehot(argmax p)) ⊗ h``, flattened
    class-major. ``probs``: ``[N, C]`` (or ``[N, T, C]``, averaged); ``penultimate``: ``[N, D]``.
    """
    p = as_probs(probs).mean(axis=1)  # [N, C]
    h = as_embeddings(penultimate, field="penultimate")  # [N, D]
    if h.shape[0] != p.shape[0]:
        raise InvalidEmbeddingsError(
            f"has {h.shape[0]} rows but probs has {p.shape[0]}", field="penultimate"
        )
    g = p.copy()
    g[np.arange(p.shape[0]), p.argmax(axis=1)] -= 1.0  # [N, C]
    dtype = np.result_type(p.dtype, h.dtype)
    return (g[:, :, None] * h[:, None, :]).reshape(p.shape[0], -1).astype(dtype, copy=False)


def select_badge(
    grad_embeddings: ArrayLike,
    k: int,
    *,
    labelled_mask: ArrayLike | None = None,
    rng: RngLike = None,
) -> SelectionResult:
    """BADGE selection: k-means++ seeding over unlabelled gradient embeddings ``[N, E]``.

    The first pick is the largest gradient norm; each next pick is drawn with probability
    proportional to its squared distance to the picks so far (uniform among the rest when all
    distances are zero). ``scores``: squared distance (first: squared norm) at pick time;
    ``pool_scores``: gradient norms.
    """
    g = as_embeddings(grad_embeddings, field="grad_embeddings")
    k = check_k(k)
    n = g.shape[0]
    labelled = as_mask(labelled_mask, n)
    norms_sq = np.einsum("ne,ne->n", g, g).astype(np.float64)
    pool = with_nan(np.sqrt(norms_sq), labelled)
    k = min(k, int((~labelled).sum()))
    if k == 0:
        return empty_result(pool)
    gen = make_rng(rng)
    open_ = ~labelled
    first = int(np.argmax(np.where(open_, norms_sq, -np.inf)))
    picks, scores = [first], [float(norms_sq[first])]
    open_[first] = False
    min_d = _sq_dist_to(g, g[first]).astype(np.float64)
    while len(picks) < k:
        w = np.where(open_, min_d, 0.0)
        total = w.sum()
        cand = np.flatnonzero(open_)
        if total > 0 and np.isfinite(total):
            i = int(gen.choice(n, p=w / total))
        else:
            i = int(gen.choice(cand))
        picks.append(i)
        scores.append(float(min_d[i]))
        open_[i] = False
        np.minimum(min_d, _sq_dist_to(g, g[i]), out=min_d)
    return SelectionResult(np.asarray(picks, np.int64), np.asarray(scores), pool)


def downsample(images: ArrayLike, factor: int) -> np.ndarray:
    """Average-pool ``images`` ``[N, *spatial]`` by ``factor`` along every spatial axis.

    Each spatial size is cropped to a multiple of ``factor`` first. ``factor=1`` is a no-op.
    """
    a = to_numpy(images, field="images").astype(np.float64, copy=False)
    if isinstance(factor, bool) or not isinstance(factor, int) or factor < 1:
        raise InvalidEmbeddingsError(f"factor must be an int >= 1, got {factor!r}", field="factor")
    if a.ndim < 2:
        raise InvalidEmbeddingsError(f"expected [N, *spatial], got {a.shape}", field="images")
    if factor == 1:
        return a
    sizes = [s // factor for s in a.shape[1:]]
    if min(sizes) == 0:
        raise InvalidEmbeddingsError(f"factor {factor} exceeds image size {a.shape[1:]}")
    a = a[(slice(None), *(slice(0, s * factor) for s in sizes))]
    shape = [a.shape[0]]
    for s in sizes:
        shape += [s, factor]
    return a.reshape(shape).mean(axis=tuple(range(2, 2 * len(sizes) + 1, 2)))


COLD_START_METHODS = ("random", "kcenter", "typical")


def select_cold_start(
    features: ArrayLike,
    k: int,
    *,
    method: str = "kcenter",
    factor: int = 1,
    labelled_mask: ArrayLike | None = None,
    rng: RngLike = None,
) -> SelectionResult:
    """First batch without a model: ``"random"``, ``"kcenter"`` or ``"typical"``.

    ``features``: ``[N, *feature]`` (e.g. pixels ``[N, H, W]``). For ``"kcenter"`` they are
    average-pooled by ``factor`` along every non-batch axis, flattened, and k-center greedy
    selected (see :func:`select_coreset`). ``"typical"`` is TypiClust (see
    :func:`select_typiclust`), meant for self-supervised features
    (`workbench.recipes.contrastive_features`).
    """
    if method not in COLD_START_METHODS:
        raise InvalidEmbeddingsError(
            f"unknown method {method!r}; use one of {', '.join(COLD_START_METHODS)}"
        )
    x = as_embeddings(features, field="features", flatten=True)  # validates every value
    if method == "random":
        return select_random(x.shape[0], k, labelled_mask=labelled_mask, rng=rng)
    if method == "typical":
        return select_typiclust(x, k, labelled_mask=labelled_mask, rng=rng)
    if factor != 1:
        x = as_embeddings(downsample(to_numpy(features, field="features"), factor), flatten=True)
    return select_coreset(x, k, labelled_mask=labelled_mask, rng=rng)
