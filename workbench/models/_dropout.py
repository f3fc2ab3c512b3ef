"""MC dropout: dropout on at inference while normalisation stays frozen, optionally with masks keyed
by item id so that samples do not depend on batch composition, chunking or the DDP rank. The same
keyed masks (and `keyed_uniform` for augmentation) make training draws independent of the rank."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn
from torch.nn.modules.dropout import _DropoutNd

from workbench.models._errors import ModelError

_ELEMENTWISE = (nn.Dropout,)
_CHANNELWISE = (nn.Dropout1d, nn.Dropout2d, nn.Dropout3d)
_M32 = 0xFFFFFFFF


def dropout_modules(net: nn.Module) -> list[nn.Module]:
    """Every dropout module of ``net`` with ``p > 0``, in ``net.modules()`` order."""
    return [m for m in net.modules() if isinstance(m, _DropoutNd) and m.p > 0]


def enable_mc_dropout(net: nn.Module) -> nn.Module:
    """Put ``net`` in eval mode except its dropout modules (BatchNorm keeps running stats)."""
    net.eval()
    for module in dropout_modules(net):
        module.train()
    return net


@contextmanager
def mc_dropout(net: nn.Module) -> Iterator[nn.Module]:
    """Context in which ``net`` samples dropout masks at inference; restores every mode after."""
    modes = [(m, m.training) for m in net.modules()]
    try:
        yield enable_mc_dropout(net)
    finally:
        for module, training in modes:
            module.training = training


def item_keys(ids: Any) -> Tensor:
    """Stable int64 keys for item ids (ints kept, strings hashed with BLAKE2b).  # [B]"""
    if isinstance(ids, Tensor):
        return ids.detach().to(torch.int64).cpu().reshape(-1)
    array = np.asarray(ids)
    if array.dtype.kind in "iub":
        return torch.from_numpy(array.astype(np.int64).reshape(-1))
    digests = [
        int.from_bytes(
            hashlib.blake2b(str(i).encode(), digest_size=8).digest(), "little", signed=True
        )
        for i in array.reshape(-1)
    ]
    return torch.tensor(digests, dtype=torch.int64)


def _blake(text: str) -> bytes:
    return hashlib.blake2b(text.encode(), digest_size=8).digest()


def _mix32(x: Tensor) -> Tensor:
    """32-bit integer hash on int64 tensors in [0, 2**32); every product stays < 2**63."""
    x = x ^ (x >> 16)
    x = (x * 0x7FEB352D) & _M32
    x = x ^ (x >> 15)
    x = (x * 0x46CA68B5) & _M32
    x = x ^ (x >> 16)
    x = (x * 0x2C1B3C6D) & _M32
    return x ^ (x >> 16)


def row_keys(keys: Tensor, samples: Sequence[int]) -> Tensor:
    """Keys of replicated rows, sample-major: row ``s * B + b`` is (item b, sample s).  # [S*B]"""
    folded = _mix32((keys ^ (keys >> 32)) & _M32)  # [B]
    t = torch.as_tensor(list(samples), dtype=torch.int64)  # [S]
    return _mix32((folded[None, :] + _mix32(t + 0x61C88647)[:, None]) & _M32).reshape(-1)


def draw_keys(ids: Any, draws: Tensor, seed: int) -> Tensor:
    """32-bit keys of training draws, hashed from (seed, item id, draw number): the key of an
    item's ``d``-th draw is the same whichever process or batch it lands in.  # [B]"""
    keys = item_keys(ids)
    folded = _mix32((keys ^ (keys >> 32)) & _M32)  # [B]
    d = draws.detach().to(torch.int64).cpu().reshape(-1)
    d = _mix32(((d ^ (d >> 32)) + 0x3C6EF372) & _M32)  # [B]
    s = _mix32(torch.tensor((int(seed) + 0x2545F491) & _M32))
    return _mix32((folded + _mix32((d ^ s) & _M32)) & _M32)


def keyed_uniform(keys: Tensor, count: int, stream: int = 0) -> Tensor:
    """``count`` uniform values in [0, 1) per key, a pure function of (key, stream, column);
    24-bit resolution.  # keys [B] -> [B, count] float32"""
    base = _mix32(torch.tensor((int(stream) * 0x9E3779B9 + 0x7F4A7C15) & _M32))
    cols = _mix32((torch.arange(count, dtype=torch.int64) + base) & _M32)  # [count]
    bits = _mix32((keys.to(torch.int64).cpu()[:, None] + cols[None, :]) & _M32)  # [B, count]
    return (bits >> 8).to(torch.float32) * 2.0**-24


GENERATOR_UNITS = 1 << 16
"""Dropout inputs with at least this many units per row (3D feature maps) draw each row's mask
from a generator seeded by the row's hash: about ten times cheaper than hashing every unit, and
a function of the row key alone all the same (but not the same masks on CPU and CUDA)."""


def _row_uniform(keys: list[int], units: int, device: torch.device) -> Tensor:
    """``units`` uniform values in [0, 1) per key from a generator seeded by it.  # [R, U]"""
    rows = []
    for key in keys:
        generator = torch.Generator(device=device).manual_seed(key)
        rows.append(torch.rand(units, generator=generator, device=device))
    return torch.stack(rows) if rows else torch.empty(0, units, device=device)


class KeyedDropout:
    """Replaces the random masks of ``net``'s dropout modules by masks that are a function of
    (seed, row key, module index) alone: hashed per unit, or for inputs of `GENERATOR_UNITS` or
    more units per row drawn from a generator seeded by that hash. Set `rows` before each
    forward pass. Works in training (gradients flow through the mask) and inference; the
    dropout modules' train/eval modes are restored on exit."""

    def __init__(self, net: nn.Module, seed: int) -> None:
        self.net = net
        self.seed = int(seed) & _M32
        self.rows: Tensor | None = None  # [R] int64 row keys of the next forward pass
        self._handles: list[Any] = []
        self._modes: list[tuple[nn.Module, bool]] = []

    def __enter__(self) -> KeyedDropout:
        for salt, module in enumerate(dropout_modules(self.net)):
            self._modes.append((module, module.training))
            if not isinstance(module, _ELEMENTWISE + _CHANNELWISE):
                raise ModelError(f"keyed MC dropout does not support {type(module).__name__}")
            self._handles.append(module.register_forward_hook(self._hook(salt)))
            module.eval()  # identity forward; the hook applies the keyed mask
        return self

    def __exit__(self, *exc: object) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles.clear()
        for module, training in self._modes:
            module.training = training
        self._modes.clear()

    def _hook(self, salt: int) -> Any:
        stream = _mix32(torch.tensor((self.seed + 0x9E3779B9 * (salt + 1)) & _M32))

        def apply(module: nn.Module, inputs: tuple[Tensor, ...], output: Tensor) -> Tensor:
            x = inputs[0]
            if self.rows is None or self.rows.shape[0] != x.shape[0]:
                raise ModelError("keyed dropout needs one row key per input row")
            shape = x.shape if isinstance(module, _ELEMENTWISE) else (*x.shape[:2],)
            units = int(np.prod(shape[1:]))
            if units >= GENERATOR_UNITS:
                seeds = _mix32((self.rows.cpu() ^ stream) & _M32).tolist()
                uniform = _row_uniform(seeds, units, x.device)  # [R, U]
            else:
                rows = _mix32((self.rows.to(x.device) ^ stream.to(x.device)) & _M32)  # [R]
                unit = _mix32(torch.arange(units, device=x.device, dtype=torch.int64) + 1)
                bits = _mix32((rows[:, None] + unit[None, :]) & _M32)  # [R, U]
                uniform = bits.to(torch.float32) * 2.0**-32
            p = float(module.p)  # type: ignore[arg-type]
            keep = (uniform >= p).to(x.dtype) / (1.0 - p)
            keep = keep.view(*shape, *([1] * (x.ndim - len(shape))))
            return x * keep

        return apply
