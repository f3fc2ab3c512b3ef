"""Keyed dropout on a 3D U-Net: what keying the masks costs, per-unit hashing against per-row
generators (the method since this benchmark was added), next to torch's own dropout.

Keyed masks (a function of (seed, item, draw or sample) alone) make MC-dropout scores
independent of batching and DDP rank, and distributed training equal to one process. On 3D
feature maps, hashing every unit cost more than the convolutions; masks of inputs with
`GENERATOR_UNITS` or more units per row are now drawn from a generator seeded by the row's
hash. Times one training step (forward + backward, batch 2) and one MC-dropout prediction
(T = 4, one scan) of the default segmentation U-Net (`small_unet`, 16-32-64-128, dropout 0.1)
on hippocampus-sized 40x56x40 volumes, on one CPU thread (or ``--device cuda``), each method
in turn, repeats interleaved. Writes ``benchmarks/results/keyed_dropout.json``.

    .venv/bin/python benchmarks/bench_keyed_dropout.py
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks._machine import machine_info  # noqa: E402
from workbench.models import _dropout  # noqa: E402
from workbench.models._dropout import KeyedDropout, draw_keys, mc_dropout  # noqa: E402
from workbench.recipes import small_unet  # noqa: E402

METHODS = ("torch_dropout", "keyed_hash_per_unit", "keyed_generator_per_row")


def _keyed(method: str) -> int:
    """The `GENERATOR_UNITS` threshold that makes KeyedDropout use ``method``."""
    return 1 << 62 if method == "keyed_hash_per_unit" else 1 << 16


def _forward(
    net: torch.nn.Module, x: torch.Tensor, keys: torch.Tensor, method: str
) -> torch.Tensor:
    if method == "torch_dropout":
        return net(x)
    _dropout.GENERATOR_UNITS = _keyed(method)
    with KeyedDropout(net, 7) as keyed:
        keyed.rows = keys
        return net(x)


def _time(fn: Callable[[], Any], repeats: int, device: torch.device) -> float:
    fn()  # warm-up
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return (time.perf_counter() - start) / repeats


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shape", type=int, nargs=3, default=(40, 56, 40))
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="cpu", help="cpu or cuda (32-bit either way)")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks/results/keyed_dropout.json")
    args = parser.parse_args()
    device = torch.device(args.device)
    torch.set_num_threads(1)
    torch.manual_seed(0)
    net = small_unet(spatial_dims=3, in_channels=1, num_classes=3).to(device)
    x = torch.randn(2, 1, *args.shape, device=device)
    train_keys = draw_keys(torch.tensor([3, 4]), torch.tensor([10, 11]), 7)
    samples = 4
    mc_x = x[:1].repeat(samples, 1, 1, 1, 1)  # one scan, T rows in one pass
    mc_keys = torch.arange(samples, dtype=torch.int64) * 1000 + 5

    def train_step(method: str) -> None:
        net.train()
        net.zero_grad()
        _forward(net, x, train_keys, method).square().mean().backward()

    def mc_pass(method: str) -> None:
        with torch.inference_mode(), mc_dropout(net):
            _forward(net, mc_x, mc_keys, method)

    default = _dropout.GENERATOR_UNITS
    times: dict[str, dict[str, list[float]]] = {
        m: {"train_step_s": [], "mc_predict_s": []} for m in METHODS
    }
    try:
        for _ in range(args.rounds):
            for method in METHODS:
                times[method]["train_step_s"].append(
                    _time(lambda m=method: train_step(m), args.repeats, device)  # type: ignore[misc]
                )
                times[method]["mc_predict_s"].append(
                    _time(lambda m=method: mc_pass(m), args.repeats, device)  # type: ignore[misc]
                )
    finally:
        _dropout.GENERATOR_UNITS = default
    median = {m: {k: statistics.median(v) for k, v in t.items()} for m, t in times.items()}
    base = median["torch_dropout"]
    result = {
        "network": "small_unet 16-32-64-128, dropout 0.1",
        "shape": list(args.shape),
        "train_batch": 2,
        "mc_samples": samples,
        "torch_threads": 1,
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "median_seconds": median,
        "ratio_to_torch_dropout": {
            m: {k: round(v / base[k], 3) for k, v in t.items()} for m, t in median.items()
        },
        "all_seconds": times,
        "machine": machine_info(),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result["ratio_to_torch_dropout"], indent=2))


if __name__ == "__main__":
    main()
