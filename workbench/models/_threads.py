"""Lightning's multi-process launch on CPU takes this process's torch threads down to its share
of the cores (and sets ``OMP_NUM_THREADS``) for good; a notebook kernel or the CLI would score
and train at that share afterwards. `keep_torch_threads` puts both back."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

import torch


@contextmanager
def keep_torch_threads() -> Iterator[None]:
    """Run the block, then restore torch's intra-op thread count and ``OMP_NUM_THREADS``."""
    threads = torch.get_num_threads()
    omp = os.environ.get("OMP_NUM_THREADS")
    try:
        yield
    finally:
        if torch.get_num_threads() != threads:
            torch.set_num_threads(threads)
        if omp is None:
            os.environ.pop("OMP_NUM_THREADS", None)
        else:
            os.environ["OMP_NUM_THREADS"] = omp
