"""How long the full-data reference trains, and what "labels to 99%" reads against each length.

The label-efficiency benchmarks read "labels to 99% of the full-data metric" against one
training of the setup's recipe on every pool label (`reference_runs`). That recipe stops early
on a small validation set (BreastMNIST: 78 images, patience 4), while a learning curve
warm-starts round after round and so trains far longer in all. This script trains the same
reference (from each seed's SimCLR trunk, as the trunk-start runs do) with longer settings,
``max_epochs:patience``, and re-reads the stored reports' mean curves against each setting's
mean: does a stronger reference move the ratio the first target is about? Reads
../shared/data (fails when missing). Writes ``benchmarks/results/reference_training_<setup>.json``::

    .venv/bin/python benchmarks/bench_reference_training.py --setup breastmnist_xlong_30seeds_ref5 \
        --reports ssl_init_breastmnist_60seeds.json,ssl_init_breastmnist_fine_30seeds.json
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path
from typing import Any

from _machine import require_shared

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench_label_efficiency import setups  # noqa: E402

import workbench.simulation._run as simulation_run  # noqa: E402
from workbench.simulation import labels_to_reach, load_simulation_data  # noqa: E402

RESULTS = REPO / "benchmarks" / "results"
ARMS = ("random", "power_bald_typical")


def parse_settings(text: str) -> list[tuple[int, int]]:
    """``"20:4,100:20"`` -> [(20, 4), (100, 20)]: max epochs and early-stopping patience."""
    out = []
    for part in text.split(","):
        epochs, _, patience = part.partition(":")
        try:
            pair = (int(epochs), int(patience))
        except ValueError:
            raise ValueError(f"{part!r} is not max_epochs:patience, e.g. 100:20") from None
        if min(pair) < 1:
            raise ValueError(f"{part!r}: max_epochs and patience must be at least 1")
        out.append(pair)
    return out


def reread(
    report: dict[str, Any], references: dict[str, float], arms: tuple[str, ...] = ARMS
) -> dict[str, Any]:
    """Labels at which each arm's mean curve first reaches 99% of each reference, and the
    default's share of random's (None where a curve never reaches it)."""
    out: dict[str, Any] = {}
    for name, metric in references.items():
        reach = {}
        for arm in arms:
            curve = report["strategies"][arm]["mean_curve"]
            reach[arm] = labels_to_reach(
                [p["labels"] for p in curve], [p["mean"] for p in curve], 0.99 * metric
            )
        first, second = (reach[a] for a in arms[:2])
        out[name] = {
            "reference": metric,
            "labels_to_99": reach,
            "share": None if first is None or second is None else second / first,
        }
    return out


def _train_reference(epochs: int, patience: int, seed: int) -> dict[str, float]:
    """One reference training (as `reference_runs` with ``ssl_init``) in a pool worker set up
    by `_start_pool_worker`: its test metrics and the epochs it ran."""
    worker = simulation_run._WORKER
    data, config = worker["data"], worker["config"]
    recipe = dataclasses.replace(worker["recipe"], max_epochs=epochs, patience=patience)
    trunk = simulation_run._self_supervised_start(data, recipe, seed, config, config.encoder_cache)
    start = time.time()
    trained = simulation_run._train(
        recipe, data, data.pool_x, data.pool_y, seed * 1000 + 999, None, None, trunk
    )
    return {
        **simulation_run.evaluate(trained, data),
        "epochs": trained.metrics["epochs"],
        "seconds": time.time() - start,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--setup", default="breastmnist_xlong_30seeds_ref5")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument(
        "--settings",
        default="20:4,40:8,100:20",
        help="max_epochs:patience pairs; the first should be the setup's own",
    )
    parser.add_argument(
        "--reports", default="", help="comma-separated stored ssl_init reports to re-read"
    )
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--encoder-cache", type=Path, default=None)
    args = parser.parse_args()
    if args.seeds < 1 or args.workers < 1:
        parser.error("--seeds and --workers must be at least 1")
    catalogue = setups(1)
    if args.setup not in catalogue:
        parser.error(f"--setup: unknown setup {args.setup!r}")
    try:
        settings = parse_settings(args.settings)
    except ValueError as error:
        parser.error(f"--settings: {error}")
    reports = [RESULTS / name for name in args.reports.split(",") if name]
    missing = [p.name for p in reports if not p.is_file()]
    if missing:
        parser.error(f"--reports: no stored report {', '.join(missing)} in {RESULTS}")
    setup = catalogue[args.setup]
    require_shared(setup.path)
    data = load_simulation_data(setup.path, seed=0, **setup.load)
    config = dataclasses.replace(setup.config, ssl_init=True, encoder_cache=args.encoder_cache)
    jobs = [(e, p, s) for e, p in settings for s in range(args.seeds)]
    start = time.time()
    with (
        tempfile.TemporaryDirectory(prefix="wb-reference-") as workdir,
        ProcessPoolExecutor(
            args.workers,
            mp_context=get_context("spawn"),
            initializer=simulation_run._start_pool_worker,
            initargs=(os.getpid(), data, setup.recipe, config, Path(workdir)),
        ) as pool,
    ):  # workers die with this one
        futures = {job: pool.submit(_train_reference, *job) for job in jobs}
        runs = {job: future.result() for job, future in futures.items()}
    per_setting: dict[str, Any] = {}
    for epochs, patience in settings:
        rows = [runs[(epochs, patience, s)] for s in range(args.seeds)]
        metric = "auc" if "auc" in rows[0] else "dice"
        per_setting[f"{epochs}:{patience}"] = {
            "metric": sum(r[metric] for r in rows) / len(rows),
            "per_seed": rows,
        }
        print(
            f"{epochs:>4} epochs, patience {patience:>2}: reference "
            f"{per_setting[f'{epochs}:{patience}']['metric']:.4f}, epochs run "
            f"{[int(r['epochs']) for r in rows]}"
        )
    references = {k: v["metric"] for k, v in per_setting.items()}
    rereads = {}
    for path in reports:
        stored = json.loads(path.read_text())
        rereads[path.name] = {
            "stored_reference": stored["reference"]["metric"],
            **reread(stored, references),
        }
        for name, r in rereads[path.name].items():
            if isinstance(r, dict):
                share = "" if r["share"] is None else f" ({r['share']:.0%})"
                print(
                    f"{path.name}, reference {name} ({r['reference']:.4f}): labels to 99% "
                    f"{r['labels_to_99']}{share}"
                )
    out = {
        "setup": args.setup,
        "seeds": list(range(args.seeds)),
        "settings": per_setting,
        "rereads": rereads,
        "seconds": time.time() - start,
        "machine": {"cpus": os.cpu_count(), "workers": args.workers, "torch_threads": 1},
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    target = RESULTS / f"reference_training_{args.setup}.json"
    target.write_text(json.dumps(out, indent=1))
    print(f"wrote {target}")


if __name__ == "__main__":
    main()
