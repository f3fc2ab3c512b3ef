"""Memory of patch training as the labelled set grows: the workbench's `PatchDraws` (each scan kept
once as uint8, in its own shape, patches cut and converted to float per draw; also from
memory-mapped .npy files) against the pipeline MONAI's tutorials build (a ``CacheDataset`` of
float32 image and label volumes, ``RandCropByPosNegLabeld`` with pos 1 / neg 2, as the spleen
tutorial; its labels are float32 because ``LoadImaged`` reads them so).

    .venv/bin/python benchmarks/bench_patch_memory.py [--shape 384 384 160] [--scans 4 16]

Each (pipeline, number of scans) runs in its own child process: it builds the scans (random
intensities, one 24^3 foreground block each), the dataset, then draws 4 patches of 96^3 per scan
in batches of 2, as an epoch of the recipe does. Per run: peak resident memory (ru_maxrss), the
resident memory after imports (so ``data_mib`` = peak - that), the anonymous (not file-backed)
resident memory the data holds after the epoch, the time per patch. Writes
``benchmarks/results/patch_memory.json``.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _machine import machine_info

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results" / "patch_memory.json"
PATCH = (96, 96, 96)
DRAWS_PER_SCAN = 4
BATCH = 2
PIPELINES = ("monai_cache_float32", "workbench_uint8", "workbench_mmap")


def _rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _anon_mib() -> float:
    """Resident anonymous memory now (RssAnon): what the kernel cannot drop under pressure,
    unlike the file-backed pages of a memory map, which ``ru_maxrss`` counts as well."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("RssAnon:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _scan(shape: tuple[int, ...], n: int) -> tuple[Any, Any]:
    import numpy as np

    rng = np.random.default_rng(n)
    image = rng.integers(0, 256, (1, *shape), dtype=np.uint8)
    mask = np.zeros(shape, np.uint8)
    corner = [int(rng.integers(0, s - 24)) for s in shape]
    mask[tuple(slice(c, c + 24) for c in corner)] = 1
    return image, mask


def child(pipeline: str, scans: int, shape: tuple[int, ...], folder: Path) -> dict[str, Any]:
    """Build ``scans`` scans and ``pipeline``'s dataset, draw an epoch of patches, measure."""
    sys.path.insert(0, str(REPO))
    import numpy as np
    import torch
    from monai.data import CacheDataset, DataLoader
    from monai.transforms import CastToTyped, Compose, RandCropByPosNegLabeld, ScaleIntensityRanged

    from workbench.recipes._scans import PatchDraws, ScanList

    torch.set_num_threads(1)
    torch.nn.functional.pad(torch.zeros(1, 1, 8, 8, 8), [1] * 6).float().div_(255)  # warm up
    after_imports, anon_after_imports = _rss_mib(), _anon_mib()
    start = time.perf_counter()
    patches = 0
    if pipeline == "monai_cache_float32":
        data = []
        for n in range(scans):
            image, mask = _scan(shape, n)
            data.append({"image": image, "label": mask[None]})
        cached = Compose(
            [
                ScaleIntensityRanged("image", 0, 255, 0.0, 1.0, clip=True),
                CastToTyped(["image", "label"], dtype=np.float32),
                RandCropByPosNegLabeld(
                    ["image", "label"], "label", PATCH, pos=1, neg=2, num_samples=1
                ),
            ]
        )
        dataset = CacheDataset(data, cached, cache_rate=1.0, progress=False, num_workers=0)
        del data
        built = time.perf_counter()
        for _ in range(DRAWS_PER_SCAN):
            for batch in DataLoader(dataset, batch_size=BATCH, shuffle=True, num_workers=0):
                assert tuple(batch["image"].shape[2:]) == PATCH
                patches += int(batch["image"].shape[0])
    else:
        images, masks = [], []
        for n in range(scans):
            if pipeline == "workbench_mmap":
                images.append(np.load(folder / f"image{n}.npy", mmap_mode="r"))
                masks.append(np.load(folder / f"mask{n}.npy", mmap_mode="r"))
            else:
                image, mask = _scan(shape, n)
                images.append(image)
                masks.append(mask)
        draws = PatchDraws(ScanList(images, masks, 3), PATCH, seed=0)
        built = time.perf_counter()
        order = [(n % scans, d) for d, n in enumerate(range(scans * DRAWS_PER_SCAN))]
        for at in range(0, len(order), BATCH):
            batch = draws.__getitems__(order[at : at + BATCH])
            assert tuple(batch["image"].shape[2:]) == PATCH
            patches += int(batch["image"].shape[0])
    done = time.perf_counter()
    peak, anon = _rss_mib(), _anon_mib()  # the scans are still held here
    return {
        "pipeline": pipeline,
        "scans": scans,
        "shape": list(shape),
        "patches": patches,
        "build_s": round(built - start, 2),
        "ms_per_patch": round((done - built) / patches * 1000, 1),
        "rss_after_imports_mib": round(after_imports),
        "peak_rss_mib": round(peak),
        "data_mib": round(peak - after_imports),
        "anon_data_mib_after_epoch": round(anon - anon_after_imports),
    }


def _write_scans(folder: Path, shape: tuple[int, ...], count: int) -> None:
    import numpy as np

    for n in range(count):
        image, mask = _scan(shape, n)
        np.save(folder / f"image{n}.npy", image)
        np.save(folder / f"mask{n}.npy", mask)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shape", type=int, nargs=3, default=[384, 384, 160])
    parser.add_argument("--scans", type=int, nargs="+", default=[4, 16])
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)  # pipeline scans folder
    args = parser.parse_args()
    shape = tuple(args.shape)
    if args.child:
        pipeline, scans, folder = args.child
        print(json.dumps(child(pipeline, int(scans), shape, Path(folder))))
        return
    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        _write_scans(Path(tmp), shape, max(args.scans))
        for scans in args.scans:
            for pipeline in PIPELINES:
                cmd = [
                    sys.executable,
                    __file__,
                    "--shape",
                    *map(str, shape),
                    "--child",
                    pipeline,
                    str(scans),
                    tmp,
                ]
                out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
                runs.append(json.loads(out.strip().splitlines()[-1]))
                print(runs[-1], flush=True)
    ratios = {}
    for scans in args.scans:
        by = {r["pipeline"]: r for r in runs if r["scans"] == scans}
        monai = by["monai_cache_float32"]
        ratios[str(scans)] = (
            {
                f"monai_over_{name}_data_memory": round(
                    monai["data_mib"] / max(by[name]["data_mib"], 1), 2
                )
                for name in ("workbench_uint8", "workbench_mmap")
            }
            | {
                f"monai_over_{name}_anon_memory_after_epoch": round(
                    monai["anon_data_mib_after_epoch"]
                    / max(by[name]["anon_data_mib_after_epoch"], 1),
                    2,
                )
                for name in ("workbench_uint8", "workbench_mmap")
            }
            | {
                f"{name}_over_monai_time_per_patch": round(
                    by[name]["ms_per_patch"] / monai["ms_per_patch"], 2
                )
                for name in ("workbench_uint8", "workbench_mmap")
            }
        )
    result = {
        "machine": machine_info(),
        "patch": list(PATCH),
        "draws_per_scan": DRAWS_PER_SCAN,
        "batch": BATCH,
        "runs": runs,
        "ratios_by_scans": ratios,
    }
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(ratios, indent=2))


if __name__ == "__main__":
    main()
