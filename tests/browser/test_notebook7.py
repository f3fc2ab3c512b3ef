"""The annotator in Notebook 7 (``jupyter notebook``): the tree page loads, the widget renders in
``/notebooks/NB.ipynb`` and one keyboard classification reaches the store."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from tests.browser._lab import Lab, open_and_run, screenshot, wait_until
from tests.browser.test_annotator_browser import (
    annotator_notebook,
    current_item,
    item_changed,
    make_project,
)
from workbench.store import LabelSource, Task

pytestmark = pytest.mark.browser


def test_notebook7_renders_and_labels_by_keyboard(page: Any, notebook7: Lab) -> None:
    store = make_project(
        notebook7,
        "nb7",
        Task.CLASSIFICATION,
        ("normal", "abnormal"),
        [np.full((40, 40), v, np.uint8) for v in (30, 200)],
    )
    notebook = annotator_notebook(notebook7, "nb7")
    page.goto(f"{notebook7.url}/tree?token={notebook7.token}")
    page.get_by_text(notebook.name).first.wait_for(timeout=60_000)
    root = open_and_run(page, notebook7, notebook, url_path="notebooks")
    screenshot(root, "notebook7_annotator")
    root.focus()
    before = current_item(root)
    page.keyboard.press("2")
    item_changed(page, before)
    (label,) = wait_until(store.current_labels, what="a label from Notebook 7")
    assert label.class_index == 1 and label.source is LabelSource.HUMAN
    assert label.item_id == int(before)
