"""Annotator latency in a real JupyterLab + Chromium, measured in the page.

* accept -> next item displayed, 512x512 classification items with a proposal (Enter key),
  and accept -> the kernel confirming that item (label stored, traits back);
* slice change on a 512x512x200 volume (ArrowUp / ArrowDown keys);
* stroke chunk -> kernel applies it -> diff back in the page (the draft is written after).

Each figure is measured by the widget itself (``performance.now()`` from the key press being
handled to the new plane being decoded, or from a stroke chunk being sent to its diff
arriving). A simulated annotator pauses ``--think-ms`` after each item is confirmed and
``--scroll-ms`` between slices (wheel scrolling runs at roughly 10-20 slices a second).

With ``--background-training`` every measurement runs twice: idle, then while a CPU-bound
training loop (a small torch CNN, one torch thread) runs in another process, in a session of
its own at the priority ``workbench.background.lower_priority`` sets (niceness
``--training-niceness`` for the process and, on Linux, its scheduler autogroup; default 10; 0 is
how training ran before that helper existed); the JSON holds both runs and the ratio of their
p95s. Writes
``benchmarks/results/annotator_browser.json``. Run: ``.venv/bin/python
benchmarks/bench_annotator_browser.py --background-training``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from _machine import machine_info  # benchmarks/, the script's own folder

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
METRICS = (
    "accept_to_next_item_512x512",
    "accept_to_kernel_confirmed_512x512",
    "slice_change_512x512x200",
    "stroke_to_mask_in_python_512x512x200",
    "stroke_chunk_round_trip_512x512x200",
)


def stats(values: list[float]) -> dict[str, float]:
    arr = np.asarray(values, float)
    if arr.size == 0:
        return {"n": 0}
    return {
        "n": int(arr.size),
        "p50_ms": round(float(np.percentile(arr, 50)), 2),
        "p95_ms": round(float(np.percentile(arr, 95)), 2),
        "max_ms": round(float(arr.max()), 2),
    }


def classification_project(lab: Lab, name: str, n: int) -> None:
    from PIL import Image

    folder = lab.root / name
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


def volume_project(lab: Lab, name: str) -> None:
    import nibabel as nib

    folder = lab.root / name
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
        " return r && (r.getAttribute(n) || '') !== b; }",
        arg=[name, before],
        timeout=timeout_ms,
    )


def confirmed(page: Any) -> None:
    """Wait until the kernel's view (status item) matches the item on the canvas."""
    page.wait_for_function(
        "() => { const r = [...document.querySelectorAll('.wb-annotator')].pop();"
        " const c = r.querySelector('canvas'); const s = r.querySelector('.wb-status');"
        " return (c.dataset.viewKey || '').split(':')[0] === s.dataset.itemId; }",
        timeout=30_000,
    )


def bench_accept(
    page: Any, lab: Lab, project: str, n: int, think_ms: int
) -> tuple[list[float], list[float]]:
    nb = write_notebook(
        lab,
        f"{project}.ipynb",
        [
            "from workbench.widgets import Annotator\n"
            f"w = Annotator({str(lab.root / project)!r}, 'bench')\nw"
        ],
    )
    root = open_and_run(page, lab, nb)
    root.focus()
    page.wait_for_timeout(1000)  # the next item is sent ahead after the first is shown
    shown, confirm = [], []
    for _ in range(n - 1):
        before = attr(root, "data-loads")
        confirm_before = attr(root, "data-last-confirm-ms")
        page.keyboard.press("Enter")
        wait_attr_change(page, "data-loads", before)
        shown.append(float(attr(root, "data-last-load-ms")))
        confirmed(page)
        page.wait_for_timeout(think_ms)
        after = attr(root, "data-last-confirm-ms")
        if after and after != confirm_before:
            confirm.append(float(after))
    return shown, confirm


def bench_slices(page: Any, lab: Lab, project: str, n: int, scroll_ms: int) -> list[float]:
    nb = write_notebook(
        lab,
        f"{project}.ipynb",
        [
            "from workbench.widgets import Annotator\n"
            f"w = Annotator({str(lab.root / project)!r}, 'bench')\nw"
        ],
    )
    root = open_and_run(page, lab, nb, timeout_ms=180_000)
    root.focus()
    page.wait_for_timeout(1500)  # neighbouring slices are sent after the first is shown
    times = []
    for k in range(n):
        before = attr(root, "data-loads")
        page.keyboard.press("ArrowUp" if k % 40 < 20 else "ArrowDown")
        wait_attr_change(page, "data-loads", before)
        times.append(float(attr(root, "data-last-load-ms")))
        page.wait_for_timeout(scroll_ms)
    return times


def bench_strokes(page: Any, lab: Lab, n: int) -> tuple[list[float], list[list[float]]]:
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
    splits = [
        [float(v) for v in row.split(",")]
        for row in attr(root, "data-stroke-split-ms").split(";")
        if row
    ]
    return [float(v) for v in raw.split(",") if v], splits


def train_forever(niceness: int, watch: list[Path]) -> None:
    """A CPU-bound training loop (small CNN on random 64x64 images), one torch thread, at
    niceness ``niceness`` (as ``workbench.background.lower_priority`` sets it); before each
    step it yields to annotators of the ``watch`` projects as `workbench.loop.YieldToAnnotators`
    does (``wait_while_annotating``)."""
    import torch
    from torch import nn

    from workbench.background import lower_priority, wait_while_annotating

    priority = lower_priority(niceness, threads=1)
    torch.manual_seed(0)
    net = nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 3, padding=1),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(32, 2),
    )
    opt = torch.optim.SGD(net.parameters(), lr=0.01)
    x, y = torch.randn(32, 1, 64, 64), torch.randint(0, 2, (32,))
    steps = 0
    print("ready", priority.niceness, priority.autogroup_niceness, flush=True)
    waited = 0.0
    while True:
        for project in watch:
            waited += wait_while_annotating(project)
        opt.zero_grad()
        nn.functional.cross_entropy(net(x), y).backward()
        opt.step()
        steps += 1
        if steps % 50 == 0:
            print(steps, f"waited={waited:.1f}", flush=True)


def measure(browser: Any, lab: Lab, args: argparse.Namespace, tag: str) -> dict[str, Any]:
    """One pass of the three flows on fresh projects named after ``tag``; raw samples (ms)."""
    classification_project(lab, f"bench_cls_{tag}", args.items)
    volume_project(lab, f"bench_vol_{tag}")
    context = browser.new_context(viewport={"width": 1400, "height": 1100})
    page = context.new_page()
    started = time.time()
    shown, confirm = bench_accept(page, lab, f"bench_cls_{tag}", args.items, args.think_ms)
    slices = bench_slices(page, lab, f"bench_vol_{tag}", args.slices, args.scroll_ms)
    strokes, splits = bench_strokes(page, lab, args.strokes)
    context.close()
    return {
        "accept_to_next_item_512x512": shown,
        "accept_to_kernel_confirmed_512x512": confirm,
        "slice_change_512x512x200": slices,
        "stroke_to_mask_in_python_512x512x200": [row[3] for row in splits],
        "stroke_chunk_round_trip_512x512x200": strokes,
        "stroke_chunk_split": splits,
        "seconds": time.time() - started,
    }


def summarise(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Pool the samples of ``runs`` (repetitions of ``measure``) into percentiles; the p95 of
    each repetition alone is kept too, to show how much it moves between repetitions."""
    out: dict[str, Any] = {}
    for name in METRICS:
        out[name] = stats([v for run in runs for v in run[name]])
        if len(runs) > 1:
            out[name]["p95_ms_per_repeat"] = [stats(run[name]).get("p95_ms") for run in runs]
    split = np.asarray([row for run in runs for row in run["stroke_chunk_split"]], float).reshape(
        -1, 4
    )
    for q, key in ((50, "stroke_chunk_split_p50_ms"), (95, "stroke_chunk_split_p95_ms")):
        out[key] = {
            name: round(float(np.percentile(split[:, k], q)), 1) if len(split) else None
            for k, name in enumerate(("page_to_kernel", "in_kernel", "kernel_to_page"))
        }
    out["seconds"] = round(sum(run["seconds"] for run in runs), 1)
    return out


def measure_while_training(
    browser: Any,
    lab: Lab,
    args: argparse.Namespace,
    tag: str,
    info: list[tuple[int, float, str, str]],
) -> dict[str, Any]:
    """``measure`` while ``train_forever`` runs in a session of its own (as
    ``workbench.background.train_in_background`` starts it); appends (steps, seconds paused,
    process niceness, autogroup niceness) to ``info``."""
    watch = (
        []
        if args.no_yield
        else [
            arg
            for kind in ("cls", "vol")
            for arg in ("--watch", str(lab.root / f"bench_{kind}_{tag}"))
        ]
    )
    trainer = subprocess.Popen(
        [
            sys.executable,
            __file__,
            "--train-worker",
            "--training-niceness",
            str(args.training_niceness),
            *watch,
        ],
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        assert trainer.stdout is not None
        _, nice, group = trainer.stdout.readline().split()  # "ready": the loop starts
        time.sleep(1)
        samples = measure(browser, lab, args, tag)
    finally:
        trainer.terminate()
        out, _ = trainer.communicate(timeout=30)
    steps = [int(v) for v in out.split() if v.isdigit()]
    waits = [float(v.split("=")[1]) for v in out.split() if v.startswith("waited=")]
    info.append((steps[-1] if steps else 0, waits[-1] if waits else 0.0, nice, group))
    return samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--items", type=int, default=40)
    parser.add_argument("--slices", type=int, default=40)
    parser.add_argument("--strokes", type=int, default=20)
    parser.add_argument("--think-ms", type=int, default=150)
    parser.add_argument("--scroll-ms", type=int, default=60)
    parser.add_argument("--background-training", action="store_true")
    parser.add_argument(
        "--repeats",
        type=int,
        default=1,
        help="alternate idle and training passes this many times; samples "
        "are pooled, each pass's p95 is kept",
    )
    parser.add_argument(
        "--training-niceness",
        type=int,
        default=10,
        help="niceness of the background training (0: normal priority)",
    )
    parser.add_argument(
        "--no-yield",
        action="store_true",
        help="the training does not pause while the projects are annotated",
    )
    parser.add_argument("--watch", type=Path, action="append", default=[], help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--train-worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.train_worker:
        train_forever(args.training_niceness, args.watch)
        return
    result: dict[str, Any] = {
        "benchmark": "annotator_browser",
        "when": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "machine": machine_info(),
        "settings": {
            "items": args.items,
            "slices": args.slices,
            "strokes": args.strokes,
            "repeats": args.repeats,
            "think_ms": args.think_ms,
            "scroll_ms": args.scroll_ms,
            "training_niceness": args.training_niceness if args.background_training else None,
            "training_yields_to_annotators": args.background_training and not args.no_yield,
        },
    }
    idle: list[dict[str, Any]] = []
    training: list[dict[str, Any]] = []
    trainer_info: list[tuple[int, float, str, str]] = []
    with (
        tempfile.TemporaryDirectory() as tmp,
        running_lab(Path(tmp)) as lab,
        chromium_browser() as browser,
    ):
        # idle and training alternate, so a slow drift of the machine hits both alike
        for rep in range(args.repeats):
            idle.append(measure(browser, lab, args, f"idle{rep}"))
            if args.background_training:
                training.append(
                    measure_while_training(browser, lab, args, f"training{rep}", trainer_info)
                )
    result["idle"] = summarise(idle)
    if args.background_training:
        result["while_training"] = summarise(training)
        result["while_training"]["training_steps"] = sum(t[0] for t in trainer_info)
        result["while_training"]["training_paused_s"] = round(sum(t[1] for t in trainer_info), 1)
        result["while_training"]["training_niceness"] = {
            "process": trainer_info[0][2],
            "autogroup": trainer_info[0][3],
        }
        result["training_over_idle_p95"] = {
            name: round(
                result["while_training"][name]["p95_ms"]
                / max(result["idle"][name]["p95_ms"], 1e-9),
                2,
            )
            for name in METRICS
        }
    if args.repeats > 1:
        # the noise floor: how far apart idle repetitions alone are (largest p95 / smallest)
        result["idle_spread_p95"] = {
            name: round(max(p) / max(min(p), 1e-9), 2)
            for name in METRICS
            if (p := [v for v in result["idle"][name]["p95_ms_per_repeat"] if v])
        }
    result["note"] = (
        "measured in the page: key press handled -> new plane decoded (next frame draws it); "
        "accept -> kernel confirmed (label stored, the kernel's traits name the shown item); "
        "stroke chunk sent -> its diff back from the kernel (the draft is written after)"
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
