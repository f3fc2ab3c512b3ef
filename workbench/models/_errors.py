"""The model layer's typed error and the guards that raise it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

import torch

from workbench.errors import WorkbenchError

T = TypeVar("T")


class ModelError(WorkbenchError):
    """Data that does not fit the model, a diverging loss, or a device out of memory."""

    code = "model_error"


def is_out_of_memory(exc: BaseException) -> bool:
    """True for a CUDA (or other device) out-of-memory error, or the CPU allocator's."""
    if isinstance(exc, torch.cuda.OutOfMemoryError):
        return True
    text = str(exc).lower()
    return isinstance(exc, RuntimeError) and (
        "out of memory" in text or "can't allocate memory" in text
    )


@contextmanager
def out_of_memory_as_model_error(what: str, batch_size: int | None = None) -> Iterator[None]:
    """Re-raise a device out-of-memory error inside the block as a `ModelError`."""
    try:
        yield
    except RuntimeError as exc:
        if not is_out_of_memory(exc):
            raise
        hint = f" (batch size {batch_size}; try {max(1, batch_size // 2)})" if batch_size else ""
        raise ModelError(
            f"out of memory while {what}{hint}: use a smaller batch size, fewer MC samples "
            "or a smaller network / patch size"
        ) from exc


def guarded_forward(module: Callable[[torch.Tensor], T], x: torch.Tensor, what: str) -> T:
    """``module(x)``; a shape/dtype error from the network becomes a `ModelError`."""
    try:
        return module(x)
    except RuntimeError as exc:
        if is_out_of_memory(exc):
            raise
        raise ModelError(f"the data does not fit the model while {what}: {exc}") from exc
