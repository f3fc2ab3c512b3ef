"""Demo projects built from the data bundled in the package, and JupyterLab opened on them."""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import sys
from collections.abc import Callable
from importlib import resources
from pathlib import Path

from workbench.errors import ProjectNotFoundError, WorkbenchError
from workbench.ingest import LabelPolicy, import_sources
from workbench.store import ProjectConfig, SQLiteStore, Task, create_project, open_project

DEMO_DATA = Path(str(resources.files("workbench") / "demo_data"))
NOTEBOOK = "01_annotate.ipynb"

_DEMOS: tuple[tuple[str, ProjectConfig, str], ...] = (
    (
        "breastmnist",
        ProjectConfig(
            name="BreastMNIST demo",
            task=Task.CLASSIFICATION,
            classes=("malignant", "normal or benign"),
        ),
        "breastmnist/breastmnist.npz",
    ),
    (
        "hippocampus",
        ProjectConfig(
            name="Hippocampus demo",
            task=Task.SEGMENTATION,
            classes=("background", "anterior", "posterior"),
        ),
        "hippocampus",
    ),
)


def create_demo_projects(
    root: str | Path, progress: Callable[[int, int | None], None] | None = None
) -> list[Path]:
    """Create (or complete) the demo projects under ``root``; returns their folders.

    The bundled labels are held back as hidden ground truth: annotators label from scratch, and
    ``workbench simulate`` can use them as the oracle.
    """
    root = Path(root)
    made = []
    for folder, config, source in _DEMOS:
        path = root / folder
        store = _open_or_create(path, config)
        with store:
            import_sources(
                store, [DEMO_DATA / source], labels=LabelPolicy.GROUND_TRUTH, progress=progress
            )
        made.append(path)
    return made


def _open_or_create(path: Path, config: ProjectConfig) -> SQLiteStore:
    try:
        return open_project(path)
    except ProjectNotFoundError:
        return create_project(path, config)


def notebooks_dir() -> Path:
    """The repository's notebooks folder (the demo opens Lab there)."""
    return Path(__file__).resolve().parents[1] / "notebooks"


def open_lab(demo_root: str | Path, *, port: int = 8888) -> int:
    """Run JupyterLab on 127.0.0.1 with a token (``WORKBENCH_LAB_TOKEN`` or a random one),
    opened on the annotation notebook; returns its exit status."""
    if shutil.which("jupyter", path=str(Path(sys.executable).parent)) is None:
        raise WorkbenchError(
            "JupyterLab is not installed in this environment: run 'bash .ci/setup'",
            path=sys.executable,
        )
    token = os.environ.get("WORKBENCH_LAB_TOKEN") or secrets.token_urlsafe(24)
    env = dict(os.environ, WORKBENCH_DEMO_DIR=str(Path(demo_root).resolve()))
    command = [
        str(Path(sys.executable).parent / "jupyter"),
        "lab",
        "--no-browser",
        "--ip=127.0.0.1",
        f"--port={port}",
        "--ServerApp.port_retries=0",  # fail on a taken port rather than move silently
        f"--IdentityProvider.token={token}",
        f"--ServerApp.root_dir={notebooks_dir()}",
        f"--LabApp.default_url=/lab/tree/{NOTEBOOK}",
    ]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        command.append("--allow-root")  # containers often run as root
    return subprocess.call(command, env=env)
