"""Early stopping that waits while any of several validation metrics still improves."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, Literal

import lightning as L
from lightning.pytorch.callbacks import Callback


class EarlyStoppingOnAny(Callback):
    """Stop after ``patience`` validation epochs in which none of ``monitors`` (name -> "min" or
    "max") improved on its best so far. Missing or non-finite values count as no improvement.

    A thresholded metric such as Dice can sit flat for many epochs while a segmentation network
    is still learning (its soft val loss falling) before the foreground appears; stopping on
    Dice alone ends such trainings in that plateau."""

    def __init__(self, monitors: Mapping[str, Literal["min", "max"]], patience: int) -> None:
        if not monitors:
            raise ValueError("EarlyStoppingOnAny needs at least one metric to monitor")
        bad = {k: v for k, v in monitors.items() if v not in ("min", "max")}
        if bad:
            raise ValueError(f"monitor modes must be 'min' or 'max', got {bad}")
        self.monitors = dict(monitors)
        self.patience = patience
        self.best: dict[str, float] = {}
        self.wait_count = 0

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking or trainer.state.fn != "fit":
            return
        improved = False
        for name, mode in self.monitors.items():
            value = trainer.callback_metrics.get(name)
            if value is None or not math.isfinite(v := float(value)):
                continue
            best = self.best.get(name)
            if best is None or (v > best if mode == "max" else v < best):
                self.best[name] = v
                improved = True
        self.wait_count = 0 if improved else self.wait_count + 1
        stop = trainer.strategy.reduce_boolean_decision(self.wait_count >= self.patience, all=False)
        trainer.should_stop = trainer.should_stop or stop

    def state_dict(self) -> dict[str, Any]:
        return {"best": dict(self.best), "wait_count": self.wait_count}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.best = dict(state_dict["best"])
        self.wait_count = int(state_dict["wait_count"])
