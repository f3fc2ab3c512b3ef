"""Strategy specs: a registry name with keyword arguments in one string, for the CLI and
benchmarks, e.g. ``power_bald:beta=4`` or ``power_entropy:beta=2:mode=softrank``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from workbench.strategies._errors import StrategyError

SpecValue = int | float | str


def _value(text: str) -> SpecValue:
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def parse_strategy_spec(spec: str) -> tuple[str, dict[str, SpecValue]]:
    """``"name[:key=value]..."`` as (name, keyword arguments); values are ints, floats or
    else strings. Refuses a malformed or repeated option by name; the name itself is checked
    by the registry."""
    name, *options = spec.split(":")
    params: dict[str, SpecValue] = {}
    for option in options:
        key, sep, value = option.partition("=")
        if not sep or not key.isidentifier() or not value:
            raise StrategyError(
                f"strategy {spec!r}: option {option!r} is not key=value", field="strategy"
            )
        if key in params:
            raise StrategyError(f"strategy {spec!r}: {key!r} given twice", field="strategy")
        params[key] = _value(value)
    return name.strip(), params


def with_spec_options(spec: str, params: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    """The registry name of ``spec`` and its options merged with ``params``; an option given
    both ways is refused."""
    name, options = parse_strategy_spec(spec)
    twice = sorted(options.keys() & params.keys())
    if twice:
        raise StrategyError(f"strategy {spec!r}: {', '.join(twice)} given twice", field="params")
    return name, {**options, **params}
