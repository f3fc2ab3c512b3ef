"""A training callback that pauses between steps while someone annotates the project."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import Callback

from workbench.background import wait_while_annotating


class YieldToAnnotators(Callback):
    """Before each training step, wait while an annotation session of ``project_dir`` was
    active in the last ``quiet`` seconds (at most ``max_pause`` per step); ``waited`` sums the
    pauses."""

    def __init__(
        self, project_dir: str | Path, *, quiet: float = 1.0, max_pause: float = 5.0
    ) -> None:
        self.project_dir = Path(project_dir)
        self.quiet = quiet
        self.max_pause = max_pause
        self.waited = 0.0

    def on_train_batch_start(
        self, trainer: L.Trainer, pl_module: L.LightningModule, batch: Any, batch_idx: int
    ) -> None:
        self.waited += wait_while_annotating(
            self.project_dir, quiet=self.quiet, max_pause=self.max_pause
        )
