"""Data parallel training that gives the same model with N processes as with one.

One process with global batch ``B`` and N processes with ``B`` split between them take the same
optimiser steps when (1) every process cuts the same global index sequence into the same global
batches and takes its share (`EpochDraws`, `GlobalBatchSampler`), (2) the loss of a share is
normalised by the global batch (see `ClassificationModule`), (3) BatchNorm statistics are those of
the global batch (`GlobalBatchNorm`) and (4) random draws per item (dropout masks, augmentation)
are keyed by (seed, item id, draw number) rather than drawn from a per-process generator. The
pool is scored in disjoint shards (`RankShardSampler`).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from lightning.pytorch.plugins import LayerSync
from torch import Tensor, nn
from torch.nn.modules.batchnorm import _BatchNorm
from torch.utils.data import Dataset, DistributedSampler, Sampler

from workbench.models._errors import ModelError


class EpochDraws(Sampler[int]):
    """The global index sequence of one epoch: ``draws`` positions in ``range(n)``, a random
    permutation (its first ``draws`` items) or, with ``replacement``, independent uniform draws;
    the generator is seeded by (seed, epoch), so every process draws the same sequence. Lightning
    calls `set_epoch` on a batch sampler's ``sampler`` before each training epoch."""

    def __init__(self, n: int, draws: int, *, replacement: bool, seed: int) -> None:
        if n < 1 or draws < 1 or (not replacement and draws > n):
            raise ModelError(f"cannot draw {draws} of {n} items (replacement={replacement})")
        self.n, self.draws, self.replacement, self.seed = n, draws, replacement, seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def sequence(self) -> Tensor:
        """This epoch's indices.  # [draws] int64"""
        state = np.random.SeedSequence([self.seed & 0xFFFFFFFF, self.epoch]).generate_state(2)
        generator = torch.Generator().manual_seed(int(state[0]) << 32 | int(state[1]))
        if self.replacement:
            return torch.randint(self.n, (self.draws,), generator=generator, dtype=torch.int64)
        return torch.randperm(self.n, generator=generator)[: self.draws]

    def __iter__(self) -> Iterator[int]:
        return iter(self.sequence().tolist())

    def __len__(self) -> int:
        return self.draws


class GlobalBatchSampler(Sampler[list[tuple[int, int]]]):
    """Cuts the epoch's sequence into global batches of ``batch_size`` (an incomplete last batch
    is dropped: with every global batch full, each of up to ``batch_size`` processes gets a
    non-empty share, and the steps do not depend on the number of processes) and yields this
    rank's share, positions ``rank::world_size`` of each batch, as ``(index, draw)`` pairs;
    ``draw = epoch * len(sequence) + position`` numbers every draw of the training run."""

    def __init__(
        self, sampler: EpochDraws, batch_size: int, *, rank: int = 0, world_size: int = 1
    ) -> None:
        if batch_size < world_size:
            raise ModelError(
                f"a global batch of {batch_size} cannot be shared by {world_size} processes: "
                "raise the batch size or use fewer devices"
            )
        if not 0 <= rank < world_size:
            raise ModelError(f"rank {rank} outside 0..{world_size - 1}")
        self.sampler = sampler
        self.batch_size, self.rank, self.world_size = batch_size, rank, world_size

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        sequence = self.sampler.sequence().tolist()
        first = self.sampler.epoch * len(sequence)
        for start in range(0, len(self) * self.batch_size, self.batch_size):
            positions = range(start + self.rank, start + self.batch_size, self.world_size)
            yield [(sequence[p], first + p) for p in positions]

    def __len__(self) -> int:
        return len(self.sampler) // self.batch_size


class DrawnItems(Dataset[dict[str, Any]]):
    """Fetches a `GlobalBatchSampler` share from a dataset with ``__getitems__`` and adds the
    draw numbers as ``"draw"`` [B] int64."""

    def __init__(self, items: Any) -> None:
        self.items = items

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> dict[str, Any]:
        raise TypeError("DrawnItems serves whole batches (index, draw) via __getitems__")

    def __getitems__(self, pairs: list[tuple[int, int]]) -> dict[str, Any]:
        batch = dict(self.items.__getitems__([i for i, _ in pairs]))
        batch["draw"] = torch.tensor([d for _, d in pairs], dtype=torch.int64)
        return batch


class RankShardSampler(DistributedSampler[int]):
    """Positions ``rank::num_replicas`` of ``range(n)`` in order, without padding: the shards
    cover every item exactly once. A `DistributedSampler`, so Lightning never wraps it again."""

    def __init__(self, n: int, *, num_replicas: int = 1, rank: int = 0) -> None:
        self.n, self.num_replicas, self.rank = n, num_replicas, rank
        self.epoch, self.seed, self.shuffle, self.drop_last = 0, 0, False, False
        self.num_samples, self.total_size = len(self), n

    def __iter__(self) -> Iterator[int]:
        return iter(range(self.rank, self.n, self.num_replicas))

    def __len__(self) -> int:
        return len(range(self.rank, self.n, self.num_replicas))


def rank_and_world(trainer: Any) -> tuple[int, int]:
    """(global rank, world size) of a Lightning trainer, (0, 1) without one."""
    if trainer is None:
        return 0, 1
    return int(trainer.global_rank), int(trainer.world_size)


def _distributed() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


class _SumOverProcesses(torch.autograd.Function):
    """All-reduce (sum) whose gradient is the all-reduced gradient: every process's loss
    depends on every process's contribution."""

    @staticmethod
    def forward(ctx: Any, tensor: Tensor) -> Tensor:
        out = tensor.clone(memory_format=torch.contiguous_format)
        dist.all_reduce(out)
        return out

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> Tensor:
        out = grad.clone(memory_format=torch.contiguous_format)
        dist.all_reduce(out)
        return out


def all_reduce(tensor: Tensor) -> Tensor:
    """Differentiable sum over the processes.  # [*] -> [*]"""
    out = _SumOverProcesses.apply(tensor)
    assert isinstance(out, Tensor)
    return out


class _GlobalBatchNormMixin(_BatchNorm):
    """BatchNorm whose training statistics are those of the global batch, summed over the
    processes by differentiable all-reduces (works on CPU with gloo, where torch's SyncBatchNorm
    refuses). One process: exactly the parent class."""

    def forward(self, input: Tensor) -> Tensor:
        if not (self.training and _distributed()):
            return super().forward(input)
        self._check_input_dim(input)
        dims = [0, *range(2, input.ndim)]
        shape = [1, -1, *([1] * (input.ndim - 2))]
        local = input.new_tensor([input.numel() / input.shape[1]])
        totals = all_reduce(torch.cat([input.sum(dims), local]))  # [C + 1]
        count = totals[-1]
        mean = totals[:-1] / count
        centred = input - mean.view(shape)
        var = all_reduce(centred.pow(2).sum(dims)) / count  # biased, as batch norm normalises
        out = centred * torch.rsqrt(var + self.eps).view(shape)
        if self.affine:
            out = out * self.weight.view(shape) + self.bias.view(shape)
        if self.track_running_stats and self.running_mean is not None:
            assert self.running_var is not None and self.num_batches_tracked is not None
            with torch.no_grad():
                self.num_batches_tracked.add_(1)
                factor = (
                    1.0 / float(self.num_batches_tracked)
                    if self.momentum is None
                    else float(self.momentum)
                )
                unbiased = var.detach() * count / (count - 1).clamp_min(1)
                self.running_mean.lerp_(mean.detach(), factor)
                self.running_var.lerp_(unbiased, factor)
        return out


_GLOBAL_CLASSES: dict[type[_BatchNorm], type[_BatchNorm]] = {}


def _global_class(cls: type[_BatchNorm]) -> type[_BatchNorm]:
    if cls not in _GLOBAL_CLASSES:
        _GLOBAL_CLASSES[cls] = type(f"Global{cls.__name__}", (_GlobalBatchNormMixin, cls), {})
    return _GLOBAL_CLASSES[cls]


class GlobalBatchNorm(LayerSync):
    """Lightning plugin: BatchNorm layers use global-batch statistics while fitting with several
    processes (class swapped in place, so weights, buffers and hooks stay), reverted after."""

    def apply(self, model: nn.Module) -> nn.Module:
        for module in model.modules():
            if isinstance(module, _BatchNorm) and not isinstance(
                module, (_GlobalBatchNormMixin, nn.SyncBatchNorm)
            ):
                module.__class__ = _global_class(type(module))
        return model

    def revert(self, model: nn.Module) -> nn.Module:
        for module in model.modules():
            if isinstance(module, _GlobalBatchNormMixin):
                module.__class__ = type(module).__bases__[1]
        return model
