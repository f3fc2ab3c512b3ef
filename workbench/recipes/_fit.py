"""The fit step both recipes share: train with early stopping, then restore the best weights."""

from __future__ import annotations

import tempfile
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback
from torch import Tensor

from workbench.models import fit_and_checkpoint, make_trainer


@dataclass(frozen=True)
class BestFit:
    """Metrics, the best checkpoint (None when none was kept), and the network's weights from
    it (``net.`` prefix off)."""

    metrics: dict[str, float]
    checkpoint_path: Path | None
    net_state: dict[str, Tensor]


def fit_best(
    module: L.LightningModule,
    data: L.LightningDataModule,
    *,
    max_epochs: int,
    patience: int,
    monitor: str,
    seed: int,
    root_dir: str | Path | None,
    mode: Literal["min", "max"] = "max",
    accelerator: str = "auto",
    devices: int | str = 1,
    strategy: str = "auto",
    num_nodes: int = 1,
    callbacks: Sequence[Callback] = (),
) -> BestFit:
    """Fit ``module`` with early stopping on ``monitor``; load the best weights back into it
    (left in eval mode). ``devices`` x ``num_nodes`` processes (``strategy``, e.g. "ddp") keep
    the data module's own samplers (``use_distributed_sampler=False``, see `SplitDataModule`)
    and share BatchNorm statistics; every process returns the same best weights. ``callbacks``
    are added to the trainer's; an improvement of a metric in the module's ``also_improving``
    (name -> "min"/"max", e.g. `SegmentationModule`'s val loss) also resets the patience.

    Lightning's files go under ``root_dir``; without one they go to a temporary folder that is
    removed once the weights are loaded (nothing trained from the images is left on disk), and
    ``checkpoint_path`` is None."""
    with _training_folder(root_dir) as root:
        trainer = make_trainer(
            max_epochs,
            root_dir=root,
            monitor=monitor,
            mode=mode,
            patience=patience,
            seed=seed,
            accelerator=accelerator,
            devices=devices,
            strategy=strategy,
            num_nodes=num_nodes,
            use_distributed_sampler=False,
            callbacks=callbacks,
            also_improving=getattr(module, "also_improving", None),
        )
        with warnings.catch_warnings():  # batch augmentation lives on the module, on purpose
            warnings.filterwarnings("ignore", message=".*on_after_batch_transfer.*")
            fit = fit_and_checkpoint(module, data, trainer=trainer)
        state = torch.load(fit.checkpoint_path, map_location="cpu", weights_only=False)[
            "state_dict"
        ]
        trainer.strategy.barrier("fit_best")  # every process has read rank 0's checkpoint
    module.load_state_dict(state)
    module.eval()
    return BestFit(
        metrics=fit.metrics,
        checkpoint_path=fit.checkpoint_path if root_dir is not None else None,
        net_state={k.removeprefix("net."): v for k, v in state.items() if k.startswith("net.")},
    )


@contextmanager
def _training_folder(root_dir: str | Path | None) -> Iterator[Path]:
    """``root_dir`` as given, or a temporary folder removed on exit."""
    if root_dir is not None:
        yield Path(root_dir)
        return
    with tempfile.TemporaryDirectory(prefix="wb-recipe-", ignore_cleanup_errors=True) as root:
        yield Path(root)
