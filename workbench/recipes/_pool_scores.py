"""Pool scoring in data-parallel shards, for classifiers and segmenters alike."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import lightning as L
import numpy as np

from workbench.models import (
    MCPrediction,
    ModelError,
    ScoreWriter,
    default_precision,
    gather_scores,
    keep_torch_threads,
)
from workbench.models._mc import Reducer
from workbench.recipes._classification import TrainedModel
from workbench.recipes._data import PoolDataModule, TensorItems, as_pixels
from workbench.recipes._segmentation import TrainedSegmenter


def predict_scores(
    trained: TrainedModel | TrainedSegmenter,
    x: np.ndarray,
    reduce: Reducer,
    *,
    ids: np.ndarray | None = None,
    accelerator: str = "auto",
    devices: int | str = 1,
    strategy: str = "auto",
    num_nodes: int = 1,
    root_dir: str | Path | None = None,
) -> MCPrediction:
    """Per-item scores ``reduce(probs)`` of MC-dropout probabilities (``[B, T, C] -> [B]`` for a
    classifier, ``[B, T, C, *spatial] -> [B]`` for a segmenter), by a Lightning Trainer on
    ``devices`` x ``num_nodes`` processes: each scores its shard of the pool, writes one file
    under ``root_dir`` (a temporary folder when None) and every process returns the merged
    scores sorted by id. Same values as ``reduce`` of `predict_probs` (or
    `predict_segmentation_probs`) whatever the number of processes (dropout masks keyed by
    (seed, id, sample)).  # x [N, (C,) *spatial] -> ids [N], values [N]"""
    created = root_dir is None
    root = Path(tempfile.mkdtemp(prefix="wb-scores-")) if root_dir is None else Path(root_dir)
    writer = ScoreWriter(root / "scores", reduce)
    trainer = L.Trainer(
        accelerator=accelerator,
        devices=devices,
        strategy=strategy,
        num_nodes=num_nodes,
        precision=default_precision(accelerator),  # type: ignore[arg-type]
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[writer],
    )
    items = TensorItems(as_pixels(x, trained.spatial_dims), ids=ids)
    window = getattr(trained, "window", None)  # over windows, one scan per step
    data = PoolDataModule(items, batch_size=1 if window else trained.predict_batch_size)
    module = trained.module
    if not isinstance(module, L.LightningModule):
        raise ModelError(
            "predict_scores needs the trained LightningModule (that of "
            "train_classifier or train_segmenter)"
        )
    with keep_torch_threads():
        trainer.predict(module, datamodule=data, return_predictions=False)
    trainer.strategy.barrier("predict_scores: files written")
    scores = gather_scores(writer.output_dir)
    trainer.strategy.barrier("predict_scores: files read")
    if created:  # each process its own folder; rank 0's holds the files
        shutil.rmtree(root, ignore_errors=True)
    trained.module.eval()
    return scores
