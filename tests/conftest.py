"""Shared fixtures. Tests that read ../shared/data fail loudly when it is missing."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("WORKBENCH_SHARED_DATA", REPO_ROOT.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The ../shared/data folder; the test fails (never skips) when it is missing."""
    if not (SHARED_DATA / "README.md").is_file():
        pytest.fail(
            f"this test needs the shared datasets at {SHARED_DATA} (set WORKBENCH_SHARED_DATA)",
            pytrace=False,
        )
    return SHARED_DATA
