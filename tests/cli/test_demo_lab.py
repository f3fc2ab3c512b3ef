"""`workbench demo --lab`: the README's main job creates the demo projects and serves JupyterLab
on 127.0.0.1 behind a token."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, b""


def test_demo_creates_projects_and_serves_lab_with_a_token(tmp_path: Path) -> None:
    port, token = _free_port(), "demo-test-token-123"
    env = dict(
        os.environ,
        WORKBENCH_LAB_TOKEN=token,
        JUPYTER_CONFIG_DIR=str(tmp_path / "cfg"),
        JUPYTER_RUNTIME_DIR=str(tmp_path / "rt"),
        JUPYTER_DATA_DIR=str(tmp_path / "data"),
    )
    lab = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "workbench.cli",
            "demo",
            str(tmp_path / "demo"),
            "--lab",
            "--port",
            str(port),
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    assert lab.stderr is not None  # stderr=PIPE
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 180
        status = 0
        while time.monotonic() < deadline and lab.poll() is None:
            try:
                status, body = _get(f"{base}/api/status?token={token}")
            except OSError:
                status = 0
            if status == 200:
                break
            time.sleep(1)
        assert status == 200, lab.stderr.read().decode() if lab.poll() is not None else status
        assert "started" in json.loads(body)
        assert _get(f"{base}/api/contents/01_annotate.ipynb")[0] == 403  # no token, no access
        code, listing = _get(f"{base}/api/contents?token={token}")
        assert code == 200
        assert "01_annotate.ipynb" in {entry["name"] for entry in json.loads(listing)["content"]}
        for name in ("breastmnist", "hippocampus"):
            assert (tmp_path / "demo" / name / "workbench.db").is_file()
    finally:
        os.killpg(lab.pid, signal.SIGTERM)
        lab.wait(timeout=30)
