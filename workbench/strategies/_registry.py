"""Strategies as callables for the loop, and the registry that builds them by name.

Every strategy is called the same way::

    result = strategy(k=10, probs=probs, embeddings=emb, labelled_mask=mask, rng=seed)

and reads only what it needs (listed in ``strategy.needs``: ``"probs"``, ``"mc_probs"``,
``"embeddings"``); the other inputs may be omitted. Every input given is checked. A strategy
that also needs ``"labelled_items"`` (core-set, TypiClust) places its picks relative to what
is labelled already: give it the labelled items' inputs too, flagged in ``labelled_mask``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import partial
from types import MappingProxyType
from typing import Any, ClassVar, Protocol, runtime_checkable

import numpy as np

from workbench.strategies._arrays import (
    as_embeddings,
    as_mask,
    as_probs,
    check_positive,
    make_rng,
    to_numpy,
)
from workbench.strategies._balanced import select_class_balanced
from workbench.strategies._batchbald import select_batchbald
from workbench.strategies._diversity import (
    badge_embeddings,
    select_badge,
    select_cold_start,
    select_coreset,
)
from workbench.strategies._epig import epig
from workbench.strategies._errors import (
    InvalidEmbeddingsError,
    InvalidProbabilitiesError,
    StrategyError,
    UnknownStrategyError,
)
from workbench.strategies._scoring import bald, entropy, least_confidence, margin, moment_scores
from workbench.strategies._select import (
    check_beta,
    empty_result,
    select_random,
    select_stochastic,
    select_top_k,
    with_nan,
)
from workbench.strategies._spec import with_spec_options
from workbench.strategies._types import (
    ArrayLike,
    Reduction,
    RngLike,
    SelectionResult,
    StochasticMode,
    UncertaintyKind,
)
from workbench.strategies._typical import select_typiclust

_SCORES: Mapping[str, Callable[..., np.ndarray]] = MappingProxyType(
    {"entropy": entropy, "bald": bald, "margin": margin, "least_confidence": least_confidence}
)


@runtime_checkable
class Strategy(Protocol):
    """A query strategy: picks ``k`` unlabelled pool positions.

    ``probs``: ``[N, T, C, *spatial]`` or ``[N, C, *spatial]``; ``embeddings``: ``[N, D]``
    (penultimate features, or raw pixels ``[N, *spatial]`` for cold start);
    ``labelled_mask``: ``[N]`` bool, True for items that must not be picked.
    """

    @property
    def name(self) -> str:
        """Registry name."""

    @property
    def needs(self) -> frozenset[str]:
        """Inputs read: a subset of ``{"probs", "mc_probs", "embeddings"}``, plus
        ``"labelled_items"`` when the labelled items' inputs should be given too."""

    def __call__(
        self,
        *,
        k: int,
        probs: ArrayLike | None = None,
        embeddings: ArrayLike | None = None,
        labelled_mask: ArrayLike | None = None,
        rng: RngLike = None,
    ) -> SelectionResult: ...


@dataclass(frozen=True)
class _Inputs:
    n: int
    probs: np.ndarray | None  # [N, T, C, *S] when the strategy needs it
    embeddings: np.ndarray | None  # [N, D] when the strategy needs it
    labelled: np.ndarray  # [N] bool
    features: np.ndarray | None  # the embeddings as given, [N, *feature], when given


class _Base:
    """The call every strategy shares: inputs checked, then the strategy's own `_select`."""

    _needs: ClassVar[frozenset[str]] = frozenset()
    spatial_dims: int = 0
    flatten_embeddings: ClassVar[bool] = False

    @property
    def needs(self) -> frozenset[str]:
        """Inputs read: a subset of ``{"probs", "mc_probs", "embeddings"}``, plus
        ``"labelled_items"`` when the labelled items' inputs should be given too."""
        return self._needs

    def _inputs(
        self,
        probs: ArrayLike | None,
        embeddings: ArrayLike | None,
        labelled_mask: ArrayLike | None,
    ) -> _Inputs:
        given = {"probs": probs, "embeddings": embeddings, "labelled_mask": labelled_mask}
        arrays = {key: to_numpy(v, field=key) for key, v in given.items() if v is not None}
        for need in self.needs - {"labelled_items"}:
            key = "probs" if need in ("probs", "mc_probs") else need
            if key not in arrays:
                label = getattr(self, "name", "")
                raise StrategyError(f"strategy {label!r} needs {key}", field=key)
        sizes = {key: (a.shape[0] if a.ndim else -1) for key, a in arrays.items()}
        if not sizes:
            raise StrategyError(
                "give at least one of probs, embeddings or labelled_mask to size the pool"
            )
        n = next(iter(sizes.values()))
        if len(set(sizes.values())) > 1 or n < 0:
            raise StrategyError(f"inputs disagree on the pool size N: {sizes}")
        p = e = None
        if "probs" in arrays:
            if self.needs & {"probs", "mc_probs"}:
                p = as_probs(
                    arrays["probs"],
                    spatial_dims=self.spatial_dims,
                    require_mc="mc_probs" in self.needs,
                )
            elif not np.isfinite(arrays["probs"]).all():
                raise InvalidProbabilitiesError("contains NaN or infinite values", field="probs")
        if "embeddings" in arrays:
            if "embeddings" in self.needs:
                e = as_embeddings(arrays["embeddings"], flatten=self.flatten_embeddings)
            elif not np.isfinite(arrays["embeddings"]).all():
                raise InvalidEmbeddingsError("contains NaN or infinite values", field="embeddings")
        return _Inputs(n, p, e, as_mask(arrays.get("labelled_mask"), n), arrays.get("embeddings"))

    def __call__(
        self,
        *,
        k: int,
        probs: ArrayLike | None = None,
        embeddings: ArrayLike | None = None,
        labelled_mask: ArrayLike | None = None,
        rng: RngLike = None,
    ) -> SelectionResult:
        """Pick ``k`` items (see `Strategy`)."""
        return self._select(self._inputs(probs, embeddings, labelled_mask), k, rng)

    def _select(self, x: _Inputs, k: int, rng: RngLike) -> SelectionResult:
        raise NotImplementedError


@dataclass(frozen=True)
class RandomStrategy(_Base):
    """Uniform random picks; needs only the pool size (from any input)."""

    name: str = "random"

    def _select(self, x: _Inputs, k: int, rng: RngLike) -> SelectionResult:
        return select_random(x.n, k, labelled_mask=x.labelled, rng=rng)


def _check_mode(mode: str) -> None:
    if mode not in ("top_k", "power", "softmax", "softrank"):
        raise StrategyError(f"unknown mode {mode!r}", field="mode")


@dataclass(frozen=True)
class ScoreStrategy(_Base):
    """An uncertainty score, then top-k (``mode="top_k"``) or stochastic batch selection."""

    name: str = "entropy"
    kind: UncertaintyKind = "entropy"
    mode: StochasticMode | str = "top_k"
    beta: float = 1.0
    spatial_dims: int = 0
    reduction: Reduction = "mean"
    q: float = 10.0
    background_class: int = 0

    def __post_init__(self) -> None:
        if self.kind not in _SCORES:
            raise StrategyError(f"unknown score {self.kind!r}", field="kind")
        _check_mode(self.mode)
        check_beta(self.beta)

    @property
    def needs(self) -> frozenset[str]:
        """Inputs read: MC probabilities for BALD, else probabilities."""
        return frozenset({"mc_probs" if self.kind == "bald" else "probs"})

    def scores(self, probs: ArrayLike) -> np.ndarray:
        """``[N]`` scores of ``probs`` with this strategy's score and reduction."""
        return _SCORES[self.kind](
            probs,
            spatial_dims=self.spatial_dims,
            reduction=self.reduction,
            q=self.q,
            background_class=self.background_class,
        )

    def scores_from_moments(self, moments: ArrayLike) -> np.ndarray:
        """`scores` from MC moments ``[N, C + 1, *spatial]`` instead of the samples
        (`moment_scores`): what scoring a large scan without holding its samples needs."""
        return moment_scores(
            moments,
            self.kind,
            spatial_dims=self.spatial_dims,
            reduction=self.reduction,
            q=self.q,
            background_class=self.background_class,
        )

    def _select(self, x: _Inputs, k: int, rng: RngLike) -> SelectionResult:
        assert x.probs is not None
        s = self.scores(x.probs)
        if s.ndim != 1:
            raise StrategyError("reduction 'none' cannot rank items", field="reduction")
        if self.mode == "top_k":
            return select_top_k(s, k, labelled_mask=x.labelled, rng=rng)
        mode: StochasticMode = self.mode  # type: ignore[assignment]
        return select_stochastic(s, k, mode=mode, beta=self.beta, labelled_mask=x.labelled, rng=rng)


@dataclass(frozen=True)
class BatchBALDStrategy(_Base):
    """Greedy BatchBALD (see :func:`select_batchbald`); classification ``[N, T, C]`` only."""

    name: str = "batchbald"
    num_samples: int = 1000
    max_exact_configs: int = 1024
    chunk_size: int = 64
    _needs: ClassVar[frozenset[str]] = frozenset({"mc_probs"})

    def _select(self, x: _Inputs, k: int, rng: RngLike) -> SelectionResult:
        return select_batchbald(
            x.probs,  # type: ignore[arg-type]
            k,
            labelled_mask=x.labelled,
            num_samples=self.num_samples,
            max_exact_configs=self.max_exact_configs,
            chunk_size=self.chunk_size,
            rng=rng,
        )


@dataclass(frozen=True)
class EPIGStrategy(_Base):
    """EPIG (see :func:`epig`) about ``num_targets`` targets drawn from the unlabelled pool,
    then top-k or stochastic batch selection; classification ``[N, T, C]`` only."""

    name: str = "epig"
    mode: StochasticMode | str = "top_k"
    beta: float = 1.0
    num_targets: int = 100
    _needs: ClassVar[frozenset[str]] = frozenset({"mc_probs"})

    def __post_init__(self) -> None:
        _check_mode(self.mode)
        check_beta(self.beta)
        if (
            isinstance(self.num_targets, bool)
            or not isinstance(self.num_targets, int)
            or (self.num_targets < 1)
        ):
            raise StrategyError(
                f"num_targets must be an int >= 1, got {self.num_targets!r}", field="num_targets"
            )

    def _select(self, x: _Inputs, k: int, rng: RngLike) -> SelectionResult:
        assert x.probs is not None
        gen = make_rng(rng)
        unlabelled = np.flatnonzero(~x.labelled)
        if unlabelled.size == 0:
            return empty_result(with_nan(np.zeros(x.n), x.labelled))
        targets = gen.choice(unlabelled, min(self.num_targets, unlabelled.size), replace=False)
        s = epig(x.probs, x.probs[np.sort(targets)])
        if self.mode == "top_k":
            return select_top_k(s, k, labelled_mask=x.labelled, rng=gen)
        mode: StochasticMode = self.mode  # type: ignore[assignment]
        return select_stochastic(s, k, mode=mode, beta=self.beta, labelled_mask=x.labelled, rng=gen)


@dataclass(frozen=True)
class CoresetStrategy(_Base):
    """k-center greedy on ``embeddings`` ``[N, D]`` (see :func:`select_coreset`)."""

    name: str = "coreset"
    _needs: ClassVar[frozenset[str]] = frozenset({"embeddings", "labelled_items"})

    def _select(self, x: _Inputs, k: int, rng: RngLike) -> SelectionResult:
        return select_coreset(x.embeddings, k, labelled_mask=x.labelled, rng=rng)  # type: ignore[arg-type]


@dataclass(frozen=True)
class TypiClustStrategy(_Base):
    """TypiClust on ``embeddings`` ``[N, D]``: the typical item of each cluster the labels do
    not cover yet (see :func:`select_typiclust`); meant for small budgets. With ``kind``
    (``typiclust_bald``): the most uncertain item of each such cluster instead."""

    name: str = "typiclust"
    max_clusters: int = 500
    neighbours: int = 20
    min_cluster_size: int = 5
    kind: UncertaintyKind | None = None

    def __post_init__(self) -> None:
        for name in ("max_clusters", "neighbours", "min_cluster_size"):
            check_positive(getattr(self, name), name)
        if self.kind is not None and self.kind not in _SCORES:
            raise StrategyError(f"unknown score {self.kind!r}", field="kind")

    @property
    def needs(self) -> frozenset[str]:
        """Embeddings of the pool and the labelled items; with ``kind``, probabilities too."""
        needs = {"embeddings", "labelled_items"}
        if self.kind is not None:
            needs.add("mc_probs" if self.kind == "bald" else "probs")
        return frozenset(needs)

    def _select(self, x: _Inputs, k: int, rng: RngLike) -> SelectionResult:
        return select_typiclust(
            x.embeddings,  # type: ignore[arg-type]
            k,
            labelled_mask=x.labelled,
            max_clusters=self.max_clusters,
            neighbours=self.neighbours,
            min_cluster_size=self.min_cluster_size,
            priority=None if self.kind is None else _SCORES[self.kind](x.probs),
            rng=rng,
        )


@dataclass(frozen=True)
class ColdStartStrategy(_Base):
    """No model yet: k-center greedy on raw features ``[N, *spatial]`` pooled by ``factor``."""

    name: str = "cold_start_kcenter"
    factor: int = 1
    _needs: ClassVar[frozenset[str]] = frozenset({"embeddings", "labelled_items"})
    flatten_embeddings: ClassVar[bool] = True

    def _select(self, x: _Inputs, k: int, rng: RngLike) -> SelectionResult:
        return select_cold_start(
            x.features,  # type: ignore[arg-type]
            k,
            method="kcenter",
            factor=self.factor,
            labelled_mask=x.labelled,
            rng=rng,
        )


@dataclass(frozen=True)
class BadgeStrategy(_Base):
    """BADGE: gradient embeddings from ``probs`` and penultimate ``embeddings``, k-means++."""

    name: str = "badge"
    _needs: ClassVar[frozenset[str]] = frozenset({"probs", "embeddings"})

    def _select(self, x: _Inputs, k: int, rng: RngLike) -> SelectionResult:
        grads = badge_embeddings(x.probs, x.embeddings)  # type: ignore[arg-type]
        return select_badge(grads, k, labelled_mask=x.labelled, rng=rng)


@dataclass(frozen=True)
class ClassBalancedStrategy(_Base):
    """An uncertainty score spread over predicted classes (see :func:`select_class_balanced`):
    best first (``mode="top_k"``) or sampled within each class (``"power"`` etc.)."""

    name: str = "class_balanced_entropy"
    kind: UncertaintyKind = "entropy"
    mode: StochasticMode | str = "top_k"
    beta: float = 1.0
    min_per_class: int = 1
    class_counts: tuple[int, ...] | None = field(default=None)

    def __post_init__(self) -> None:
        if self.kind not in _SCORES:
            raise StrategyError(f"unknown score {self.kind!r}", field="kind")
        _check_mode(self.mode)
        check_beta(self.beta)

    @property
    def needs(self) -> frozenset[str]:
        """Inputs read: MC probabilities for BALD, else probabilities."""
        return frozenset({"mc_probs" if self.kind == "bald" else "probs"})

    def _select(self, x: _Inputs, k: int, rng: RngLike) -> SelectionResult:
        assert x.probs is not None
        mean = x.probs.mean(axis=1)  # [N, C]
        return select_class_balanced(
            _SCORES[self.kind](x.probs),
            mean.argmax(axis=1),
            k,
            num_classes=mean.shape[1],
            min_per_class=self.min_per_class,
            class_counts=None if self.class_counts is None else np.asarray(self.class_counts),
            labelled_mask=x.labelled,
            mode=None if self.mode == "top_k" else self.mode,  # type: ignore[arg-type]
            beta=self.beta,
            rng=rng,
        )


def _build_registry() -> Mapping[str, Callable[..., Strategy]]:
    reg: dict[str, Callable[..., Strategy]] = {
        "random": RandomStrategy,
        "batchbald": BatchBALDStrategy,
        "coreset": CoresetStrategy,
        "badge": BadgeStrategy,
        "cold_start_kcenter": ColdStartStrategy,
        "epig": EPIGStrategy,
        "typiclust": TypiClustStrategy,
    }
    kinds: tuple[UncertaintyKind, ...] = ("entropy", "bald", "margin", "least_confidence")
    modes: tuple[StochasticMode, ...] = ("power", "softmax", "softrank")
    for kind in kinds:
        reg[kind] = partial(ScoreStrategy, name=kind, kind=kind)
        for mode in modes:
            name = f"{mode}_{kind}"
            reg[name] = partial(ScoreStrategy, name=name, kind=kind, mode=mode)
    reg["typiclust_bald"] = partial(TypiClustStrategy, name="typiclust_bald", kind="bald")
    for mode in modes:
        name = f"{mode}_epig"
        reg[name] = partial(EPIGStrategy, name=name, mode=mode)
    for kind in kinds[:3]:
        name = f"class_balanced_{kind}"
        reg[name] = partial(ClassBalancedStrategy, name=name, kind=kind)
        name = f"class_balanced_power_{kind}"
        reg[name] = partial(ClassBalancedStrategy, name=name, kind=kind, mode="power")
    return MappingProxyType(reg)


_REGISTRY = _build_registry()


def available_strategies() -> tuple[str, ...]:
    """Names accepted by :func:`get_strategy`, sorted."""
    return tuple(sorted(_REGISTRY))


def get_strategy(name: str, **params: Any) -> Strategy:
    """Build the strategy registered as ``name`` with typed ``params``; ``name`` may carry
    keyword arguments as a spec (`parse_strategy_spec`), ``"power_bald:beta=4"``.

    E.g. ``get_strategy("power_bald", beta=2.0)``, ``get_strategy("entropy", spatial_dims=2,
    reduction="top_percentile", q=5.0)``, ``get_strategy("batchbald", num_samples=2000)``.
    """
    base, params = with_spec_options(name, params)
    try:
        factory = _REGISTRY[base]
    except KeyError:
        raise UnknownStrategyError(
            f"unknown strategy {base!r}; available: {', '.join(available_strategies())}",
            field="name",
        ) from None
    try:
        return factory(**params)
    except TypeError as exc:
        raise StrategyError(f"bad parameters for strategy {name!r}: {exc}", field="params") from exc
    except StrategyError as exc:  # a parameter's value: name the strategy as given too
        raise type(exc)(f"strategy {name!r}: {exc.message}", field=exc.field) from exc
