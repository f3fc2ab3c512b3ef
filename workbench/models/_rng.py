"""Seeded training reseeds the process's global random generators (Lightning's
``seed_everything``, the recipes' ``torch.manual_seed``), so a notebook's own draws after a
training would repeat from the training's seed. `keep_global_rng` puts them back."""

from __future__ import annotations

import os
import random
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import torch

_LIGHTNING_SEED_VARS = ("PL_GLOBAL_SEED", "PL_SEED_WORKERS")


@contextmanager
def keep_global_rng() -> Iterator[None]:
    """Run the block, then restore the global torch (CPU, and CUDA where already initialised),
    NumPy and Python generators and Lightning's seed variables, also when the block raises
    (Lightning's own ``isolate_rng`` restores neither on an exception nor the variables).
    Works as a decorator too."""
    python_state = random.getstate()
    numpy_state = np.random.get_state()
    seed_vars = {name: os.environ.get(name) for name in _LIGHTNING_SEED_VARS}
    cuda = list(range(torch.cuda.device_count())) if torch.cuda.is_initialized() else []
    try:
        with torch.random.fork_rng(devices=cuda):
            yield
    finally:
        random.setstate(python_state)
        np.random.set_state(numpy_state)
        for name, value in seed_vars.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@contextmanager
def deterministic_kernels() -> Iterator[None]:
    """Run the block with PyTorch's deterministic kernels (a warning where an op has none), as
    Lightning's seeded trainings do, then restore the previous setting. CUDA's cuBLAS gets the
    workspace setting it needs for this unless one is set already."""
    enabled = torch.are_deterministic_algorithms_enabled()
    warn_only = torch.is_deterministic_algorithms_warn_only_enabled()
    benchmark = torch.backends.cudnn.benchmark
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.use_deterministic_algorithms(True, warn_only=True)
    torch.backends.cudnn.benchmark = False
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(enabled, warn_only=warn_only)
        torch.backends.cudnn.benchmark = benchmark
