"""Every command's ``--help`` reads as written: argparse formats only the argument help, so a
``%%`` written elsewhere is printed doubled."""

from __future__ import annotations

import pytest

from workbench.cli import _parser, main


def _commands() -> list[str]:
    choices = [a.choices for a in _parser()._actions if isinstance(a.choices, dict)]
    return sorted(str(name) for name in choices[0])


def test_every_command_is_listed() -> None:
    assert {"init", "import", "status", "export", "demo", "train", "query", "simulate"} <= set(
        _commands()
    )


@pytest.mark.parametrize("command", _commands())
def test_help_prints_percent_signs_once(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main([command, "--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    assert f"workbench {command}" in out
    assert "%%" not in out


def test_simulate_help_names_its_intervals(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["simulate", "--help"])
    assert "95% t-intervals" in capsys.readouterr().out
