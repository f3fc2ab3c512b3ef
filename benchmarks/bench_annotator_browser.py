"""Annotator latency in a real JupyterLab + Chromium, measured in the page.

* accept -> next item displayed, 512x512 classification items with a proposal (Enter key);
* slice change on a 512x512x200 volume (ArrowUp key);
* stroke chunk -> kernel applies it and saves the draft -> diff back in the page.

Each figure is measured by the widget itself (``performance.now()`` from the message being sent
to the new plane being decoded, or to the stroke's diff arriving). Writes
``benchmarks/results/annotator_browser.json``. Run: ``.venv/bin/python
benchmarks/bench_annotator_browser.py [--items 40 --slices 40 --strokes 20]``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.browser._lab import (  # noqa: E402
    Lab,
    chromium_browser,
    open_and_run,
    running_lab,
    write_notebook,
)
from workbench.store import (  # noqa: E402
    ModelStatus,
    NewItem,
    Prediction,
    ProjectConfig,
    Task,
    create_project,
)

RESULTS = REPO / "benchmarks" / "results" / "annotator_browser.json"


def stats(values: list[float]) -> dict[str, float]:
    arr = np.asarray(values, float)
    return {"n": int(arr.size), "p50_ms": round(float(np.percentile(arr, 50)), 2),
            "p95_ms": round(float(np.percentile(arr, 95)), 2),
            "max_ms": round(float(arr.max()), 2)}


def classification_project(lab: Lab, n: int) -> None:
    from PIL import Image

    folder = lab.root / "bench_cls"
    store = create_project(folder, ProjectConfig("bench", Task.CLASSIFICATION, ("a", "b")))
    rng = np.random.default_rng(0)
    items = []
    for k in range(n):
        path = folder / f"img{k}.png"
        Image.fromarray(rng.integers(0, 255, (512, 512), dtype=np.uint8)).save(path)
        items.append(NewItem(f"img{k}", str(path), f"h{k}", "OT", (512, 512), (1.0, 1.0)))
    ids = store.add_items(items)
    model = store.add_model_version("bench")
    store.add_predictions(model.id, [Prediction(i, probs=np.array([0.3, 0.7])) for i in ids])
    store.update_model_version(model.id, status=ModelStatus.READY)
    store.close()


def volume_project(lab: Lab) -> None:
    import nibabel as nib

    folder = lab.root / "bench_vol"
    store = create_project(folder, ProjectConfig("vol", Task.SEGMENTATION, ("bg", "organ")))
    rng = np.random.default_rng(0)
    vol = rng.integers(-1000, 1000, (512, 512, 200), dtype=np.int16)
    path = folder / "vol.nii"
    nib.save(nib.Nifti1Image(vol, np.eye(4)), str(path))
    store.add_items([NewItem("vol", str(path), "h", "CT", (512, 512, 200), (0.8, 0.8, 1.5))])
    store.close()


def attr(root: Any, name: str) -> str:
    return str(root.get_attribute(name) or "")


def wait_attr_change(page: Any, name: str, before: str, timeout_ms: int = 30_000) -> None:
    page.wait_for_function(
        "([n, b]) => { const r = [...document.querySelectorAll('.wb-annotator')].pop();"
        " return r && (r.getAttribute(n) || '') !== b; }", arg=[name, before], timeout=timeout_ms)


def bench_accept(page: Any, lab: Lab, n: int) -> list[float]:
    nb = write_notebook(lab, "bench_cls.ipynb", [
        "from workbench.widgets import Annotator\n"
        f"w = Annotator({str(lab.root / 'bench_cls')!r}, 'bench')\nw"])
    root = open_and_run(page, lab, nb)
    root.focus()
    times = []
    for _ in range(n - 1):
        before = attr(root, "data-loads")
        page.keyboard.press("Enter")
        wait_attr_change(page, "data-loads", before)
        times.append(float(attr(root, "data-last-load-ms")))
    return times


def bench_slices(page: Any, lab: Lab, n: int) -> list[float]:
    nb = write_notebook(lab, "bench_vol.ipynb", [
        "from workbench.widgets import Annotator\n"
        f"w = Annotator({str(lab.root / 'bench_vol')!r}, 'bench')\nw"])
    root = open_and_run(page, lab, nb, timeout_ms=180_000)
    root.focus()
    times = []
    for k in range(n):
        before = attr(root, "data-loads")
        page.keyboard.press("ArrowUp" if k % 40 < 20 else "ArrowDown")
        wait_attr_change(page, "data-loads", before)
        times.append(float(attr(root, "data-last-load-ms")))
    return times


def bench_strokes(page: Any, lab: Lab, n: int) -> list[float]:
    root = page.locator(".wb-annotator").last
    canvas = root.locator("canvas")
    box = canvas.bounding_box()
    for k in range(n):
        y = box["y"] + 40 + (k % 20) * 20
        page.mouse.move(box["x"] + 40, y)
        page.mouse.down()
        for step in range(1, 16):
            page.mouse.move(box["x"] + 40 + step * 20, y)
            page.wait_for_timeout(8)
        page.mouse.up()
        page.wait_for_timeout(100)
    page.wait_for_timeout(500)
    raw = attr(root, "data-stroke-rtts-ms")
    return [float(v) for v in raw.split(",") if v]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--items", type=int, default=40)
    parser.add_argument("--slices", type=int, default=40)
    parser.add_argument("--strokes", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, running_lab(Path(tmp)) as lab, \
            chromium_browser() as browser:
        classification_project(lab, args.items)
        volume_project(lab)
        page = browser.new_context(viewport={"width": 1400, "height": 1100}).new_page()
        started = time.time()
        accept = bench_accept(page, lab, args.items)
        slices = bench_slices(page, lab, args.slices)
        strokes = bench_strokes(page, lab, args.strokes)
        result = {
            "benchmark": "annotator_browser",
            "when": time.strftime("%Y-%m-%dT%H:%M:%S"),
            "machine": {"python": platform.python_version(), "cpus": os.cpu_count(),
                        "platform": platform.platform()},
            "accept_to_next_item_512x512": stats(accept),
            "slice_change_512x512x200": stats(slices),
            "stroke_chunk_round_trip_512x512x200": stats(strokes),
            "seconds": round(time.time() - started, 1),
            "note": "measured in the page: message sent -> new plane decoded (next frame draws "
                    "it), or stroke chunk sent -> its diff back from the kernel (draft saved)",
        }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
