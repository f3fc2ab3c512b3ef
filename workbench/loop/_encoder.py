"""The typical cold start's self-supervised trunk, kept so the project's first model starts
from it instead of random weights (the counterpart of ``workbench simulate --ssl-init``)."""

from __future__ import annotations

import os
import pickle
import warnings
from pathlib import Path
from typing import NamedTuple

import torch
from torch import Tensor

from workbench.recipes import ContrastiveEncoder
from workbench.store import RoundStatus, SQLiteStore, checkpoints_dir

TYPICAL_ROUND = "cold_start_typical"


def encoder_path(store: SQLiteStore, round_id: int) -> Path:
    """Where the encoder trained by cold-start round ``round_id`` is kept."""
    return checkpoints_dir(store) / f"encoder-round-{round_id}.pt"


def save_encoder(
    store: SQLiteStore,
    round_id: int,
    encoder: ContrastiveEncoder,
    *,
    spatial_dims: int,
    in_channels: int,
) -> Path:
    """Write the encoder's trunk weights for round ``round_id``, atomically."""
    path = encoder_path(store, round_id)
    partial = path.with_suffix(".partial")
    torch.save(
        {
            "trunk_state": encoder.trunk_state,
            "spatial_dims": spatial_dims,
            "in_channels": in_channels,
        },
        partial,
    )
    with open(partial, "rb") as handle:
        os.fsync(handle.fileno())
    os.replace(partial, path)
    return path


class KeptEncoder(NamedTuple):
    """A typical cold start's encoder as kept: its round, trunk weights and input channels."""

    round_id: int
    trunk_state: dict[str, Tensor]
    in_channels: int


def latest_encoder(store: SQLiteStore, *, spatial_dims: int) -> KeptEncoder | None:
    """The newest finished typical cold start's encoder that is on disk and takes images of
    ``spatial_dims``; None when there is none. An unreadable file is skipped with a warning,
    as a warm start's is."""
    rounds = [
        r
        for r in store.list_rounds()
        if r.strategy == TYPICAL_ROUND and r.status is RoundStatus.DONE
    ]
    for round_ in reversed(rounds):
        path = encoder_path(store, round_.id)
        if not path.is_file():
            continue
        try:
            saved = torch.load(path, map_location="cpu", weights_only=True)
        except (pickle.UnpicklingError, RuntimeError, OSError, EOFError) as error:
            warnings.warn(
                f"pretrained trunk skipped: {path} cannot be read ({type(error).__name__})",
                stacklevel=3,
            )
            continue
        if saved.get("spatial_dims") == spatial_dims:
            return KeptEncoder(
                round_.id, dict(saved["trunk_state"]), int(saved.get("in_channels", 1))
            )
    return None
