"""The shipped notebooks run top to bottom in a real kernel on the demo data."""

from __future__ import annotations

import os
from pathlib import Path

import nbformat
from nbclient import NotebookClient

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"


def test_annotate_notebook_runs_on_the_demo_data(tmp_path: Path) -> None:
    notebook = nbformat.read(NOTEBOOKS / "01_annotate.ipynb", as_version=4)
    os.environ["WORKBENCH_DEMO_DIR"] = str(tmp_path / "demo")
    try:
        NotebookClient(
            notebook,
            timeout=300,
            kernel_name="python3",
            resources={"metadata": {"path": str(NOTEBOOKS)}},
        ).execute()
    finally:
        del os.environ["WORKBENCH_DEMO_DIR"]
    outputs = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    texts = "".join(str(o.get("data", {}).get("text/plain", "")) for o in outputs)
    assert "'total': 780" in texts  # the status cell saw the imported demo items
    assert any("image/png" in o.get("data", {}) for o in outputs)  # the gallery was drawn
    assert any("application/vnd.jupyter.widget-view+json" in o.get("data", {}) for o in outputs)
    assert (tmp_path / "demo" / "breastmnist" / "workbench.db").exists()


def test_active_learning_notebook_runs_simulation_and_loop(tmp_path: Path) -> None:
    notebook = nbformat.read(NOTEBOOKS / "02_active_learning.ipynb", as_version=4)
    NotebookClient(
        notebook,
        timeout=900,
        kernel_name="python3",
        resources={"metadata": {"path": str(tmp_path)}},
    ).execute()
    outputs = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    assert (tmp_path / "curves.png").stat().st_size > 10_000  # the learning curves were drawn
    texts = "".join(str(o.get("data", {}).get("text/plain", "")) for o in outputs)
    assert "'power_bald'" in texts and "'aulc'" in texts and "val_auc" in texts
    assert sum("image/png" in o.get("data", {}) for o in outputs) >= 2
