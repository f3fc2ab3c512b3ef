"""Which process of a data-parallel run this is: only global rank 0 writes to the store.

Lightning's DDP launcher starts the extra processes by running the same script (or
``workbench train`` command) again, and torchrun or SLURM start them all at once; every one of
them takes part in the training, but a model version, its weights, scores and rounds are
recorded once, by process 0.
"""

from __future__ import annotations

import os

import torch.distributed as dist

_RANK_VARIABLES = ("RANK", "LOCAL_RANK", "NODE_RANK", "GROUP_RANK", "SLURM_PROCID")


def global_rank() -> int:
    """0 in the first process of a data-parallel run (and outside one); positive in every
    other: its rank once the process group exists, before that the first positive rank
    variable its launcher set (on a second node that may be the node's rank)."""
    if dist.is_available() and dist.is_initialized():
        return int(dist.get_rank())
    for name in _RANK_VARIABLES:
        value = os.environ.get(name, "0").strip() or "0"
        if value.isdigit() and int(value) > 0:
            return int(value)
    return 0


def records_to_store() -> bool:
    """True in the process that records to the store (global rank 0, or no parallel run)."""
    return global_rank() == 0
