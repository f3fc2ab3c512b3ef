"""Import throughput: `workbench import` against the loop a user would otherwise write.

    .venv/bin/python benchmarks/bench_import.py [--quick]

Workloads (data generated here, written to a temporary folder):
  * 10,000 PNG slices (256x256, 16-bit, from a smooth phantom with per-slice noise);
  * one 300-slice 512x512 CT DICOM series (int16, RescaleSlope/Intercept, shuffled file names).
Alternative: MONAI's ``LoadImage`` per file / per series folder (the loader a MONAI user reaches
for), hashing each image and inserting one row per item into SQLite with a commit each — i.e.
the same job (read, validate, hash, record) written the obvious way.
Writes benchmarks/results/import.json with items/s for both and the ratio.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import platform
import random
import sqlite3
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image
from pydicom.dataset import FileDataset, FileMetaDataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid

from workbench.ingest import LabelPolicy, import_sources
from workbench.store import ProjectConfig, Task, create_project

RESULTS = Path(__file__).resolve().parent / "results" / "import.json"


def write_png_slices(folder: Path, count: int, size: int = 256) -> None:
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:size, :size]
    phantom = (2000 + 1500 * np.sin(xx / 17.0) * np.cos(yy / 23.0)).astype(np.float32)
    for n in range(count):
        noise = rng.normal(0, 40, size=(size, size)).astype(np.float32)
        slice_ = np.clip(phantom + noise + 5 * n, 0, 65535).astype(np.uint16)
        Image.fromarray(slice_).save(folder / f"slice_{n:05d}.png")


def write_dicom_series(folder: Path, slices: int, size: int = 512) -> None:
    folder.mkdir(parents=True)
    rng = np.random.default_rng(1)
    series_uid, study_uid, frame_uid = generate_uid(), generate_uid(), generate_uid()
    names = list(range(slices))
    random.Random(2).shuffle(names)
    base = rng.integers(0, 1200, size=(size, size), dtype=np.int16)
    for index, name in zip(range(slices), names, strict=True):
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = CTImageStorage
        meta.MediaStorageSOPInstanceUID = generate_uid()
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds = FileDataset(str(folder / f"{name:04d}.dcm"), {}, file_meta=meta, preamble=b"\0" * 128)
        ds.SOPClassUID, ds.SOPInstanceUID = CTImageStorage, meta.MediaStorageSOPInstanceUID
        ds.Modality, ds.SeriesInstanceUID, ds.StudyInstanceUID = "CT", series_uid, study_uid
        ds.FrameOfReferenceUID = frame_uid
        ds.InstanceNumber = name + 1  # deliberately not the spatial order
        ds.ImagePositionPatient = [-125.0, -125.0, -150.0 + 1.25 * index]
        ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
        ds.PixelSpacing, ds.SliceThickness = [0.49, 0.49], 1.25
        ds.Rows = ds.Columns = size
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
        ds.RescaleSlope, ds.RescaleIntercept = 1, -1024
        ds.PixelData = np.roll(base, index, axis=0).tobytes()
        ds.save_as(folder / f"{name:04d}.dcm", enforce_file_format=True)


def workbench_import(source: Path, work: Path, name: str) -> tuple[float, int]:
    config = ProjectConfig(name, Task.CLASSIFICATION, ("a", "b"))
    store = create_project(work / f"wb-{name}", config)
    start = time.perf_counter()
    report = import_sources(store, [source], labels=LabelPolicy.IGNORE)
    elapsed = time.perf_counter() - start
    store.close()
    return elapsed, report.added


def monai_loop(paths: list[Path], work: Path, name: str) -> tuple[float, int]:
    from monai.transforms import LoadImage

    loader = LoadImage(image_only=True)
    db = sqlite3.connect(work / f"monai-{name}.db")
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("CREATE TABLE items (key TEXT PRIMARY KEY, uri TEXT, hash TEXT, shape TEXT)")
    start = time.perf_counter()
    for path in paths:
        array = np.asarray(loader(str(path)))
        digest = hashlib.sha256(np.ascontiguousarray(array).tobytes()).hexdigest()
        db.execute(
            "INSERT INTO items VALUES (?, ?, ?, ?)",
            (path.name, str(path), digest, json.dumps(array.shape)),
        )
        db.commit()
    elapsed = time.perf_counter() - start
    db.close()
    return elapsed, len(paths)


def measure(
    label: str, items_label: str, ours: tuple[float, int], theirs: tuple[float, int]
) -> dict[str, object]:
    (t_ours, n_ours), (t_theirs, n_theirs) = ours, theirs
    row = {
        "workload": label,
        "unit": items_label,
        "workbench_items": n_ours,
        "workbench_seconds": round(t_ours, 3),
        "workbench_items_per_s": round(n_ours / t_ours, 2),
        "monai_loop_items": n_theirs,
        "monai_loop_seconds": round(t_theirs, 3),
        "monai_loop_items_per_s": round(n_theirs / t_theirs, 2),
        "speedup": round((n_ours / t_ours) / (n_theirs / t_theirs), 2),
    }
    print(json.dumps(row))
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1,000 PNGs and a 60-slice series")
    args = parser.parse_args()
    n_png, n_slices = (1000, 60) if args.quick else (10_000, 300)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        pngs = work / "pngs"
        write_png_slices(pngs, n_png)
        rows.append(
            measure(
                f"{n_png} PNG slices 256x256 uint16",
                "images",
                workbench_import(pngs, work, "png"),
                monai_loop(sorted(pngs.iterdir()), work, "png"),
            )
        )
        dicom = work / "dicom"
        write_dicom_series(dicom, n_slices)
        ours_t, ours_n = workbench_import(dicom, work, "dicom")
        theirs_t, theirs_n = monai_loop([dicom], work, "dicom")
        assert ours_n == theirs_n == 1
        rows.append(
            measure(
                f"{n_slices}-slice 512x512 DICOM series",
                "slices",
                (ours_t, n_slices),
                (theirs_t, n_slices),
            )
        )
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(
        json.dumps({"machine": platform.platform(), "quick": args.quick, "results": rows}, indent=2)
    )
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
