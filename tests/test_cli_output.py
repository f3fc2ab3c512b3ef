"""Progress on the command line when stderr is not a terminal (a notebook cell, a log file)."""

from __future__ import annotations

import pytest

from workbench._cli_output import ProgressBar


def test_progress_prints_plain_lines_when_stderr_is_not_a_terminal(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with ProgressBar("simulating", plain_every_s=0.0) as advance:
        for done in (1, 2, 3):
            advance(done, 3)
    assert capsys.readouterr().err.splitlines() == [
        "simulating: 1/3",
        "simulating: 2/3",
        "simulating: 3/3",
    ]


def test_plain_lines_are_throttled_but_the_end_is_always_printed(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with ProgressBar("scoring the pool", plain_every_s=3600.0) as advance:
        for done in range(1, 101):
            advance(done, 100)
    assert capsys.readouterr().err.splitlines() == ["scoring the pool: 100/100"]
    with ProgressBar("training (epochs)", plain_every_s=3600.0) as advance:
        for done in range(1, 6):  # early stopping: 5 of at most 20 epochs
            advance(done, 20)
    assert capsys.readouterr().err.splitlines() == ["training (epochs): 5/20"]
