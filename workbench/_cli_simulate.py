"""``workbench simulate``: compare strategies on already-labelled data with an oracle."""

from __future__ import annotations

import argparse


def register_simulate_command(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add ``simulate`` to the ``workbench`` parser."""
