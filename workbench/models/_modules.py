"""LightningModules: the injected network plus loss, metrics, optimiser and MC prediction."""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import ExitStack
from typing import Any, ClassVar, Literal

import lightning as L
import numpy as np
import torch
import torch.nn.functional as F
from monai.metrics import DiceMetric, compute_roc_auc
from torch import Tensor, nn

from workbench.models._dropout import KeyedDropout, draw_keys, item_keys, mc_dropout
from workbench.models._errors import ModelError
from workbench.models._losses import DiceCELoss
from workbench.models._mc import _mc_probs, split_batch
from workbench.models._pixels import pixels_as_float
from workbench.models._windows import SlidingWindow, random_patches, window_predict


def _check_images(x: Tensor, spatial_dims: int, in_channels: int) -> None:
    if x.ndim != spatial_dims + 2:
        raise ModelError(
            f"the model expects {spatial_dims}D images shaped [B, C, *spatial] "
            f"({spatial_dims + 2} dims), got shape {tuple(x.shape)}"
        )
    if x.shape[1] != in_channels:
        raise ModelError(f"the model expects {in_channels} channel(s), got {x.shape[1]}")


def _check_labels(y: Tensor, num_classes: int) -> None:
    if y.numel() and (int(y.min()) < 0 or int(y.max()) >= num_classes):
        raise ModelError(
            f"labels must lie in 0..{num_classes - 1}, got {int(y.min())}..{int(y.max())}"
        )


def _check_logits(logits: Tensor, num_classes: int) -> None:
    if logits.shape[1] != num_classes:
        raise ModelError(
            f"the network outputs {logits.shape[1]} classes but the module was built for "
            f"num_classes={num_classes}"
        )


_TRAIN_DROPOUT_SALT = 0x5BD1E995
_PATCH_SALT = 0x27D4EB2F


class _MCPredictMixin(L.LightningModule):
    """``predict_step`` returns MC-dropout probabilities {"id": [B], "probs": [B, T, C, ...]}."""

    net: nn.Module

    def predict_step(self, batch: Any, batch_idx: int, dataloader_idx: int = 0) -> dict[str, Any]:
        if not (isinstance(batch, dict) and "id" in batch):
            raise ModelError("predict batches must be dicts with 'image' and 'id' (item ids)")
        x, ids = split_batch(batch, 0)
        _check_images(x, self.hparams["spatial_dims"], self.hparams["in_channels"])
        seed = self.hparams["mc_seed"]
        samples = int(self.hparams["mc_samples"])
        with ExitStack() as stack:
            stack.enter_context(mc_dropout(self.net))
            keyed = stack.enter_context(KeyedDropout(self.net, seed)) if seed is not None else None
            keys = item_keys(ids) if keyed is not None else torch.empty(0, dtype=torch.int64)
            probs = _mc_probs(
                self.net, pixels_as_float(x), keys, samples, samples, keyed, "softmax", self.window
            )
        return {"id": ids, "probs": probs}

    @property
    def window(self) -> SlidingWindow | None:
        """Sliding-window inference, for modules built with a ``patch_size``."""
        return None

    def salted_seed(self, salt: int) -> int:
        """This module's seed mixed with ``salt``: one random stream per use (dropout, patches,
        augmentation)."""
        return (self.hparams["mc_seed"] or 0) ^ salt

    def batch_draw_keys(self, batch: dict[str, Tensor], salt: int) -> Tensor | None:
        """Keys of a training batch's draws, from (seed ^ ``salt``, item id, draw number); None
        for a batch without ``draw`` numbers.  # [B]"""
        if "draw" not in batch or "id" not in batch:
            return None
        return draw_keys(batch["id"], batch["draw"], self.salted_seed(salt))

    def _forward_keyed(self, x: Tensor, batch: dict[str, Tensor]) -> Tensor:
        """``self(x)``; a training batch with ``draw`` numbers gets dropout masks keyed by
        (seed, item id, draw), so they do not depend on the process that draws them."""
        keys = self.batch_draw_keys(batch, _TRAIN_DROPOUT_SALT)
        if keys is None:
            return self(x)
        with KeyedDropout(self.net, self.salted_seed(_TRAIN_DROPOUT_SALT)) as keyed:
            keyed.rows = keys
            return self(x)

    def _global_mean(self, loss: Tensor, n: int) -> tuple[Tensor, Tensor]:
        """From this process's mean ``loss`` over its ``n`` items: the loss to back-propagate,
        scaled so that DDP's averaging gives the gradients of the global batch's mean even when
        the shares differ in size, and that mean itself (detached, to log)."""
        world = self.trainer.world_size
        if world == 1:
            return loss, loss.detach()
        totals = torch.stack([loss.detach() * n, torch.tensor(float(n), device=loss.device)])
        totals = self.trainer.strategy.reduce(totals, reduce_op="sum")
        return loss * (n * world) / totals[1], totals[0] / totals[1]

    def _check_loss(self, loss: Tensor, stage: str, batch_idx: int) -> None:
        if not torch.isfinite(loss.detach()):
            raise ModelError(
                f"{stage} loss is {loss.item()} at global step {self.global_step} "
                f"(epoch {self.current_epoch}, batch {batch_idx}): lower the learning rate, "
                "check the images and labels for NaN/inf, or use 32-bit precision"
            )

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.AdamW(
            self.parameters(),
            lr=self.hparams["lr"],
            weight_decay=self.hparams["weight_decay"],
            eps=self.hparams.get("adam_eps", 1e-8),
        )


class ClassificationModule(_MCPredictMixin):
    """Image classification: weighted cross-entropy, val AUC (macro one-vs-rest) and accuracy,
    AdamW. Batches are dicts with ``image`` [B, C, *spatial], ``label`` [B] or [B, 1], ``id``.

    Data parallel training equals one process on the global batch: the training loss of each
    process is ``world_size * sum(w_i l_i) / sum over the global batch of w_i`` (DDP averages
    the gradients), and when training batches carry ``draw`` numbers (`GlobalBatchSampler`)
    dropout masks are keyed by (``mc_seed``, item id, draw) instead of a per-process RNG. Val
    AUC and accuracy count each item id once, however the val set is spread over processes.

    ``adam_eps`` is 1e-6, not AdamW's 1e-8: a conv bias just before BatchNorm has no effect
    in training and its gradient is float rounding (~1e-7), which eps=1e-8 turns into lr-sized
    random steps (that then shift eval outputs, whose BN running means lag behind); with 1e-6
    those steps shrink ~10x and N-process training stays within ~1e-5 of one process. Gradients
    above ~1e-5 are unaffected.
    """

    monitor = "val_auc"
    monitor_mode = "max"

    def __init__(
        self,
        net: nn.Module,
        *,
        num_classes: int = 2,
        in_channels: int = 1,
        spatial_dims: int = 2,
        lr: float = 1e-3,
        weight_decay: float = 1e-4,
        class_weights: Sequence[float] | None = None,
        mc_samples: int = 20,
        mc_seed: int | None = 0,
        adam_eps: float = 1e-6,
    ) -> None:
        super().__init__()
        self.save_hyperparameters(ignore=["net"])
        self.net = net
        if class_weights is not None and len(class_weights) != num_classes:
            raise ModelError(f"{len(class_weights)} class weights for {num_classes} classes")
        weights = None if class_weights is None else torch.tensor(class_weights, dtype=torch.float)
        self.class_weights: Tensor | None
        self.register_buffer("class_weights", weights)
        self._val_probs: list[Tensor] = []
        self._val_labels: list[Tensor] = []
        self._val_keys: list[Tensor] | None = []

    def forward(self, x: Tensor) -> Tensor:
        """Logits.  # [B, C, *spatial] -> [B, num_classes]"""
        return self.net(x)

    def _inputs(self, batch: dict[str, Tensor]) -> tuple[Tensor, Tensor]:
        x, y = pixels_as_float(batch["image"]), batch["label"].long().reshape(-1)
        _check_images(x, self.hparams["spatial_dims"], self.hparams["in_channels"])
        _check_labels(y, self.hparams["num_classes"])
        return x, y

    def _logits(self, x: Tensor, batch: dict[str, Tensor]) -> Tensor:
        logits = self._forward_keyed(x, batch)
        _check_logits(logits, self.hparams["num_classes"])
        return logits

    def _step(self, batch: dict[str, Tensor]) -> tuple[Tensor, Tensor, Tensor]:
        x, y = self._inputs(batch)
        logits = self._logits(x, batch)
        return F.cross_entropy(logits.float(), y, weight=self.class_weights), logits, y

    def training_step(self, batch: dict[str, Tensor], batch_idx: int) -> Tensor:
        x, y = self._inputs(batch)
        logits = self._logits(x, batch)
        weighted = F.cross_entropy(logits.float(), y, weight=self.class_weights, reduction="none")
        weights = (
            self.class_weights[y] if self.class_weights is not None else torch.ones_like(weighted)
        )
        # [sum of w_i l_i, sum of w_i] over the global batch (all processes)
        totals = torch.stack([weighted.detach().sum(), weights.sum()])
        totals = self.trainer.strategy.reduce(totals, reduce_op="sum")
        loss = weighted.sum() * self.trainer.world_size / totals[1]
        self._check_loss(loss, "training", batch_idx)
        self.log("train_loss", totals[0] / totals[1], prog_bar=True, batch_size=len(y))
        return loss

    def validation_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        loss, logits, y = self._step(batch)
        self._check_loss(loss, "validation", batch_idx)
        self.log("val_loss", loss, sync_dist=True, batch_size=len(y))
        self._val_probs.append(torch.softmax(logits.float(), 1))
        self._val_labels.append(y)
        if self._val_keys is not None:
            if "id" in batch:
                self._val_keys.append(item_keys(batch["id"]).to(y.device))
            else:
                self._val_keys = None

    def _gather(self, tensor: Tensor) -> Tensor:
        gathered = self.all_gather(tensor)
        assert isinstance(gathered, Tensor)
        return gathered

    def on_validation_epoch_end(self) -> None:
        if not self._val_probs:
            return
        probs = self._gather(torch.cat(self._val_probs)).reshape(-1, self.hparams["num_classes"])
        labels = self._gather(torch.cat(self._val_labels)).reshape(-1)
        if self._val_keys is not None:  # each item once: padded or unsharded val sets repeat
            keys = self._gather(torch.cat(self._val_keys)).reshape(-1).cpu().numpy()
            first = np.sort(np.unique(keys, return_index=True)[1])
            index = torch.from_numpy(first).to(probs.device)
            probs, labels = probs[index], labels[index]
        self._val_probs.clear()
        self._val_labels.clear()
        self._val_keys = []
        self.log("val_acc", (probs.argmax(1) == labels).float().mean(), sync_dist=True)
        self.log("val_auc", torch.tensor(auc(probs, labels), device=self.device), sync_dist=True)


def auc(probs: Tensor, labels: Tensor) -> float:
    """Macro one-vs-rest ROC AUC over the classes present; NaN with fewer than two classes.
    # probs [N, C], labels [N]"""
    present = torch.unique(labels)
    if len(present) < 2:
        return float("nan")
    onehot = F.one_hot(labels.long(), probs.shape[1])[:, present]
    value = compute_roc_auc(probs[:, present].cpu(), onehot.cpu(), average="macro")
    return float(np.asarray(value))


class SegmentationModule(_MCPredictMixin):
    """Semantic segmentation: DiceCE loss, val Dice (foreground mean), AdamW. Batches are dicts
    with ``image`` [B, C, *spatial], ``label`` [B, 1, *spatial] (class indices) and ``id``.

    With ``patch_size``, scans larger than one forward pass can hold are handled in patches:
    each training image is cut to one random patch (a third of them centred on foreground), and
    validation and MC prediction run over sliding windows (``sw_overlap``, ``sw_batch_size``
    patches per pass, Gaussian blending) on the whole scan.

    Several processes (DDP) train the same model as one, up to float rounding, when batches
    carry ``draw`` numbers (as `workbench.recipes` serves them): the loss of a share is scaled
    to the global batch's mean, and dropout masks and patches are keyed by (seed, item, draw)."""

    monitor = "val_dice"
    monitor_mode = "max"
    # Dice can stay flat for epochs while the loss still falls, before the network finds the
    # foreground: early stopping waits until neither improves (`EarlyStoppingOnAny`)
    also_improving: ClassVar[dict[str, Literal["min", "max"]]] = {"val_loss": "min"}

    def __init__(
        self,
        net: nn.Module,
        *,
        num_classes: int = 2,
        in_channels: int = 1,
        spatial_dims: int = 3,
        lr: float = 1e-3,
        weight_decay: float = 1e-5,
        include_background: bool = False,
        mc_samples: int = 8,
        mc_seed: int | None = 0,
        patch_size: Sequence[int] | None = None,
        sw_overlap: float = 0.25,
        sw_batch_size: int = 4,
    ) -> None:
        super().__init__()
        if patch_size is not None:
            patch_size = tuple(int(s) for s in patch_size)
            if len(patch_size) != spatial_dims:
                raise ModelError(
                    f"patch size {patch_size} has {len(patch_size)} axes but the "
                    f"model is {spatial_dims}D",
                    field="patch_size",
                )
        self.save_hyperparameters(ignore=["net"])
        self._window = (
            None
            if patch_size is None
            else SlidingWindow(tuple(patch_size), sw_overlap, sw_batch_size)
        )
        self.net = net
        self.loss = DiceCELoss(to_onehot_y=True, softmax=True)
        self.dice = DiceMetric(include_background=include_background, reduction="mean")

    def forward(self, x: Tensor) -> Tensor:
        """Logits.  # [B, C, *spatial] -> [B, num_classes, *spatial]"""
        return self.net(x)

    @property
    def window(self) -> SlidingWindow | None:
        return self._window

    def training_batch(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        """What a training step learns from, images as float (`pixels_as_float`): with
        ``patch_size``, one random patch per scan
        (a batch already cut to patches, as `PatchDraws` serves it, passes unchanged). Called
        in the step, so no data module's batch-transfer hook can bypass it."""
        batch = {**batch, "image": pixels_as_float(batch["image"])}
        window = self._window
        if window is None:
            return batch
        y = batch["label"]
        y = y.unsqueeze(1) if y.ndim == batch["image"].ndim - 1 else y
        keys = self.batch_draw_keys(batch, _PATCH_SALT)
        x, y = random_patches(batch["image"], y, window.roi_size, keys=keys)
        return {**batch, "image": x, "label": y}

    def _step(
        self, batch: dict[str, Tensor], window: SlidingWindow | None = None, training: bool = False
    ) -> tuple[Tensor, Tensor, Tensor]:
        x, y = pixels_as_float(batch["image"]), batch["label"].long()
        dims = self.hparams["spatial_dims"]
        _check_images(x, dims, self.hparams["in_channels"])
        if y.ndim == dims + 1:
            y = y.unsqueeze(1)
        if y.shape[2:] != x.shape[2:] or y.shape[1] != 1:
            raise ModelError(
                f"label shape {tuple(y.shape)} does not match image shape {tuple(x.shape)}"
            )
        _check_labels(y, self.hparams["num_classes"])
        if training:
            logits = self._forward_keyed(x, batch)
        else:
            logits = self(x) if window is None else window_predict(self.net, x, window)
        _check_logits(logits, self.hparams["num_classes"])
        return self.loss(logits.float(), y), logits, y

    def training_step(self, batch: dict[str, Tensor], batch_idx: int) -> Tensor:
        loss, _, y = self._step(self.training_batch(batch), training=True)
        self._check_loss(loss, "training", batch_idx)
        # DiceCE is a mean over the share's items (same-shaped: a per-item Dice, a per-voxel CE)
        share, mean = self._global_mean(loss, len(y))
        self.log("train_loss", mean, prog_bar=True, batch_size=len(y))
        return share

    def validation_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        loss, logits, y = self._step(batch, self._window)
        self._check_loss(loss, "validation", batch_idx)
        self.log("val_loss", loss, sync_dist=True, batch_size=len(y))
        n = self.hparams["num_classes"]
        pred = F.one_hot(logits.argmax(1), n).movedim(-1, 1)
        self.dice(pred, F.one_hot(y[:, 0], n).movedim(-1, 1))

    def on_validation_epoch_end(self) -> None:
        value = self.dice.aggregate()
        self.dice.reset()
        score = (
            value.item() if isinstance(value, Tensor) else float(np.mean([v.item() for v in value]))
        )
        self.log("val_dice", score, sync_dist=True)
