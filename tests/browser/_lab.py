"""Starting a private JupyterLab and Debian's Chromium, and driving notebooks in them.

Used by the browser tests' fixtures and by ``benchmarks/bench_annotator_browser.py``.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path(os.environ.get("WORKBENCH_CHROMIUM", "/usr/bin/chromium"))
SCREENSHOTS = REPO_ROOT / "artifacts" / "screenshots"
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@dataclass
class Lab:
    url: str
    token: str
    root: Path
    process: subprocess.Popen[bytes]
    log: Path


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class LabStartError(RuntimeError):
    """JupyterLab did not come up; the message holds the end of its log."""


@contextmanager
def running_lab(base: Path, app: str = "lab") -> Iterator[Lab]:
    """Start JupyterLab (``app="lab"``) or Notebook 7 (``app="notebook"``) as a child process
    group under ``base``; stop it on exit."""
    root = base / "root"
    root.mkdir()
    env = dict(os.environ)
    for name in (
        "JUPYTER_CONFIG_DIR",
        "JUPYTER_RUNTIME_DIR",
        "JUPYTERLAB_SETTINGS_DIR",
        "JUPYTERLAB_WORKSPACES_DIR",
        "IPYTHONDIR",
    ):
        env[name] = str(base / name.lower())
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    settings = Path(env["JUPYTERLAB_SETTINGS_DIR"]) / "@jupyterlab" / "apputils-extension"
    settings.mkdir(parents=True)
    (settings / "notification.jupyterlab-settings").write_text(json.dumps({"fetchNews": "false"}))
    token, port = secrets.token_hex(16), _free_port()
    log = base / "lab.log"
    cmd = [
        sys.executable,
        "-m",
        "jupyterlab" if app == "lab" else "notebook",
        "--no-browser",
        "--ip=127.0.0.1",
        f"--port={port}",
        f"--IdentityProvider.token={token}",
        "--allow-root",
        f"--ServerApp.root_dir={root}",
    ]
    if app == "lab":
        cmd += [
            "--LabApp.expose_app_in_browser=True",
            "--LabApp.news_url=",
            "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
        ]
    else:
        cmd += ["--JupyterNotebookApp.expose_app_in_browser=True"]
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            cmd, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True, cwd=root
        )
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{url}/api/status?token={token}", timeout=2):
                    break
            except (urllib.error.URLError, OSError):
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise LabStartError(
                        f"Jupyter ({app}) did not start:\n{log.read_text()[-3000:]}"
                    ) from None
                time.sleep(0.3)
        yield Lab(url, token, root, proc, log)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)


@contextmanager
def chromium_browser(executable: Path = CHROMIUM) -> Iterator[Any]:
    """Debian's Chromium, headless, through Playwright (nothing downloaded)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        instance = pw.chromium.launch(executable_path=str(executable), args=CHROMIUM_ARGS)
        try:
            yield instance
        finally:
            instance.close()


def write_notebook(lab: Lab, name: str, cells: list[str]) -> Path:
    doc = {
        "cells": [
            {
                "cell_type": "code",
                "execution_count": None,
                "id": f"c{n}",
                "metadata": {},
                "outputs": [],
                "source": src,
            }
            for n, src in enumerate(cells)
        ],
        "metadata": {
            "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"}
        },
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    path = lab.root / name
    path.write_text(json.dumps(doc))
    return path


KERNEL_IDLE = (
    "() => { const w = window.jupyterapp && window.jupyterapp.shell.currentWidget;"
    " const k = w && w.sessionContext && w.sessionContext.session"
    " && w.sessionContext.session.kernel; return !!k && k.status === 'idle'; }"
)


def open_and_run(
    page: Any, lab: Lab, notebook: Path, timeout_ms: int = 90_000, url_path: str = "lab/tree"
) -> Any:
    """Open a notebook in Lab (``url_path="notebooks"`` for Notebook 7), run all cells, and
    return the annotator's root element."""
    reset = "&reset" if url_path.startswith("lab") else ""
    page.goto(f"{lab.url}/{url_path}/{notebook.name}?token={lab.token}{reset}")
    page.wait_for_function(KERNEL_IDLE, timeout=timeout_ms)
    page.evaluate("window.jupyterapp.commands.execute('notebook:run-all-cells')")
    return wait_widget(page, timeout_ms)


def wait_widget(page: Any, timeout_ms: int = 60_000) -> Any:
    root = page.locator(".wb-annotator").last
    root.wait_for(state="visible", timeout=timeout_ms)
    page.wait_for_function(
        "() => { const c = [...document.querySelectorAll('.wb-annotator canvas')].pop();"
        " return c && c.dataset.viewKey && Number(c.dataset.scale) > 0; }",
        timeout=timeout_ms,
    )
    return root


def screenshot(element: Any, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    element.screenshot(path=str(SCREENSHOTS / f"{name}.png"))


def wait_until(predicate: Any, timeout: float = 20.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)
