"""Strategy specs: a registry name with keyword arguments in one string."""

from __future__ import annotations

import numpy as np
import pytest

from workbench.strategies import (
    StrategyError,
    UnknownStrategyError,
    get_strategy,
    parse_strategy_spec,
    with_spec_options,
)


def test_a_spec_parses_to_the_name_and_typed_keyword_arguments() -> None:
    assert parse_strategy_spec("bald") == ("bald", {})
    name, params = parse_strategy_spec("power_entropy:beta=2.5:mode=softrank:num_targets=50")
    assert name == "power_entropy"
    assert params == {"beta": 2.5, "mode": "softrank", "num_targets": 50}
    assert isinstance(params["num_targets"], int) and isinstance(params["beta"], float)


@pytest.mark.parametrize(
    ("spec", "reason"),
    [
        ("power_bald:beta", "option 'beta' is not key=value"),
        ("power_bald:beta=", "option 'beta=' is not key=value"),
        ("power_bald:=2", "option '=2' is not key=value"),
        ("power_bald:2x=1", "option '2x=1' is not key=value"),
        ("power_bald:beta=2:beta=3", "'beta' given twice"),
    ],
)
def test_a_malformed_spec_is_refused_naming_the_option(spec: str, reason: str) -> None:
    with pytest.raises(StrategyError, match=reason):
        parse_strategy_spec(spec)


def test_get_strategy_builds_a_spec_like_the_same_keyword_arguments() -> None:
    assert get_strategy("power_bald:beta=4") == get_strategy("power_bald", beta=4)
    spec = get_strategy("power_bald:beta=4")
    probs = np.random.default_rng(0).dirichlet(np.ones(3), size=(40, 6))  # [N, T, C]
    picks = spec(k=5, probs=probs, rng=1).indices
    np.testing.assert_array_equal(
        picks, get_strategy("power_bald", beta=4)(k=5, probs=probs, rng=1).indices
    )
    assert get_strategy("entropy:reduction=top_percentile:q=5", spatial_dims=2) == get_strategy(
        "entropy", reduction="top_percentile", q=5, spatial_dims=2
    )


@pytest.mark.parametrize(
    ("spec", "params", "error", "reason"),
    [
        ("nope:beta=2", {}, UnknownStrategyError, "unknown strategy 'nope'"),
        ("power_bald:gamma=2", {}, StrategyError, "unexpected keyword argument 'gamma'"),
        ("power_bald:beta=-1", {}, StrategyError, "beta must be a finite number >= 0, got -1"),
        ("power_bald:beta=x", {}, StrategyError, "beta must be a finite number >= 0, got 'x'"),
        ("power_bald:beta=4", {"beta": 2.0}, StrategyError, "beta given twice"),
        ("power_epig:beta=inf", {}, StrategyError, "beta must be a finite number"),
    ],
)
def test_a_bad_spec_is_refused_when_the_strategy_is_built(
    spec: str, params: dict[str, object], error: type[Exception], reason: str
) -> None:
    with pytest.raises(error, match=reason):
        get_strategy(spec, **params)


def test_a_specs_options_merge_with_keyword_arguments_unless_given_twice() -> None:
    assert with_spec_options("power_bald:beta=4", {"mode": "softrank"}) == (
        "power_bald",
        {"beta": 4, "mode": "softrank"},
    )
    with pytest.raises(StrategyError, match="beta given twice"):
        with_spec_options("power_bald:beta=4", {"beta": 1.0})
