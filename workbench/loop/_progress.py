"""Training progress as a ``progress(what, done, total)`` callback, one call per epoch."""

from __future__ import annotations

from collections.abc import Callable

import lightning as L
from lightning.pytorch.callbacks import Callback

Progress = Callable[[str, int, int | None], None]


class EpochProgress(Callback):
    """Calls ``progress("training", epochs done, max epochs)`` after each training epoch (early
    stopping may end the training before ``max epochs``; a restarted training counts again)."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.is_global_zero:
            total = trainer.max_epochs if trainer.max_epochs and trainer.max_epochs > 0 else None
            self.progress("training", trainer.current_epoch + 1, total)
