"""``workbench train`` and ``workbench query`` (the active-learning loop on a project)."""

from __future__ import annotations

import argparse


def register_loop_commands(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add the loop's subcommands to the ``workbench`` parser."""
