"""``workbench train`` and ``workbench query`` (the active-learning loop on a project)."""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json

from workbench._cli_output import ProgressBar, console


def register_loop_commands(commands: argparse._SubParsersAction) -> None:
    """Add the loop's subcommands to the ``workbench`` parser."""
    train = commands.add_parser(
        "train",
        help="train a model version on the current labels and score the pool",
        description="Trains on the train split's labels (validating on the val split), records "
        "the model version with the label versions it used, then writes predictions and "
        "uncertainty scores for every unlabelled item, so serving never waits for a model. "
        "Classification projects train a classifier; segmentation projects (2D or 3D) a U-Net "
        "whose predicted masks and uncertainty maps the annotator shows as proposals.",
    )
    train.add_argument("dir", help="project folder")
    train.add_argument("--seed", type=int, default=0)
    train.add_argument(
        "--epochs",
        type=_positive,
        metavar="N",
        help="maximum epochs (early stopping on val AUC, or val Dice; default "
        "40 for a classifier, 30 for a U-Net)",
    )
    train.add_argument(
        "--patience",
        type=_positive,
        metavar="N",
        help="stop after N epochs without a better val metric (default 8 for a "
        "classifier, 6 for a U-Net); one training on many labels at once, "
        "e.g. imported ones, can gain from more (see the README)",
    )
    train.add_argument(
        "--batch-size",
        type=_positive,
        metavar="N",
        help="training batch size (smaller: less memory, quicker epochs)",
    )
    train.add_argument(
        "--mc-samples",
        type=_positive,
        metavar="N",
        help="MC-dropout samples per pool item when scoring (fewer: faster)",
    )
    train.add_argument(
        "--features",
        type=_positive,
        nargs="+",
        metavar="N",
        help="segmentation: U-Net channels per level (default 16 32 64 128; "
        "e.g. 4 8 16 for a quick CPU run)",
    )
    train.add_argument(
        "--patch-size",
        type=int,
        nargs="+",
        metavar="N",
        help="segmentation: train on random patches of this size and predict "
        "over sliding windows (default: whole scans, or 96 per axis for scans "
        "over 128^3 voxels)",
    )
    train.add_argument(
        "--devices",
        type=_positive,
        metavar="N",
        help="train data-parallel on N devices (GPUs; or CPU processes with "
        "--accelerator cpu) with Lightning's DDP: the same model as one device "
        "gives, recorded once",
    )
    train.add_argument(
        "--num-nodes",
        type=_positive,
        metavar="N",
        help="machines taking part in a DDP training (each runs this command)",
    )
    train.add_argument(
        "--accelerator",
        choices=("auto", "cpu", "gpu"),
        help="where to train (default auto: a GPU when there is one)",
    )
    train.add_argument(
        "--tta",
        action="store_true",
        help="segmentation: score each scan under flips too (identity and one "
        "per axis), so the uncertainty includes how the prediction changes "
        "with them; (1 + axes) forward passes per MC sample instead of one",
    )
    train.add_argument(
        "--fresh",
        action="store_true",
        help="start from random weights (default: from the latest ready model's "
        "weights, which keeps small-set training stable; a classification "
        "project's first model starts from the self-supervised encoder its "
        "typical cold start trained)",
    )
    train.add_argument(
        "--nice",
        type=_niceness,
        metavar="N",
        help="run at CPU niceness N (e.g. 10) with one core left free. Linux "
        "weighs niceness within a terminal session only (autogroups): to keep "
        "an annotator responsive, start training with "
        "workbench.background.train_in_background instead",
    )
    stop = train.add_argument_group(
        "when to stop", "after scoring, say whether the loop can stop asking for labels"
    )
    stop.add_argument(
        "--label-budget",
        type=_positive,
        metavar="N",
        help="stop once the project has N human labels",
    )
    stop.add_argument(
        "--plateau-rounds",
        type=_positive,
        default=3,
        metavar="K",
        help="stop when the validation metric has not improved over the last K "
        "model versions (default 3)",
    )
    stop.add_argument(
        "--min-uncertainty",
        type=float,
        metavar="X",
        help="stop when the pool's mean entropy (nats) falls below X",
    )
    train.add_argument("--json", action="store_true", help="print the model version as JSON")
    train.set_defaults(run=_train)

    query = commands.add_parser(
        "query",
        help="select the next items to label (an active-learning round)",
        description="Selects --batch unlabelled items with --strategy using the latest model "
        "(with no model yet: random, or the --cold-start selection) and records the round; "
        "annotators are then served those items first.",
    )
    query.add_argument("dir", help="project folder")
    query.add_argument(
        "--strategy",
        default="power_bald",
        help="e.g. random, entropy, bald, margin, power_bald, batchbald, coreset, "
        "badge, class_balanced_entropy (default: power_bald); segmentation: "
        "random and the score strategies (entropy, bald, margin, ...); options "
        "after colons, e.g. power_bald:beta=4",
    )
    query.add_argument(
        "--reduction",
        choices=("mean", "foreground_weighted", "top_percentile"),
        help="segmentation: how a score strategy turns a per-voxel uncertainty "
        "map into one score per scan (default: mean)",
    )
    query.add_argument("--batch", type=_positive, required=True, help="how many items to select")
    query.add_argument(
        "--cold-start",
        choices=("typical", "kcenter"),
        default=None,
        help="with no model yet: typical (TypiClust on self-supervised features "
        "trained on the pool, minutes on a CPU; the default) or kcenter "
        "(k-center diversity on downsampled pixels, instant)",
    )
    query.add_argument(
        "--contrastive-steps",
        type=_positive,
        default=600,
        help="training steps of the self-supervised encoder of --cold-start typical (default 600)",
    )
    query.add_argument("--seed", type=int, default=0)
    query.add_argument("--json", action="store_true", help="print the round as JSON")
    query.set_defaults(run=_query)


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value}: must be 1 or more")
    return value


def _niceness(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"{value}: niceness can only lower the priority (>= 0)")
    return value


def _train(args: argparse.Namespace) -> int:
    from workbench.loop import (
        ActiveLearningLoop,
        LoopError,
        StoppingCriteria,
        default_recipe,
        records_to_store,
        runs_on,
    )
    from workbench.recipes import UNetFactory
    from workbench.store import Task, open_project

    if args.nice is not None:
        from workbench.background import lower_priority

        lower_priority(args.nice)
    changes: dict[str, object] = {"warm_start": not args.fresh}
    if args.epochs:
        changes["max_epochs"] = args.epochs
    if args.patience:
        changes["patience"] = args.patience
    if args.mc_samples:
        changes["mc_samples"] = args.mc_samples
    if args.batch_size:
        changes["batch_size"] = args.batch_size
    if args.accelerator:
        changes["accelerator"] = args.accelerator
    if args.devices:
        changes["devices"] = args.devices
    if args.num_nodes:
        changes["num_nodes"] = args.num_nodes
    if (args.devices or 1) * (args.num_nodes or 1) > 1:
        changes["strategy"] = "ddp"
    with open_project(args.dir) as store:
        if store.config.task is not Task.SEGMENTATION:
            for field in ("features", "patch_size", "tta"):
                if getattr(args, field):
                    flag = "--" + field.replace("_", "-")
                    raise LoopError(
                        f"{flag} is for segmentation projects", path=args.dir, field=field
                    )
        if args.features:
            changes["network"] = UNetFactory(tuple(args.features))
            changes["divisible_by"] = 2 ** (len(args.features) - 1)
        if args.tta:
            changes["tta"] = True
        if args.patch_size:
            changes["patch_size"] = tuple(args.patch_size)
        recipe = default_recipe(store, **changes)
        loop = ActiveLearningLoop(store, recipe=recipe, ssl_init=not args.fresh)
        if not records_to_store():  # another process of a DDP training: train, stay quiet
            loop.train(seed=args.seed)
            return 0
        device, precision = runs_on(recipe)
        console.print(f"training on {device} ({precision})...")
        with ProgressBar("training (epochs)") as advance:
            model = loop.train(
                seed=args.seed, progress=lambda _what, done, total: advance(done, total)
            )
        with ProgressBar("scoring the pool") as advance:
            scored = loop.score(model, progress=lambda _what, done, total: advance(done, total))
        stop_reason = loop.stop_reason(
            StoppingCriteria(
                label_budget=args.label_budget,
                plateau_rounds=args.plateau_rounds,
                min_mean_uncertainty=args.min_uncertainty,
            )
        )
    if args.json:
        print(
            json.dumps(
                {**dataclasses.asdict(model), "stop_reason": stop_reason}, default=str, indent=2
            )
        )
    metrics = ", ".join(f"{k} {v:.4f}" for k, v in sorted(model.metrics.items()))
    console.print(f"model version {model.id} ready ({metrics}); scored {scored} pool items")
    if "trunk_from_round" in model.params:
        console.print(
            f"its trunk started from the self-supervised encoder of cold-start round "
            f"{model.params['trunk_from_round']} (--fresh: from random weights)"
        )
    console.print(
        f"the loop can stop: {stop_reason}"
        if stop_reason
        else "no stopping criterion met: label the next round"
    )
    return 0


def _query(args: argparse.Namespace) -> int:
    from workbench.loop import ActiveLearningLoop
    from workbench.store import open_project

    params = {} if args.reduction is None else {"reduction": args.reduction}
    with open_project(args.dir) as store:
        loop = ActiveLearningLoop(store, contrastive_steps=args.contrastive_steps)
        trains_features = loop.cold_start_method(args.strategy, args.cold_start) == "typical"
        with (
            ProgressBar("self-supervised features")
            if trains_features
            else contextlib.nullcontext(lambda _done, _total: None)
        ) as advance:
            round_ = loop.query(
                args.strategy,
                args.batch,
                seed=args.seed,
                cold_start=args.cold_start,
                progress=lambda _what, done, total: advance(done, total),
                **params,
            )
    if args.json:
        print(json.dumps(dataclasses.asdict(round_), default=str, indent=2))
    console.print(
        f"round {round_.id} ({round_.strategy}) selected {len(round_.selected)} items; "
        "annotators are served them first"
    )
    return 0
