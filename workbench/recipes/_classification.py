"""The classification recipe: one training procedure for the simulation and the real loop."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from lightning.pytorch.callbacks import Callback
from monai.metrics import compute_roc_auc
from torch import Tensor, nn

from workbench.models import (
    ClassificationModule,
    ModelError,
    embeddings,
    keep_global_rng,
    mc_predict,
    pixels_as_float,
    recalibrate_batch_norm,
    small_cnn,
)
from workbench.recipes._augment import DEFAULT_ROTATE, augment_images
from workbench.recipes._checks import COUNT_MINIMUMS, require_counts
from workbench.recipes._data import (
    SplitDataModule,
    TensorItems,
    as_images,
    as_pixels,
    loader,
    split_val,
)
from workbench.recipes._fit import fit_best

NetworkFactory = Callable[..., nn.Module]
"""Called as ``factory(spatial_dims=, in_channels=, num_classes=)``; returns logits [B, C]."""

StateDict = Mapping[str, Tensor]


@dataclass(frozen=True)
class ClassificationRecipe:
    """How to train a classifier on a (small) labelled set.

    Defaults are tuned for 28x28 MedMNIST on a CPU: a two-conv CNN with dropout 0.5 before the
    last layer (which MC dropout samples), AdamW with strong weight decay, flips / small affine /
    intensity augmentation, inverse-frequency class weights, early stopping on val AUC, warm
    start from the previous round's weights when ``init_state`` is given (it removed the
    collapsed trainings of the cold recipe in docs/label-efficiency.md). After training, the
    BatchNorm statistics are recomputed on the un-augmented training images
    (``recalibrate_batch_norm``; the running averages lag the weights, which shifted predicted
    classes towards the minority class) and ``val_auc``/``val_acc`` re-measured with them.

    A training that ends degenerate (its val AUC at or below chance, or one class predicted for
    every val image, while the val set holds two classes or more) is run again with another
    seed, up to ``restarts`` times; the best by val AUC is kept and its metrics say how many
    trainings it took (``attempts``) and whether it is still degenerate (``degenerate``).

    ``devices`` x ``num_nodes`` processes with a data-parallel ``strategy`` (e.g. ``"ddp"``;
    ``accelerator="cpu"`` runs it on CPU with gloo) train the same model as one process, up to
    float rounding: ``batch_size`` stays the global batch, shared between the processes.
    """

    network: NetworkFactory = small_cnn
    spatial_dims: int = 2
    max_epochs: int = 40
    patience: int = 8
    min_steps_per_epoch: int = 10
    batch_size: int = 32
    lr: float = 2e-3
    weight_decay: float = 5e-2
    augment: bool = True
    flip_axes: tuple[int, ...] = (1,)
    rotate: float = DEFAULT_ROTATE
    shift: float = 0.08
    scale: float = 0.1
    intensity: float = 0.1
    mc_samples: int = 20
    class_weighting: bool = True
    recalibrate_batch_norm: bool = True
    restarts: int = 2
    warm_start: bool = True
    val_fraction: float = 0.2
    predict_batch_size: int = 512
    seed: int = 0
    accelerator: str = "auto"
    devices: int | str = 1
    strategy: str = "auto"
    num_nodes: int = 1

    def __post_init__(self) -> None:
        require_counts(self, {**COUNT_MINIMUMS, "restarts": 0})


@dataclass
class TrainedModel:
    """A trained module, its val metrics, the best checkpoint and its weights (for warm start).
    ``checkpoint_path`` is None when trained without a ``root_dir`` (no file is kept); it may
    be gone when the caller removes ``root_dir``."""

    module: nn.Module
    metrics: dict[str, float]
    checkpoint_path: Path | None
    state_dict: dict[str, Tensor]
    spatial_dims: int
    num_classes: int
    seed: int
    mc_samples: int
    predict_batch_size: int


_AUGMENT_SALT = 0x68E31DA4


class _AugmentedClassifier(ClassificationModule):
    """`ClassificationModule` that augments training batches after the device transfer; the
    random values are keyed by (seed, item id, draw) when the batch has ``draw`` numbers."""

    recipe: ClassificationRecipe | None = None

    def on_after_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        r = self.recipe
        if r is not None and r.augment and self.trainer.training and isinstance(batch, dict):
            batch = dict(batch)
            keys = self.batch_draw_keys(batch, _AUGMENT_SALT)
            batch["image"] = augment_images(
                batch["image"],
                flip_axes=r.flip_axes,
                rotate=r.rotate,
                shift=r.shift,
                scale=r.scale,
                intensity=r.intensity,
                keys=keys,
            )
        return batch


def class_weights(labels: np.ndarray, num_classes: int) -> list[float]:
    """Inverse class frequencies with mean 1 over the classes present (0 for absent ones)."""
    counts = np.bincount(labels.astype(np.int64), minlength=num_classes).astype(float)
    w = np.where(counts > 0, counts.sum() / np.maximum(counts, 1), 0.0)
    return [float(v) for v in w / w[counts > 0].mean()]


@keep_global_rng()
def train_classifier(
    recipe: ClassificationRecipe,
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_val: np.ndarray | None = None,
    y_val: np.ndarray | None = None,
    *,
    seed: int | None = None,
    num_classes: int | None = None,
    root_dir: str | Path | None = None,
    init_state: StateDict | None = None,
    trunk_state: StateDict | None = None,
    callbacks: Sequence[Callback] = (),
) -> TrainedModel:
    """Train ``recipe`` on images ``x_train`` ``[N, (C,) *spatial]`` (uint8 scaled to [0, 1])
    and class indices ``y_train`` ``[N]``/``[N, 1]``; early stopping and the kept weights use
    val AUC on ``(x_val, y_val)``, or on a seeded stratified ``val_fraction`` of the training set
    when no val set is given. ``init_state`` (a previous `TrainedModel.state_dict`) is loaded
    first when ``recipe.warm_start``; otherwise ``trunk_state`` (a self-supervised trunk,
    `train_contrastive`'s ``trunk_state``), when given, starts the network's ``trunk`` and the
    head starts fresh. Deterministic for a given ``seed`` on one machine, and the
    same (up to float rounding) whatever ``recipe.devices``: with a ``"ddp"`` strategy launched
    from a script, every process runs this call and gets the same trained model. The caller's
    global random generators are left as they were (`keep_global_rng`)."""
    seed = recipe.seed if seed is None else seed
    y = np.asarray(y_train).reshape(-1).astype(np.int64)
    x = np.asarray(x_train)
    if x_val is None or y_val is None:
        in_val = split_val(len(y), recipe.val_fraction, seed, y)
        x, xv, y, yv = x[~in_val], x[in_val], y[~in_val], y[in_val]
    else:
        xv, yv = np.asarray(x_val), np.asarray(y_val).reshape(-1).astype(np.int64)
    n_cls = num_classes or int(max(y.max(initial=0), yv.max(initial=0))) + 1
    best: TrainedModel | None = None
    for attempt in range(recipe.restarts + 1):
        where = root_dir
        if attempt and root_dir is not None:
            where = Path(root_dir) / f"restart-{attempt}"
        trained = _train_once(
            recipe,
            x,
            y,
            xv,
            yv,
            seed=_restart_seed(seed, attempt),
            n_cls=n_cls,
            root_dir=where,
            init_state=init_state,
            trunk_state=trunk_state,
            callbacks=callbacks,
        )
        if best is None or _val_auc(trained) > _val_auc(best):
            best = trained
        if not trained.metrics["degenerate"]:
            break
    assert best is not None
    best.metrics["attempts"] = float(attempt + 1)
    return best


def _trunk_of(net: nn.Module) -> nn.Module | None:
    """A `TrunkHeadNet`'s ``trunk``; None for a network without one."""
    trunk = getattr(net, "trunk", None)
    return trunk if isinstance(trunk, nn.Module) else None


def trunk_fits(
    network: NetworkFactory,
    trunk_state: StateDict,
    *,
    spatial_dims: int,
    in_channels: int,
    num_classes: int,
) -> bool:
    """Whether the networks ``network`` builds have a trunk that takes ``trunk_state``: the
    same parameter and buffer names, of the same shapes (`small_cnn` and, say, a
    ``functools.partial`` of it with another dropout). Builds one network, leaving the global
    random state as it was."""
    with torch.random.fork_rng(devices=[]):
        net = network(spatial_dims=spatial_dims, in_channels=in_channels, num_classes=num_classes)
    trunk = _trunk_of(net)
    if trunk is None:
        return False
    own = trunk.state_dict()
    return own.keys() == trunk_state.keys() and all(
        own[name].shape == trunk_state[name].shape for name in own
    )


def load_trunk(net: nn.Module, trunk_state: StateDict) -> None:
    """Load pretrained weights into ``net.trunk`` (a `TrunkHeadNet`'s), refusing a network
    without one or weights of another shape."""
    trunk = _trunk_of(net)
    if trunk is None:
        raise ModelError(
            f"trunk_state needs a network with a trunk (TrunkHeadNet), got {type(net).__name__}",
            field="trunk_state",
        )
    try:
        trunk.load_state_dict(dict(trunk_state))
    except RuntimeError as error:
        first = str(error).strip().splitlines()
        raise ModelError(
            f"trunk_state does not fit the network's trunk: "
            f"{first[-1].strip() if first else error}",
            field="trunk_state",
        ) from error


def _restart_seed(seed: int, attempt: int) -> int:
    """The training seed of the ``attempt``-th restart (0: ``seed`` itself)."""
    if attempt == 0:
        return seed
    state = np.random.SeedSequence([seed & 0xFFFFFFFF, attempt, 0x5EED]).generate_state(1)
    return int(state[0] & 0x7FFFFFFF)


def _val_auc(trained: TrainedModel) -> float:
    value = trained.metrics.get("val_auc", float("nan"))
    return value if np.isfinite(value) else float("-inf")


def _train_once(
    recipe: ClassificationRecipe,
    x: np.ndarray,
    y: np.ndarray,
    xv: np.ndarray,
    yv: np.ndarray,
    *,
    seed: int,
    n_cls: int,
    root_dir: str | Path | None,
    init_state: StateDict | None,
    trunk_state: StateDict | None,
    callbacks: Sequence[Callback],
) -> TrainedModel:
    """One training of `train_classifier`, its metrics with ``degenerate`` (0 or 1)."""
    images = as_images(x, recipe.spatial_dims)
    torch.manual_seed(seed)
    net = recipe.network(
        spatial_dims=recipe.spatial_dims, in_channels=images.shape[1], num_classes=n_cls
    )
    module = _AugmentedClassifier(
        net,
        num_classes=n_cls,
        in_channels=images.shape[1],
        spatial_dims=recipe.spatial_dims,
        lr=recipe.lr,
        weight_decay=recipe.weight_decay,
        class_weights=class_weights(y, n_cls) if recipe.class_weighting else None,
        mc_samples=recipe.mc_samples,
        mc_seed=seed,
    )
    module.recipe = recipe
    if init_state is not None and recipe.warm_start:
        module.net.load_state_dict(dict(init_state))
    elif trunk_state is not None:
        load_trunk(module.net, trunk_state)
    train_items = TensorItems(images, torch.from_numpy(y))
    val_items = TensorItems(as_images(xv, recipe.spatial_dims), torch.from_numpy(yv))
    data = SplitDataModule(
        train_items,
        val_items,
        batch_size=recipe.batch_size,
        min_steps=recipe.min_steps_per_epoch,
        predict_batch_size=recipe.predict_batch_size,
        seed=seed,
    )
    best = fit_best(
        module,
        data,
        max_epochs=recipe.max_epochs,
        patience=recipe.patience,
        monitor="val_auc",
        seed=seed,
        root_dir=root_dir,
        accelerator=recipe.accelerator,
        devices=recipe.devices,
        strategy=recipe.strategy,
        num_nodes=recipe.num_nodes,
        callbacks=callbacks,
    )
    metrics, state = dict(best.metrics), best.net_state
    batches = (b["image"] for b in loader(train_items, recipe.predict_batch_size))
    if recipe.recalibrate_batch_norm and recalibrate_batch_norm(module.net, batches):
        # the best weights with BatchNorm statistics of their own (see recalibrate_batch_norm)
        state = {k: v.detach().cpu().clone() for k, v in module.net.state_dict().items()}
    # the kept model's own val metrics (Lightning's ``val_auc`` is the last epoch's)
    metrics = {
        **metrics,
        "degenerate": 0.0,
        **_val_metrics(module, val_items, recipe.predict_batch_size),
    }
    return TrainedModel(
        module=module,
        metrics=metrics,
        checkpoint_path=best.checkpoint_path,
        state_dict=state,
        spatial_dims=recipe.spatial_dims,
        num_classes=n_cls,
        seed=seed,
        mc_samples=recipe.mc_samples,
        predict_batch_size=recipe.predict_batch_size,
    )


def _val_metrics(
    module: ClassificationModule, val_set: TensorItems, batch_size: int
) -> dict[str, float]:
    """``val_auc``, ``val_acc`` and ``degenerate`` (1.0 when, with two classes or more in the
    val set, the AUC is at or below chance or every val image gets the same predicted class)
    of the module as it now is (eval mode, dropout off)."""
    if len(val_set) == 0:
        return {}
    probs = _eval_probs(module, loader(val_set, batch_size), int(module.hparams["num_classes"]))
    labels = np.asarray(val_set.labels).reshape(-1)
    m = classification_metrics(probs, labels)
    degenerate = len(np.unique(labels)) >= 2 and (
        not m["auc"] > 0.5 or len(np.unique(probs.argmax(1))) == 1
    )
    return {"val_auc": m["auc"], "val_acc": m["accuracy"], "degenerate": float(degenerate)}


def _eval_probs(module: nn.Module, batches: Any, num_classes: int) -> np.ndarray:
    """Softmax of ``module`` in eval mode (dropout off) over batches of ``{"image"}``, on the
    module's device.  # -> [N, C]"""
    module.eval()
    device = next(module.parameters()).device
    parts = []
    with torch.inference_mode():
        for batch in batches:
            x = pixels_as_float(batch["image"].to(device))
            parts.append(F.softmax(module(x).float(), 1).cpu().numpy())
    return np.concatenate(parts) if parts else np.zeros((0, num_classes), np.float32)


def _items(trained: TrainedModel, x: np.ndarray, ids: np.ndarray | None = None) -> Any:
    items = TensorItems(as_pixels(x, trained.spatial_dims), ids=ids)
    return loader(items, trained.predict_batch_size)


def predict_probs(
    trained: TrainedModel, x: np.ndarray, T: int | None = None, *, ids: np.ndarray | None = None
) -> np.ndarray:
    """MC-dropout class probabilities, streamed batch by batch. Dropout masks are keyed by
    (training seed, item id, sample): pass integer ``ids`` [N] (e.g. store item ids) for scores
    that do not change when the pool does; positions stand in otherwise.
    # x [N, (C,) *spatial] -> [N, T, C]"""
    samples = trained.mc_samples if T is None else T
    out = mc_predict(trained.module, _items(trained, x, ids), samples, seed=trained.seed)
    return out.values.astype(np.float32)


def predict_mean(trained: TrainedModel, x: np.ndarray) -> np.ndarray:
    """Deterministic (dropout off) class probabilities.  # [N, (C,) *spatial] -> [N, C]"""
    return _eval_probs(trained.module, _items(trained, x), trained.num_classes)


def embed(trained: TrainedModel, x: np.ndarray) -> np.ndarray:
    """Penultimate features (eval mode), for core-set and BADGE.  # [N, (C,) *spatial] -> [N, D]"""
    return embeddings(trained.module, _items(trained, x)).values


def classification_metrics(probs: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """Test AUC (macro one-vs-rest) and accuracy.  # probs [N, C], labels [N]"""
    y = np.asarray(labels).reshape(-1).astype(np.int64)
    p = np.asarray(probs, np.float32)
    present = np.unique(y)
    value = float("nan")
    if len(present) >= 2:
        onehot = np.eye(p.shape[1], dtype=np.float32)[y][:, present]
        value = float(
            np.asarray(
                compute_roc_auc(
                    torch.from_numpy(p[:, present]), torch.from_numpy(onehot), average="macro"
                )
            )
        )
    return {"auc": value, "accuracy": float((p.argmax(1) == y).mean())}
