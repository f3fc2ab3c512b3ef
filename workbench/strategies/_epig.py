"""EPIG: expected predictive information gain (Smith et al. 2023), classification only.

BALD asks how much a label would tell about the model's parameters; EPIG asks how much it
would tell about the model's *predictions* on inputs like those it will be used on (target
inputs ``x*``, here drawn from the unlabelled pool)::

    EPIG(x) = E_{x*} I(y; y* | x, x*)

With the T Monte-Carlo samples standing in for the posterior, the joint predictive of a pool
item ``n`` and a target ``m`` is ``p(c, d) = mean_t p_t(c | x_n) p_t(d | x*_m)``, and

    EPIG(x_n) = mean_m sum_{c,d} p(c, d) log p(c, d) + H[mean_t p_t(. | x_n)] + mean_m H[...x*_m]

because the joint's marginals are the two mean predictions. ``EPIG <= BALD`` item by item
(data-processing inequality), with equality only in special cases.
"""

from __future__ import annotations

import numpy as np

from workbench.strategies._arrays import as_probs, xlogx
from workbench.strategies._errors import InvalidProbabilitiesError
from workbench.strategies._types import ArrayLike

_CHUNK_ELEMENTS = 1 << 22  # joint-probability values held at once (32 MiB in float64)


def _mean_entropy(p: np.ndarray) -> np.ndarray:
    # [N, T, C] -> [N]: entropy of the mean prediction
    return -xlogx(p.mean(axis=1)).sum(axis=1)


def epig(probs: ArrayLike, target_probs: ArrayLike) -> np.ndarray:
    """EPIG ``[N]`` of pool items ``probs`` ``[N, T, C]`` about targets ``target_probs``
    ``[M, T, C]``: the mean over targets of the mutual information between the item's label
    and the target's, under the same T Monte-Carlo samples (row ``t`` of both comes from one
    dropout mask or ensemble member). In nats; 0 when ``T == 1``.
    """
    p = as_probs(probs, require_mc=True)
    q = as_probs(target_probs, require_mc=True, field="target_probs")
    if q.shape[1:] != p.shape[1:]:
        raise InvalidProbabilitiesError(
            f"targets {tuple(q.shape)} must share T and C with the pool {tuple(p.shape)}",
            field="target_probs",
        )
    n, t, c = p.shape
    m = q.shape[0]
    if n == 0 or m == 0:
        return np.zeros(n)
    # joint[n, c, m, d] = mean_t p[n, t, c] q[m, t, d], one BLAS product per chunk of items
    right = np.ascontiguousarray(q.transpose(1, 0, 2).reshape(t, m * c)) / t  # [T, M*C]
    chunk = max(1, _CHUNK_ELEMENTS // (m * c * c))
    joint_term = np.empty(n)
    for start in range(0, n, chunk):
        part = p[start : start + chunk]  # [n', T, C]
        left = part.transpose(0, 2, 1).reshape(-1, t)  # [n'*C, T]
        joint = left @ right  # [n'*C, M*C]
        joint_term[start : start + chunk] = xlogx(joint).reshape(len(part), -1).sum(axis=1) / m
    scores = joint_term + _mean_entropy(p) + _mean_entropy(q).mean()
    return np.maximum(scores, 0.0)
