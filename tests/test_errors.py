"""The shared error type: where it happened, then the path and field, then what went wrong."""

from __future__ import annotations

import pickle

from workbench.errors import WorkbenchError
from workbench.strategies import StrategyError


def test_context_comes_first_and_nests() -> None:
    error = StrategyError("beta must be >= 0", field="beta")
    assert str(error) == "field 'beta': beta must be >= 0"
    error.add_context("power_bald, seed 3")
    assert str(error) == "power_bald, seed 3: field 'beta': beta must be >= 0"
    error.add_context("simulation")
    assert error.context == "simulation: power_bald, seed 3"
    assert str(error).startswith("simulation: power_bald, seed 3: field 'beta'")


def test_an_error_with_context_crosses_a_process_boundary() -> None:
    error = WorkbenchError("NaN loss", path="/data/x.npz")
    error.add_context("random, seed 0")
    back = pickle.loads(pickle.dumps(error))  # as a worker process returns it
    assert str(back) == "random, seed 0: /data/x.npz: NaN loss"
    assert back.context == "random, seed 0" and back.path == "/data/x.npz"
