"""A real JupyterLab (child process, private config, token, 127.0.0.1) driven by Chromium.

Nothing is installed at test time: the CI script installs Debian's chromium first. A missing
/usr/bin/chromium fails the tests with a clear message; they never skip.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest

from tests.browser._lab import CHROMIUM, Lab, LabStartError, chromium_browser, running_lab


@pytest.fixture(scope="session")
def chromium() -> Path:
    if not CHROMIUM.is_file():
        pytest.fail(
            f"browser tests need Chromium at {CHROMIUM}: install it with "
            "`apt-get update && apt-get install -y chromium` (CI does this first)",
            pytrace=False,
        )
    return CHROMIUM


@pytest.fixture(scope="session")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    """JupyterLab on a free loopback port, with private config, runtime and settings dirs."""
    try:
        with running_lab(tmp_path_factory.mktemp("lab")) as server:
            yield server
    except LabStartError as error:
        pytest.fail(str(error), pytrace=False)


@pytest.fixture(scope="session")
def notebook7(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    """A Notebook 7 server (``jupyter notebook``), configured like the ``lab`` fixture."""
    try:
        with running_lab(tmp_path_factory.mktemp("nb7"), app="notebook") as server:
            yield server
    except LabStartError as error:
        pytest.fail(str(error), pytrace=False)


@pytest.fixture(scope="session")
def browser(chromium: Path) -> Iterator[Any]:
    with chromium_browser(chromium) as instance:
        yield instance


@pytest.fixture
def page(browser: Any, request: pytest.FixtureRequest) -> Iterator[Any]:
    """A fresh page; the test fails on any request to a host other than 127.0.0.1."""
    context = browser.new_context(viewport={"width": 1400, "height": 1100})
    pg = context.new_page()
    off_host: list[str] = []

    def check(req: Any) -> None:
        parsed = urlparse(req.url)
        if parsed.scheme in ("http", "https", "ws", "wss") and parsed.hostname != "127.0.0.1":
            off_host.append(req.url)

    pg.on("request", check)
    errors: list[str] = []
    pg.on("pageerror", lambda exc: errors.append(str(exc)))
    yield pg
    context.close()
    assert not off_host, f"requests left 127.0.0.1: {off_host}"
    assert not [e for e in errors if "annotator" in e.lower()], errors
