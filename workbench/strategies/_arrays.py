"""Input conversion and validation shared by scoring and selection functions."""

from __future__ import annotations

import operator

import numpy as np

from workbench.strategies._errors import (
    InvalidEmbeddingsError,
    InvalidProbabilitiesError,
    StrategyError,
)
from workbench.strategies._types import ArrayLike, RngLike

_SUM_TOL = 1e-3


def to_numpy(x: ArrayLike, *, field: str) -> np.ndarray:
    """Return ``x`` as a numpy array; torch tensors are detached and moved to the CPU."""
    if hasattr(x, "detach"):  # a torch.Tensor, without importing torch here
        x = x.detach().cpu().numpy()
    try:
        return np.asarray(x)
    except (TypeError, ValueError) as exc:
        raise StrategyError(f"cannot convert to an array: {exc}", field=field) from exc


def _as_float(a: np.ndarray) -> np.ndarray:
    if a.dtype in (np.float32, np.float64):
        return a
    if a.dtype.kind not in "biuf":
        raise StrategyError(f"expected a numeric array, got dtype {a.dtype}")
    return a.astype(np.float64)


def as_probs(
    probs: ArrayLike,
    *,
    spatial_dims: int = 0,
    require_mc: bool = False,
    field: str = "probs",
) -> np.ndarray:
    """Validate probabilities and return them as ``[N, T, C, *spatial]`` (``T = 1`` if no MC axis).

    Accepted inputs: ``[N, T, C, *spatial]`` (Monte-Carlo samples) or ``[N, C, *spatial]``
    (one deterministic pass), where ``len(spatial) == spatial_dims``. Values must be finite,
    within ``[0, 1]`` and sum to one over the class axis.
    """
    if isinstance(spatial_dims, bool) or not isinstance(spatial_dims, int) or spatial_dims < 0:
        raise StrategyError(f"spatial_dims must be an int >= 0, got {spatial_dims!r}")
    a = _as_float(to_numpy(probs, field=field))
    mc_ndim, det_ndim = 3 + spatial_dims, 2 + spatial_dims
    sp = "".join(f", S{i}" for i in range(spatial_dims))
    if a.ndim == det_ndim and not require_mc:
        a = a[:, None]
    elif a.ndim != mc_ndim:
        expected = f"[N, T, C{sp}]" + ("" if require_mc else f" or [N, C{sp}]")
        need = " (this score needs Monte-Carlo samples)" if require_mc else ""
        raise InvalidProbabilitiesError(
            f"expected shape {expected}{need}, got {tuple(a.shape)}", field=field
        )
    if a.shape[1] < 1 or a.shape[2] < 1:
        raise InvalidProbabilitiesError(
            f"need at least one sample and one class, got {tuple(a.shape)}", field=field
        )
    if a.size:
        lo, hi = a.min(), a.max()  # NaN propagates: one pass instead of an isfinite pass
        if not (np.isfinite(lo) and np.isfinite(hi)):
            raise InvalidProbabilitiesError("contains NaN or infinite values", field=field)
        if lo < 0 or hi > 1 + _SUM_TOL:
            raise InvalidProbabilitiesError("values must lie in [0, 1]", field=field)
        if spatial_dims == 0:  # C is the last axis: a BLAS mat-vec beats a strided reduce
            sums = a.reshape(-1, a.shape[2]) @ np.ones(a.shape[2], dtype=a.dtype)
        else:
            sums = a.sum(axis=2)
        err = np.abs(sums - 1.0).max()
        if err > _SUM_TOL:
            raise InvalidProbabilitiesError(
                f"must sum to 1 over the class axis (max error {err:.3g}); "
                "apply softmax to logits first",
                field=field,
            )
    return a


def as_embeddings(x: ArrayLike, *, field: str = "embeddings", flatten: bool = False) -> np.ndarray:
    """Validate embeddings ``[N, D]`` (or ``[N, *feature]`` flattened when ``flatten``)."""
    a = _as_float(to_numpy(x, field=field))
    if flatten and a.ndim >= 2:
        a = a.reshape(a.shape[0], -1)
    if a.ndim != 2:
        raise InvalidEmbeddingsError(f"expected shape [N, D], got {tuple(a.shape)}", field=field)
    if a.size and not np.isfinite(a).all():
        raise InvalidEmbeddingsError("contains NaN or infinite values", field=field)
    return a


def as_mask(labelled_mask: ArrayLike | None, n: int, *, field: str = "labelled_mask") -> np.ndarray:
    """Return a boolean ``[N]`` mask; ``None`` means nothing is labelled."""
    if labelled_mask is None:
        return np.zeros(n, dtype=bool)
    m = to_numpy(labelled_mask, field=field)
    if m.shape != (n,):
        raise StrategyError(f"expected shape [{n}], got {tuple(m.shape)}", field=field)
    if m.dtype != bool:
        if m.dtype.kind not in "biu" or not np.isin(m, (0, 1)).all():
            raise StrategyError("must be boolean (or 0/1)", field=field)
        m = m.astype(bool)
    return m


def as_scores(scores: ArrayLike, *, field: str = "scores") -> np.ndarray:
    """Validate one finite score per item, ``[N]`` float64."""
    s = _as_float(to_numpy(scores, field=field)).astype(np.float64, copy=False)
    if s.ndim != 1:
        raise StrategyError(f"expected shape [N], got {tuple(s.shape)}", field=field)
    if s.size and not np.isfinite(s).all():
        raise StrategyError("contains NaN or infinite values", field=field)
    return s


def check_k(k: int) -> int:
    """Return ``k`` as an int, refusing negatives and non-integers."""
    if isinstance(k, bool):
        raise StrategyError(f"k must be an integer >= 0, got {k!r}", field="k")
    try:
        k = operator.index(k)
    except TypeError as exc:
        raise StrategyError(f"k must be an integer >= 0, got {k!r}", field="k") from exc
    if k < 0:
        raise StrategyError(f"k must be an integer >= 0, got {k}", field="k")
    return k


def check_positive(value: int, name: str) -> int:
    """Return ``value`` as an int, refusing non-integers and values below 1 (naming ``name``)."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
        raise StrategyError(f"{name} must be an integer >= 1, got {value!r}", field=name)
    return int(value)


def make_rng(rng: RngLike) -> np.random.Generator:
    """A numpy ``Generator`` from a generator, a seed or ``None``."""
    if isinstance(rng, np.random.Generator):
        return rng
    return np.random.default_rng(rng)


def xlogx(p: np.ndarray) -> np.ndarray:
    """``p * log(p)`` for ``p >= 0``, with ``0 log 0 = 0`` (a new array)."""
    tiny = np.finfo(p.dtype).tiny if p.dtype.kind == "f" else np.finfo(np.float64).tiny
    out = np.maximum(p, tiny)
    np.log(out, out=out)
    out *= p
    return out
