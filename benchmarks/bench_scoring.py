"""MC-dropout pool scoring: workbench `mc_predict` against baal 2.1 `ModelWrapper`, side by side.

Same network (a 2-conv CNN with dropout, 28x28 grey, 2 classes, trained briefly on
PneumoniaMNIST), same pool, T MC samples. Reports images/s and peak RSS growth for pools of 10k
and 100k items, the ratios, and a check that both give the same predictive distribution.
baal scores every pool whole (about 12 minutes for 100k here); ``--baal-max-items N`` times it
on the first N items only and extrapolates (said so in the JSON). Also times training on 1,000
labelled images (``train_time.json``): 3 fixed epochs of the benchmark network, and one round of
the default `ClassificationRecipe` as `workbench train` runs it (early stopping, restarts, BatchNorm
recalibration), cold and warm-started.

    python benchmarks/bench_scoring.py                       # CPU, results in benchmarks/results
    python benchmarks/bench_scoring.py --device cuda --precision 16-mixed

Needs ../shared/data (PneumoniaMNIST; the pool is real images resampled with flips and noise).
"""

from __future__ import annotations

import argparse
import copy
import ctypes
import json
import os
import platform
import re
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import psutil
import torch
from _machine import SHARED_DATA, require_shared
from lightning.pytorch.callbacks import Callback

from workbench.models import (
    ArrayDataModule,
    ArrayDataset,
    ClassificationModule,
    Precision,
    batch_loader,
    make_trainer,
    mc_predict,
    small_cnn,
)
from workbench.recipes import ClassificationRecipe, train_classifier

ROOT = Path(__file__).resolve().parents[1]
SHARED = SHARED_DATA


def entropy(probs: torch.Tensor) -> torch.Tensor:
    """Predictive entropy.  # [B, T, C] -> [B]"""
    mean = probs.mean(1)
    return -(mean * mean.clamp_min(1e-12).log()).sum(1)


class PeakRSS:
    """Peak resident memory growth of this process while the block runs: the kernel's VmHWM
    (reset through /proc/self/clear_refs) on Linux, else a 5 ms psutil sampling thread. (On
    Linux no thread runs: it would take the GIL from a host-bound GPU scorer.)"""

    def __init__(self) -> None:
        self.process = psutil.Process()
        self.linux = Path("/proc/self/clear_refs").exists()
        self.growth = 0

    def __enter__(self) -> PeakRSS:
        if self.linux:
            ctypes.CDLL("libc.so.6").malloc_trim(0)
            Path("/proc/self/clear_refs").write_text("5")
        self.before = self.process.memory_info().rss
        self.peak = self.before
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._sample, daemon=True)
        if not self.linux:
            self.thread.start()
        return self

    def _sample(self) -> None:
        while not self.done.is_set():
            self.peak = max(self.peak, self.process.memory_info().rss)
            time.sleep(0.005)

    def __exit__(self, *exc: object) -> None:
        self.done.set()
        if self.thread.is_alive():
            self.thread.join()
        peak = self.peak
        if self.linux:
            text = Path("/proc/self/status").read_text()
            match = re.search(r"VmHWM:\s+(\d+) kB", text)
            if match:
                peak = max(peak, int(match.group(1)) * 1024)
        self.growth = peak - self.before


def reset_gpu_peak(args: argparse.Namespace) -> None:
    if args.device == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()


def gpu_peak(args: argparse.Namespace) -> float | None:
    """Peak GPU memory allocated since `reset_gpu_peak` (None on the CPU)."""
    if args.device != "cuda":
        return None
    return round(torch.cuda.max_memory_allocated() / 2**20, 1)


def load_pneumonia() -> dict[str, np.ndarray]:
    path = SHARED / "medmnist" / "pneumoniamnist.npz"
    require_shared(path)
    with np.load(path) as data:
        return {key: data[key] for key in data.files}


def make_pool(source: np.ndarray, n: int, seed: int) -> np.ndarray:
    """``n`` 28x28 uint8 images: real ones resampled, randomly flipped, with light noise."""
    rng = np.random.default_rng(seed)
    pool = source[rng.integers(0, len(source), n)].copy()
    flip = rng.random(n) < 0.5
    pool[flip] = pool[flip, :, ::-1]
    noise = rng.integers(-8, 9, pool.shape, dtype=np.int16)
    return np.clip(pool.astype(np.int16) + noise, 0, 255).astype(np.uint8)


class EpochTimer(Callback):
    def __init__(self) -> None:
        self.times: list[float] = []

    def on_train_epoch_start(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        self.start = time.perf_counter()

    def on_train_epoch_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        self.times.append(time.perf_counter() - self.start)


def train(data: dict[str, np.ndarray], args: argparse.Namespace) -> tuple[Any, dict[str, Any]]:
    """Train the benchmark network on 1,000 labelled images; time each epoch and the round."""
    L.seed_everything(0, verbose=False)
    n = args.train_items
    datamodule = ArrayDataModule(
        data["train_images"][:n], data["train_labels"][:n], val_fraction=0.2, batch_size=64, seed=0
    )
    datamodule.setup("fit")
    module = ClassificationModule(small_cnn(), class_weights=datamodule.class_weights(), lr=2e-3)
    timer = EpochTimer()
    accelerator = "gpu" if args.device == "cuda" else "cpu"
    precision = args.precision if args.device == "cuda" else "32-true"
    trainer = make_trainer(
        args.train_epochs,
        accelerator=accelerator,
        devices=1,
        precision=precision,
        callbacks=[timer],
        patience=args.train_epochs,
    )
    start = time.perf_counter()
    trainer.fit(module, datamodule=datamodule)
    total = time.perf_counter() - start
    metrics = {k: float(v) for k, v in trainer.callback_metrics.items()}
    return module.net, {
        "labelled_items": n,
        "train_items": len(datamodule.train_set or []),
        "val_items": len(datamodule.val_set or []),
        "epochs": len(timer.times),
        "epoch_seconds": [round(t, 3) for t in timer.times],
        "mean_epoch_seconds": round(float(np.mean(timer.times)), 3),
        "round_seconds_fit_incl_validation": round(total, 3),
        "final_metrics": metrics,
        "device": args.device,
        "precision": precision,
        "batch_size": 64,
    }


def time_default_recipe(data: dict[str, np.ndarray], args: argparse.Namespace) -> dict[str, Any]:
    """One round of the default `ClassificationRecipe` on ``args.train_items`` labelled images,
    as the loop trains it: cold (round one), then warm-started from those weights (later rounds).
    Epochs are the recipe's own (early stopping on val AUC), restarts and BatchNorm
    recalibration included."""
    n = args.train_items
    x, y = data["train_images"][:n], data["train_labels"][:n]
    accelerator = "gpu" if args.device == "cuda" else "cpu"
    recipe = ClassificationRecipe(accelerator=accelerator)
    report: dict[str, Any] = {
        "labelled_items": n,
        "recipe": {
            "max_epochs": recipe.max_epochs,
            "patience": recipe.patience,
            "batch_size": recipe.batch_size,
            "min_steps_per_epoch": recipe.min_steps_per_epoch,
            "restarts": recipe.restarts,
            "val_fraction": recipe.val_fraction,
        },
    }
    state = None
    for kind in ("cold", "warm_start"):
        timer = EpochTimer()
        start = time.perf_counter()
        trained = train_classifier(recipe, x, y, seed=0, init_state=state, callbacks=[timer])
        seconds = time.perf_counter() - start
        state = trained.state_dict
        report[kind] = {
            "round_seconds": round(seconds, 3),
            "epochs": len(timer.times),
            "mean_epoch_seconds": round(float(np.mean(timer.times)), 3),
            "trainings": int(trained.metrics["attempts"]),
            "val_auc": round(float(trained.metrics["val_auc"]), 4),
        }
    return report


def time_ours(
    net: torch.nn.Module,
    pool: np.ndarray,
    args: argparse.Namespace,
    reduce: Callable[[torch.Tensor], torch.Tensor] | None,
) -> dict[str, Any]:
    loader = batch_loader(ArrayDataset(pool, scale_uint8=False), args.batch_size)
    precision: Precision = args.precision if args.device == "cuda" else "32"
    reset_gpu_peak(args)
    with PeakRSS() as memory:
        start = time.perf_counter()
        out = mc_predict(
            net, loader, args.samples, reduce=reduce, device=args.device, precision=precision
        )
        if args.device == "cuda":
            torch.cuda.synchronize()
        seconds = time.perf_counter() - start
    return {
        "items": len(pool),
        "seconds": round(seconds, 3),
        "images_per_s": round(len(pool) / seconds, 1),
        "peak_rss_growth_mb": round(memory.growth / 2**20, 1),
        "peak_gpu_memory_mb": gpu_peak(args),
        "out": out.values,
    }


def time_baal(net: torch.nn.Module, pool: np.ndarray, args: argparse.Namespace) -> dict[str, Any]:
    from baal.bayesian.dropout import MCDropoutModule
    from baal.modelwrapper import ModelWrapper, TrainingArgs

    model = MCDropoutModule(copy.deepcopy(net)).eval()
    wrapper = ModelWrapper(
        model,
        TrainingArgs(
            batch_size=args.baal_batch_size,
            use_cuda=args.device == "cuda",
            workers=0,
            criterion=torch.nn.CrossEntropyLoss(),
            replicate_in_memory=True,
        ),
    )
    images = torch.from_numpy(pool).float().div(255).unsqueeze(1)
    dataset = torch.utils.data.TensorDataset(images, torch.zeros(len(pool), dtype=torch.long))
    reset_gpu_peak(args)
    with PeakRSS() as memory:
        start = time.perf_counter()
        logits = wrapper.predict_on_dataset(dataset, iterations=args.samples, verbose=False)
        seconds = time.perf_counter() - start
    probs = torch.softmax(torch.from_numpy(np.asarray(logits)), 1).numpy()  # [N, C, T]
    return {
        "items": len(pool),
        "seconds": round(seconds, 3),
        "images_per_s": round(len(pool) / seconds, 1),
        "peak_rss_growth_mb": round(memory.growth / 2**20, 1),
        "peak_gpu_memory_mb": gpu_peak(args),
        "probs": probs.transpose(0, 2, 1),
    }  # [N, T, C]


def agreement(ours: np.ndarray, baal: np.ndarray) -> dict[str, Any]:
    """Do both give the same predictive distribution? Compare per-item mean probability of class
    1 against the Monte-Carlo standard error of the difference.  # [N, T, C] each"""
    t = ours.shape[1]
    diff = ours[:, :, 1].mean(1) - baal[:, :, 1].mean(1)
    se = np.sqrt(ours[:, :, 1].var(1) / t + baal[:, :, 1].var(1) / t) + 1e-9
    z = diff / se
    return {
        "items": len(ours),
        "mean_abs_diff_of_mean_probs": float(np.abs(diff).mean()),
        "mean_mc_standard_error": float(se.mean()),
        "mean_abs_z": float(np.abs(z).mean()),  # ~0.8 when both sample the same distribution
        "fraction_abs_z_over_4": float((np.abs(z) > 4).mean()),
        "same_distribution": bool(np.abs(z).mean() < 1.2 and (np.abs(z) > 4).mean() < 0.01),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pools", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--samples", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=512)
    parser.add_argument("--baal-batch-size", type=int, default=64)
    parser.add_argument(
        "--baal-max-items",
        type=int,
        default=None,
        help="time baal on at most this many items and extrapolate (default: the whole pool)",
    )
    parser.add_argument("--agreement-items", type=int, default=1000)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--precision", default="32", choices=["32", "16-mixed", "bf16-mixed"])
    parser.add_argument("--train-items", type=int, default=1000)
    parser.add_argument("--train-epochs", type=int, default=3)
    parser.add_argument("--train-only", action="store_true", help="only write train_time.json")
    parser.add_argument("--out-dir", type=Path, default=ROOT / "benchmarks" / "results")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if Path("/proc/self/clear_refs").exists():
        ctypes.CDLL("libc.so.6").mallopt(-3, 64 * 1024)  # M_MMAP_THRESHOLD: honest RSS
    args.out_dir.mkdir(parents=True, exist_ok=True)
    suffix = "" if args.device == "cpu" else f"_{args.device}_{args.precision}"
    env = {
        "torch": torch.__version__,
        "python": platform.python_version(),
        "torch_threads": args.threads,
        "cpu_count": os.cpu_count(),
        "device": torch.cuda.get_device_name()
        if args.device == "cuda"
        else platform.processor() or platform.machine(),
        "load_average_1min_at_start": os.getloadavg()[0],
    }
    data = load_pneumonia()
    net, train_report = train(data, args)
    train_report["default_recipe_round"] = time_default_recipe(data, args)
    (args.out_dir / f"train_time{suffix}.json").write_text(
        json.dumps({**train_report, "environment": env}, indent=2)
    )
    print("train:", json.dumps({k: v for k, v in train_report.items() if k != "final_metrics"}))
    net.eval()
    if args.train_only:
        return

    from importlib.metadata import version

    source = np.concatenate([data["val_images"], data["test_images"]])
    agree_pool = make_pool(source, args.agreement_items, seed=1)
    ours_full = time_ours(net, agree_pool, args, None)["out"]
    baal_full = time_baal(net, agree_pool, args)["probs"]
    check = agreement(ours_full, baal_full)
    print("agreement:", check)

    rows = []
    time_ours(net, make_pool(source, 2048, seed=3), args, entropy)  # warm-up
    for n in args.pools:
        pool = make_pool(source, n, seed=2)
        ours = time_ours(net, pool, args, entropy)
        ours.pop("out")
        timed = n if args.baal_max_items is None else min(n, args.baal_max_items)
        theirs = time_baal(net, pool[:timed], args)
        theirs.pop("probs")
        theirs["extrapolated"] = timed < n
        theirs["estimated_seconds_for_pool"] = round(n / theirs["images_per_s"], 1)
        row = {
            "pool_items": n,
            "workbench_mc_predict": ours,
            "baal_predict_on_dataset": theirs,
            "throughput_ratio_workbench_over_baal": round(
                ours["images_per_s"] / theirs["images_per_s"], 1
            ),
        }
        rows.append(row)
        print(json.dumps(row))
    result = {
        "what": "MC-dropout scoring of an unlabelled pool, T samples per image",
        "network": "small_cnn: 2 conv blocks (16, 32) + BN + max-pool, 128 hidden, dropout 0.5 "
        "head, 2 classes, 28x28 grey; trained briefly on PneumoniaMNIST",
        "samples": args.samples,
        "workbench": {
            "call": "mc_predict(net, batch_loader(ArrayDataset(pool, scale_uint8=False), B), "
            "T, reduce=entropy)",
            "batch_size": args.batch_size,
            "notes": "trunk once per image, dropout head replicated T times in one "
            "pass; batches fetched with one slice and kept uint8 until the device "
            "scales them; on CUDA each batch's scores copied back while the next "
            "batch runs; only one score per image is kept",
        },
        "baal": {
            "version": version("baal"),
            "call": "ModelWrapper(MCDropoutModule(net), TrainingArgs(workers=0, "
            "replicate_in_memory=True)).predict_on_dataset(dataset, T)",
            "batch_size": args.baal_batch_size,
            "timed_on_at_most_items": args.baal_max_items,
            "notes": "whole network replicated T times per batch; returns logits "
            "[N, C, T]; timed on the whole pool unless timed_on_at_most_items is set, "
            "then extrapolated from the measured images/s",
        },
        "peak_rss_note": "growth of this process's resident memory during the call "
        "(VmHWM reset via /proc/self/clear_refs), pool array excluded",
        "same_predictive_distribution": check,
        "pools": rows,
        "environment": env,
        "device": args.device,
        "precision": args.precision if args.device == "cuda" else "32",
    }
    (args.out_dir / f"scoring{suffix}.json").write_text(json.dumps(result, indent=2))
    print("wrote", args.out_dir / f"scoring{suffix}.json")


if __name__ == "__main__":
    main()
