"""``workbench simulate``: compare strategies on already-labelled data with an oracle."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from workbench.errors import WorkbenchError


class SimulateArgumentError(WorkbenchError):
    """A ``workbench simulate`` option is out of range."""

    code = "simulate_arguments"


def register_simulate_command(commands: argparse._SubParsersAction) -> None:
    """Add ``simulate`` to the ``workbench`` parser."""
    sim = commands.add_parser(
        "simulate",
        help="compare query strategies on labelled data with an oracle",
        description="DATA is a MedMNIST .npz, an MSD / nnU-Net folder, or a project folder whose "
        "labels were imported with --labels-as-ground-truth. Per strategy and seed: INITIAL "
        "labels, then ROUNDS rounds of BATCH (train, score, select, reveal). Writes learning "
        "curves, AULC with 95% t-intervals, the paired difference against random and the "
        "labels needed to reach 95/98/99% of the full-data metric.",
        epilog="Example: workbench simulate breastmnist.npz --strategies random,bald,power_bald "
        "--seeds 3 --initial 20 --batch 20 --rounds 5 --out results.json --plot curves.png",
    )
    sim.add_argument("data", type=Path, metavar="DATA")
    sim.add_argument(
        "--strategies",
        default="random,entropy,bald",
        help="comma-separated registry names, each with options if wanted, e.g. "
        "power_bald:beta=4 (default: random,entropy,bald)",
    )
    sim.add_argument("--seeds", type=int, default=5, help="number of seeds 0..N-1 (default 5)")
    sim.add_argument(
        "--first-seed",
        type=int,
        default=0,
        help="run seeds FIRST..FIRST+N-1 instead: confirm a strategy or setting "
        "chosen on seeds 0..N-1 on seeds it was not chosen on (default 0)",
    )
    sim.add_argument("--initial", type=int, default=20, help="cold-start labels (default 20)")
    sim.add_argument("--batch", type=int, default=20, help="labels per round (default 20)")
    sim.add_argument("--rounds", type=int, default=5, help="rounds after the cold start")
    sim.add_argument(
        "--cold-start",
        choices=["random", "kcenter", "typical"],
        default="random",
        help="how the first --initial labels are picked, the same for every "
        "strategy: random (default), kcenter (k-center on pooled pixels) or typical "
        "(TypiClust on self-supervised features of the pool)",
    )
    sim.add_argument(
        "--contrastive-steps",
        type=int,
        default=600,
        help="training steps of the self-supervised encoder of --cold-start "
        "typical and --ssl-init (default 600)",
    )
    sim.add_argument(
        "--ssl-init",
        action="store_true",
        help="the first training of every curve and the full-data reference start from "
        "self-supervised weights learnt on the pool (per seed, no label read) instead of "
        "random ones: a classifier from a contrastive encoder's trunk, a segmenter from its "
        "own network trained to restore painted-over boxes of the scans",
    )
    sim.add_argument(
        "--restoration-steps",
        type=int,
        default=400,  # workbench.recipes.DEFAULT_RESTORATION_STEPS, without importing torch
        help="segmentation with --ssl-init: steps of the restoration pretraining (default 400)",
    )
    sim.add_argument(
        "--encoder-cache",
        type=Path,
        metavar="DIR",
        help="keep the self-supervised encoders of --cold-start typical and "
        "--ssl-init in DIR between simulations, so a rerun on the same data trains "
        "none (keyed by the pool's content, seed, steps and device; default: kept "
        "for one run)",
    )
    sim.add_argument("--epochs", type=int, help="max epochs per training (recipe default)")
    sim.add_argument(
        "--patience",
        type=int,
        help="epochs without a better validation metric before a training stops "
        "(recipe default); with --epochs, what `workbench train --epochs --patience` sets",
    )
    sim.add_argument("--mc-samples", type=int, help="MC-dropout samples T (recipe default)")
    sim.add_argument("--max-pool", type=int, help="use a fixed seeded subset of the pool")
    sim.add_argument("--max-val", type=int, default=200, help="val items for early stopping")
    sim.add_argument("--max-test", type=int, help="use a fixed seeded subset of the test set")
    sim.add_argument(
        "--pool-subsample",
        type=int,
        help="score at most this many random unlabelled items per round",
    )
    sim.add_argument(
        "--reference-seeds",
        type=int,
        default=1,
        help="seeds for the full-data reference (0 skips it)",
    )
    sim.add_argument(
        "--workers",
        type=int,
        default=1,
        help="processes running curves side by side, one torch thread each (default 1); "
        "the results do not depend on it",
    )
    sim.add_argument("--out", type=Path, required=True, help="JSON report to write")
    sim.add_argument("--plot", type=Path, help="PNG of the learning curves")
    sim.set_defaults(run=_simulate)


def _check(args: argparse.Namespace) -> None:
    for name in (
        "seeds",
        "initial",
        "batch",
        "workers",
        "contrastive_steps",
        "epochs",
        "patience",
        "mc_samples",
    ):  # epochs, patience and MC samples unset: the recipe's default
        value = getattr(args, name)
        if value is not None and value < 1:
            raise SimulateArgumentError(f"--{name.replace('_', '-')} must be >= 1", field=name)
    for name in ("rounds", "reference_seeds", "first_seed"):
        if getattr(args, name) < 0:
            raise SimulateArgumentError(f"--{name.replace('_', '-')} must be >= 0", field=name)


def _simulate(args: argparse.Namespace) -> int:
    import dataclasses

    from workbench._cli_output import ProgressBar, console
    from workbench.recipes import ClassificationRecipe, SegmentationRecipe
    from workbench.simulation import (
        SimulationConfig,
        load_simulation_data,
        plot_curves,
        simulate,
    )
    from workbench.strategies import StrategyError, available_strategies, get_strategy

    _check(args)
    names = tuple(s.strip() for s in args.strategies.split(",") if s.strip())
    if not names:
        raise SimulateArgumentError(
            f"no strategy given; available: {', '.join(available_strategies())}",
            field="strategies",
        )
    for name in names:
        try:
            get_strategy(name)
        except StrategyError as error:
            raise SimulateArgumentError(f"--strategies: {error}", field="strategies") from None
    data = load_simulation_data(
        args.data, max_pool=args.max_pool, max_val=args.max_val, max_test=args.max_test
    )
    if args.restoration_steps < 1:
        raise SimulateArgumentError(
            f"--restoration-steps must be at least 1, got {args.restoration_steps}",
            field="restoration_steps",
        )
    if (
        args.encoder_cache is not None
        and args.encoder_cache.exists()
        and not args.encoder_cache.is_dir()
    ):
        raise SimulateArgumentError(
            f"--encoder-cache {args.encoder_cache} is a file, not a folder", field="encoder_cache"
        )
    recipe: Any = ClassificationRecipe() if data.task == "classification" else SegmentationRecipe()
    changes = {
        k: v
        for k, v in (
            ("max_epochs", args.epochs),
            ("patience", args.patience),
            ("mc_samples", args.mc_samples),
        )
        if v is not None
    }
    recipe = dataclasses.replace(recipe, spatial_dims=data.spatial_dims, **changes)
    config = SimulationConfig(
        strategies=names,
        seeds=tuple(range(args.first_seed, args.first_seed + args.seeds)),
        initial=args.initial,
        batch=args.batch,
        rounds=args.rounds,
        cold_start=args.cold_start,
        contrastive_steps=args.contrastive_steps,
        ssl_init=args.ssl_init,
        restoration_steps=args.restoration_steps,
        encoder_cache=args.encoder_cache,
        pool_subsample=args.pool_subsample,
        reference=args.reference_seeds > 0,
        reference_seeds=args.reference_seeds,
        workers=args.workers,
    )
    with ProgressBar("simulating") as advance:
        report = simulate(data, recipe, config, progress=lambda d, t, _w: advance(d, t))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1))
    if args.plot is not None:
        plot_curves(report, args.plot)
    ref = report["reference"]["metric"]
    console.print(f"full-data {report['metric']}: {'-' if ref is None else f'{ref:.4f}'}")
    for name, s in report["strategies"].items():
        console.print(
            f"{name}: AULC {s['aulc']['mean']:.4f}{_vs_random_text(s['aulc_vs_random'])}, "
            "labels to 95/98/99%: "
            f"{_reach_text(s)}{_ratio_text(s.get('labels_to_reach_vs_random'))}"
            f"{_budgets_text(s.get('vs_random_per_budget'))}"
        )
    console.print(f"wrote [bold]{args.out}[/]" + (f" and {args.plot}" if args.plot else ""))
    return 0


def _vs_random_text(difference: dict[str, Any] | None) -> str:
    """``", vs random +0.33 [+0.01, +0.65] points"``: the paired AULC difference with its 95%
    interval over seeds (the mean alone with one seed; empty for random itself)."""
    if difference is None:
        return ""
    text = f", vs random {100 * difference['mean']:+.2f}"
    if difference["lo"] is not None:
        text += f" [{100 * difference['lo']:+.2f}, {100 * difference['hi']:+.2f}]"
    return text + " points"


def _ratio_text(ratios: dict[str, Any] | None, target: str = "0.99") -> str:
    """``"; labels to 99% 85% of random's [70%, 105%]"``: the share with its bootstrap
    interval (an end the curves do not bound shows as ``?``; "not read" when a mean curve
    never reaches the target; empty for random itself or with fewer than 2 seeds)."""
    reading = (ratios or {}).get(target)
    if reading is None:
        return ""
    share = f"{float(target):.0%}"
    if reading["ratio"] is None:
        return f"; labels to {share} vs random's: not read (a mean curve never reaches it)"
    lo, hi = (("?" if v is None else f"{v:.0%}") for v in (reading["lo"], reading["hi"]))
    return f"; labels to {share} {reading['ratio']:.0%} of random's [{lo}, {hi}]"


def _budgets_text(per_budget: list[dict[str, Any]] | None) -> str:
    """``"; above random at 60, 70 labels; below random at 20 labels"``: the budgets whose
    paired 95% interval excludes zero (empty when none does, or with fewer than 2 seeds)."""
    if not per_budget:
        return ""
    above = [str(b["labels"]) for b in per_budget if b["lo"] is not None and b["lo"] > 0]
    below = [str(b["labels"]) for b in per_budget if b["hi"] is not None and b["hi"] < 0]
    text = f"; above random at {', '.join(above)} labels" if above else ""
    return text + (f"; below random at {', '.join(below)} labels" if below else "")


def _reach_text(strategy: dict[str, Any]) -> str:
    """``"120 (100-140) / 200 / never"``: labels to each target off the mean curve, with the
    budgets where its 95% interval reaches the target at the upper and the lower end."""
    parts = []
    for key, n in strategy["labels_to_reach"].items():
        text = "never" if n is None else str(n)
        span = strategy["labels_to_reach_range"].get(key)
        if span is not None and span[0] is not None:
            text += f" ({span[0]}-{'never' if span[1] is None else span[1]})"
        parts.append(text)
    return " / ".join(parts)
