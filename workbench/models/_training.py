"""Trainer factory, fit-and-checkpoint, and a DDP-safe writer of per-item scores."""

from __future__ import annotations

import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import lightning as L
import numpy as np
import torch
from lightning.pytorch.accelerators import CUDAAccelerator
from lightning.pytorch.callbacks import (
    BasePredictionWriter,
    Callback,
    EarlyStopping,
    ModelCheckpoint,
)
from lightning.pytorch.loggers import CSVLogger

from workbench.models._errors import ModelError, out_of_memory_as_model_error
from workbench.models._mc import MCPrediction, Reducer
from workbench.models._sharding import GlobalBatchNorm
from workbench.models._stopping import EarlyStoppingOnAny
from workbench.models._threads import keep_torch_threads


def training_device(accelerator: str = "auto") -> str:
    """``cuda`` when a Trainer with this ``accelerator`` will run on CUDA, else ``cpu``."""
    on_gpu = accelerator in ("auto", "gpu", "cuda") and torch.cuda.is_available()
    return "cuda" if on_gpu else "cpu"


def default_precision(accelerator: str = "auto") -> str:
    """``16-mixed`` when training will run on CUDA, else ``32-true``."""
    return "16-mixed" if training_device(accelerator) == "cuda" else "32-true"


def make_trainer(
    max_epochs: int,
    *,
    root_dir: str | Path | None = None,
    monitor: str = "val_auc",
    mode: Literal["min", "max"] = "max",
    patience: int = 5,
    seed: int | None = 0,
    accelerator: str = "auto",
    devices: int | str = "auto",
    strategy: str = "auto",
    num_nodes: int = 1,
    precision: str | None = None,
    log: bool = False,
    callbacks: Sequence[Callback] = (),
    use_distributed_sampler: bool = True,
    sync_batchnorm: bool | None = None,
    also_improving: Mapping[str, Literal["min", "max"]] | None = None,
    **trainer_kwargs: Any,
) -> L.Trainer:
    """A quiet Trainer: early stopping and best-checkpointing on ``monitor``, AMP on CUDA only,
    seeded and deterministic when ``seed`` is given. Everything is written under ``root_dir``
    (a fresh temporary folder when None; with several processes the checkpoint folder is rank
    0's), never into the working directory; ``log`` adds a CSV logger there.

    Several processes (``devices`` x ``num_nodes``, e.g. ``strategy="ddp"``): BatchNorm layers
    use global-batch statistics (``sync_batchnorm`` None: on whenever more than one process;
    torch's SyncBatchNorm on CUDA, `GlobalBatchNorm` elsewhere, e.g. CPU with gloo).
    ``use_distributed_sampler=False`` keeps the data module's own samplers (as `SplitDataModule`
    needs: it shards the training batches itself and gives every process the whole val set).

    ``also_improving`` (name -> "min"/"max"): metrics whose improvement also resets the
    early-stopping patience (`EarlyStoppingOnAny`); the checkpoint still follows ``monitor``."""
    if seed is not None:
        L.seed_everything(seed, workers=True, verbose=False)
    root = Path(root_dir) if root_dir is not None else Path(tempfile.mkdtemp(prefix="workbench-"))

    def build(layer_sync: Literal["none", "torch", "global"]) -> L.Trainer:
        kwargs = dict(trainer_kwargs)
        if layer_sync == "torch":
            kwargs["sync_batchnorm"] = True
        elif layer_sync == "global":
            kwargs["plugins"] = [*kwargs.get("plugins", []), GlobalBatchNorm()]
        checkpoint = ModelCheckpoint(
            dirpath=root / "checkpoints", monitor=monitor, mode=mode, save_top_k=1, filename="best"
        )
        stopping: Callback = (
            EarlyStoppingOnAny({monitor: mode, **also_improving}, patience)
            if also_improving
            else EarlyStopping(monitor=monitor, mode=mode, patience=patience, check_finite=False)
        )
        return L.Trainer(
            max_epochs=max_epochs,
            default_root_dir=root,
            accelerator=accelerator,
            devices=devices,
            strategy=strategy,
            num_nodes=num_nodes,
            precision=precision or default_precision(accelerator),  # type: ignore[arg-type]
            deterministic="warn" if seed is not None else None,
            logger=CSVLogger(root, name="logs") if log else False,
            callbacks=[checkpoint, stopping, *callbacks],
            enable_progress_bar=False,
            enable_model_summary=False,
            num_sanity_val_steps=0,
            use_distributed_sampler=use_distributed_sampler,
            **kwargs,
        )

    trainer = build("none")
    if sync_batchnorm is False or (sync_batchnorm is None and trainer.world_size == 1):
        return trainer
    return build("torch" if isinstance(trainer.accelerator, CUDAAccelerator) else "global")


@dataclass(frozen=True)
class FitResult:
    """The best checkpoint and the final metrics (``best_<monitor>`` and ``epochs`` trained
    included)."""

    checkpoint_path: Path
    metrics: dict[str, float]


def fit_and_checkpoint(
    module: L.LightningModule,
    datamodule: L.LightningDataModule,
    *,
    max_epochs: int = 10,
    trainer: L.Trainer | None = None,
    **trainer_kwargs: Any,
) -> FitResult:
    """Fit, keep the best checkpoint on the module's ``monitor`` metric, return both. Early
    stopping also waits while a metric in the module's ``also_improving`` still improves."""
    monitor = getattr(module, "monitor", "val_loss")
    mode: Literal["min", "max"] = (
        "max" if getattr(module, "monitor_mode", "min") == "max" else "min"
    )
    trainer = trainer or make_trainer(
        max_epochs,
        monitor=monitor,
        mode=mode,
        also_improving=getattr(module, "also_improving", None),
        **trainer_kwargs,
    )
    with (
        out_of_memory_as_model_error("training", datamodule.hparams.get("batch_size")),
        keep_torch_threads(),
    ):
        trainer.fit(module, datamodule=datamodule)
    checkpoint = trainer.checkpoint_callback
    if not isinstance(checkpoint, ModelCheckpoint) or not checkpoint.best_model_path:
        if not isinstance(checkpoint, ModelCheckpoint) or checkpoint.dirpath is None:
            raise ModelError("the trainer has no checkpoint callback")
        path = Path(checkpoint.dirpath) / "last.ckpt"
        trainer.save_checkpoint(path)
    else:
        path = Path(checkpoint.best_model_path)
    metrics = {k: float(v) for k, v in trainer.callback_metrics.items() if v.numel() == 1}
    metrics["epochs"] = float(trainer.current_epoch)  # epochs trained (early stopping included)
    if isinstance(checkpoint, ModelCheckpoint) and checkpoint.best_model_score is not None:
        metrics[f"best_{monitor}"] = float(checkpoint.best_model_score)
    return FitResult(checkpoint_path=path, metrics=metrics)


class ScoreWriter(BasePredictionWriter):
    """Reduces each predicted batch ({"id", "probs"}) to per-item scores and writes one
    ``scores_rank<r>.npz`` per process into rank 0's ``output_dir``; `gather_scores` merges
    them. Use with
    ``trainer.predict(..., return_predictions=False)`` so nothing else is held in memory."""

    def __init__(self, output_dir: str | Path, reduce: Reducer) -> None:
        super().__init__(write_interval="batch")
        self.output_dir = Path(output_dir)
        self.reduce = reduce
        self._ids: list[np.ndarray] = []
        self._scores: list[np.ndarray] = []

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        # every process writes into rank 0's folder (each may have made its own temporary one)
        self.output_dir = Path(trainer.strategy.broadcast(str(self.output_dir)))

    def write_on_batch_end(
        self,
        trainer: L.Trainer,
        pl_module: L.LightningModule,
        prediction: Any,
        batch_indices: Sequence[int] | None,
        batch: Any,
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        self._ids.append(np.asarray(prediction["id"]))
        self._scores.append(self.reduce(prediction["probs"]).float().cpu().numpy())

    def on_predict_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.output_dir.mkdir(parents=True, exist_ok=True)
        ids = np.concatenate(self._ids) if self._ids else np.empty(0, np.int64)
        scores = np.concatenate(self._scores) if self._scores else np.empty(0, np.float32)
        np.savez(self.output_dir / f"scores_rank{trainer.global_rank}.npz", ids=ids, scores=scores)
        self._ids.clear()
        self._scores.clear()


def gather_scores(output_dir: str | Path) -> MCPrediction:
    """Merge the per-rank files of a `ScoreWriter`, drop duplicated ids (a padding
    DistributedSampler repeats items) and sort by id, so the result does not depend on the
    number of processes."""
    files = sorted(Path(output_dir).glob("scores_rank*.npz"))
    if not files:
        raise ModelError(f"no scores_rank*.npz in {output_dir}")
    parts = [np.load(f, allow_pickle=False) for f in files]
    ids = np.concatenate([p["ids"] for p in parts])
    scores = np.concatenate([p["scores"] for p in parts])
    unique, first = np.unique(ids, return_index=True)
    return MCPrediction(ids=unique, values=scores[first])
