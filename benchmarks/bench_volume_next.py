"""Submit -> next volume shown, in the annotation session: reading the next scan ahead in a
thread (what the annotator widget does for items too large to send ahead) against reading it
when it is needed (what it did before).

    .venv/bin/python benchmarks/bench_volume_next.py [--volumes 6] [--think-s 3]

A segmentation project of ``--volumes`` CT-like 512x512x200 int16 volumes saved as ``.nii.gz``
(smooth anatomy-like structure plus noise, so gzip has real work). A simulated annotator spends
``--think-s`` seconds on each volume, then submits its mask; the figure is the time from the
submit call to the next volume being ready to show (the store write included). While the
annotator "thinks", the main thread wakes every millisecond and records how late it wakes: what
a read running in the other thread costs the kernel (strokes are handled on this thread).
Writes ``benchmarks/results/volume_next.json``.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from _machine import machine_info  # benchmarks/, the script's own folder

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from workbench.store import NewItem, ProjectConfig, Task, create_project  # noqa: E402
from workbench.widgets import AnnotationSession  # noqa: E402

RESULTS = REPO / "benchmarks" / "results" / "volume_next.json"
SHAPE = (512, 512, 200)


def make_volume(seed: int) -> np.ndarray:
    """A CT-like int16 volume: air, a body ellipse of soft tissue, a bright 'spine', noise."""
    rng = np.random.default_rng(seed)
    x, y = np.meshgrid(np.linspace(-1, 1, SHAPE[0]), np.linspace(-1, 1, SHAPE[1]), indexing="ij")
    body = (x / 0.8) ** 2 + (y / 0.6) ** 2 < 1
    spine = (x**2 + (y + 0.35) ** 2) < 0.01
    plane = np.where(body, 40, -1000) + np.where(spine, 700, 0)
    vol = np.repeat(plane[:, :, None], SHAPE[2], axis=2).astype(np.int16)
    vol += rng.normal(0, 20, SHAPE).astype(np.int16)
    return vol


def write_volumes(folder: Path, n: int) -> list[Path]:
    import nibabel as nib

    folder.mkdir(parents=True)
    paths = []
    for k in range(n):
        path = folder / f"ct{k}.nii.gz"
        nib.save(nib.Nifti1Image(make_volume(k), np.diag([0.8, 0.8, 1.5, 1.0])), str(path))
        paths.append(path)
    return paths


def make_project(folder: Path, scans: list[Path]) -> Path:
    store = create_project(folder, ProjectConfig("ct", Task.SEGMENTATION, ("background", "organ")))
    store.add_items(
        [
            NewItem(p.stem, str(p), f"h{k}", "CT", SHAPE, (0.8, 0.8, 1.5))
            for k, p in enumerate(scans)
        ]
    )
    store.close()
    return folder


def think(seconds: float) -> list[float]:
    """Sleep ``seconds`` in 1 ms naps; returns how late each wake-up was (ms)."""
    late = []
    end = time.perf_counter() + seconds
    while (now := time.perf_counter()) < end:
        time.sleep(0.001)
        late.append((time.perf_counter() - now) * 1000 - 1.0)
    return late


def run(folder: Path, annotator: str, read_ahead: bool, think_s: float) -> dict[str, Any]:
    from workbench.store import open_project

    store = open_project(folder)
    session = AnnotationSession(store, annotator)
    session.next()
    waits, lateness = [], []
    try:
        while session.item is not None:
            if read_ahead:
                session.read_ahead()
            lateness += think(think_s)
            start = time.perf_counter()
            session.submit_mask()  # submits, then shows the next volume
            waits.append((time.perf_counter() - start) * 1000)
    finally:
        session.close()
        store.close()
    # the first volume was read before any read-ahead could run: not counted; the last
    # submit has no next volume
    shown = waits[:-1]
    return {
        "submit_to_next_volume_ms": {
            "n": len(shown),
            "p50": round(float(np.median(shown)), 1),
            "max": round(float(np.max(shown)), 1),
            "all": [round(v, 1) for v in shown],
        },
        "main_thread_late_wakeup_ms": {
            "p50": round(float(np.percentile(lateness, 50)), 2),
            "p99": round(float(np.percentile(lateness, 99)), 2),
            "max": round(float(np.max(lateness)), 1),
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--volumes", type=int, default=6)
    parser.add_argument("--think-s", type=float, default=3.0)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    result: dict[str, Any] = {
        "benchmark": "volume_next",
        "when": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "machine": machine_info(),
        "settings": {
            "volumes": args.volumes,
            "shape": list(SHAPE),
            "format": ".nii.gz int16",
            "think_s": args.think_s,
        },
    }
    with tempfile.TemporaryDirectory() as tmp:
        scans = write_volumes(Path(tmp) / "scans", args.volumes)
        result["settings"]["file_mb"] = round(
            sum(p.stat().st_size for p in scans) / len(scans) / 2**20, 1
        )
        # the same files in two projects, one per way of reading
        for name, ahead in (("read_when_needed", False), ("read_ahead", True)):
            folder = make_project(Path(tmp) / name, scans)
            result[name] = run(folder, "ann", ahead, args.think_s)
    before = result["read_when_needed"]["submit_to_next_volume_ms"]["p50"]
    after = result["read_ahead"]["submit_to_next_volume_ms"]["p50"]
    result["speedup_p50"] = round(before / max(after, 1e-9), 2)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
