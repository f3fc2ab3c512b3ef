"""Streaming MC-dropout scoring, test-time augmentation and embeddings over a pool.

Peak memory does not grow with the pool: batches are scored one at a time and, given a
``reduce`` function, only its per-item output (e.g. one score) is kept.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import ExitStack, nullcontext
from dataclasses import dataclass, replace
from functools import partial
from itertools import chain, combinations
from typing import Any, Literal

import lightning as L
import numpy as np
import torch
from torch import Tensor, nn

from workbench.models._dropout import KeyedDropout, item_keys, mc_dropout, row_keys
from workbench.models._errors import ModelError, guarded_forward, is_out_of_memory
from workbench.models._pixels import pixels_as_float
from workbench.models._windows import SlidingWindow, window_predict

Precision = Literal["auto", "32", "32-true", "16-mixed", "bf16-mixed"]
Reducer = Callable[[Tensor], Tensor]  # [B, T, C, *spatial] -> [B, ...]


@dataclass(frozen=True)
class MCBatch:
    """One scored batch: item ids [B] and probs [B, T, C, *spatial] (or reduced [B, ...])."""

    ids: np.ndarray
    values: Tensor


@dataclass(frozen=True)
class MCPrediction:
    """A scored pool: item ids [N] and values [N, T, C, *spatial] (or reduced [N, ...])."""

    ids: np.ndarray
    values: np.ndarray


def unwrap_network(model: nn.Module) -> nn.Module:
    """The network inside a LightningModule that holds it as ``net``; else ``model`` itself."""
    inner = getattr(model, "net", None)
    return inner if isinstance(model, L.LightningModule) and isinstance(inner, nn.Module) else model


def split_batch(batch: Any, offset: int) -> tuple[Tensor, np.ndarray]:
    """Image tensor and item ids from a dict (``image``, ``id``), a tuple/list or a tensor;
    without ids, positions in the loader (starting at ``offset``) stand in."""
    ids: Any = None
    if isinstance(batch, dict):
        if "image" not in batch:
            raise ModelError(f"a batch dict needs an 'image' key, got {sorted(batch)}")
        x, ids = batch["image"], batch.get("id")
    elif isinstance(batch, (tuple, list)):
        x = batch[0]
    else:
        x = batch
    if not isinstance(x, Tensor):
        raise ModelError(f"expected an image tensor in the batch, got {type(x).__name__}")
    if ids is None:
        ids = np.arange(offset, offset + x.shape[0])
    elif isinstance(ids, Tensor):
        ids = ids.cpu().numpy()
    return x, np.asarray(ids)


def resolve_device(device: str | torch.device | None) -> torch.device:
    """``None`` picks CUDA when present, else CPU."""
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def scoring_precision(device: torch.device, precision: str = "auto") -> str:
    """``auto``: ``16-mixed`` on CUDA (as training there), ``32`` elsewhere."""
    if precision == "auto":
        return "16-mixed" if device.type == "cuda" else "32"
    return precision


def _autocast(device: torch.device, precision: str) -> Any:
    precision = scoring_precision(device, precision)
    if precision in ("32", "32-true"):
        return nullcontext()
    if precision not in ("16-mixed", "bf16-mixed"):
        raise ModelError(
            f"precision must be auto, 32, 16-mixed or bf16-mixed, got {precision!r}",
            field="precision",
        )
    dtype = torch.float16 if precision == "16-mixed" else torch.bfloat16
    return torch.autocast(device.type, dtype=dtype)


def _prepare(x: Tensor, device: torch.device) -> Tensor:
    """On ``device`` as float: uint8 travels as uint8 (4x less to copy) and is scaled there."""
    x = pixels_as_float(x.to(device, non_blocking=True))
    if device.type == "cuda" and x.ndim in (4, 5):
        fmt = torch.channels_last if x.ndim == 4 else torch.channels_last_3d
        x = x.contiguous(memory_format=fmt)
    return x


def _to_probs(logits: Tensor, activation: str) -> Tensor:
    logits = logits.float()
    return torch.softmax(logits, dim=1) if activation == "softmax" else torch.sigmoid(logits)


def sample_moments(probs: Tensor) -> Tensor:
    """What per-voxel entropy and BALD need from T MC samples, without the samples: the mean
    probabilities and the mean per-sample entropy (nats), on the channel axis.
    # [B, T, C, *spatial] -> [B, C + 1, *spatial]"""
    return _sum_moments(probs, 1) / probs.shape[1]


def _sum_moments(probs: Tensor, axis: int) -> Tensor:
    # sums over the sample ``axis`` of [B, T, C, *S] (1) or [T, B, C, *S] (0) of p and of the
    # per-sample entropy -sum_c p log p -> [B, C + 1, *S]
    p = probs.float()
    entropy = -torch.special.xlogy(p, p).sum(2)  # [B, T, *S] or [T, B, *S]
    return torch.cat([p.sum(axis), entropy.sum(axis).unsqueeze(1)], 1)


def _mc_batch(
    net: nn.Module,
    x: Tensor,
    keys: Tensor,
    samples: int,
    per_pass: int,
    keyed: KeyedDropout | None,
    activation: str,
    moments: bool = False,
    first: int = 0,
) -> Tensor:
    """MC probabilities for one batch, ``per_pass`` samples per forward pass (samples number
    ``first`` on, for their dropout keys); with ``moments`` their `sample_moments`, summed pass
    by pass (one pass's samples held at a time).
    # x [B, C, *spatial] -> [B, T, C, *spatial] (moments: [B, C + 1, *spatial])"""
    trunk: nn.Module | None = getattr(net, "trunk", None)
    head: nn.Module | None = getattr(net, "head", None)
    split = trunk is not None and head is not None and not _has_dropout(trunk)
    stem = guarded_forward(trunk, x, "running the network") if split and trunk else x
    stage = head if split else net
    assert stage is not None
    b = x.shape[0]
    chunks = []
    total: Tensor | None = None
    for start in range(0, samples, per_pass):
        ts = range(first + start, first + min(samples, start + per_pass))
        rep = stem.repeat(len(ts), *([1] * (stem.ndim - 1)))  # [S*B, ...], sample-major
        if keyed is not None:
            keyed.rows = row_keys(keys, ts)
        out = guarded_forward(stage, rep, "running the network")  # [S*B, C, ...]
        probs = _to_probs(out, activation).view(len(ts), b, *out.shape[1:])
        del out
        if moments:
            part = _sum_moments(probs, 0)  # [B, C + 1, *spatial]
            total = part if total is None else total + part
        else:
            chunks.append(probs)
    if total is not None:
        return total / samples
    return torch.cat(chunks, 0).transpose(0, 1)  # [B, T, C, *spatial]


def _mc_probs(
    net: nn.Module,
    x: Tensor,
    keys: Tensor,
    samples: int,
    per_pass: int,
    keyed: KeyedDropout | None,
    activation: str,
    window: SlidingWindow | None,
    moments: bool = False,
) -> Tensor:
    """`_mc_batch`, or with ``window`` the same over sliding windows, one image at a time: every
    patch of an image gets the image's dropout keys, and the T samples are blended window by
    window. With ``moments`` the windows are swept once per sample instead (the same forward
    passes, one sample wide), so one blended sample of the image is held at a time.
    # x [B, C, *spatial] -> [B, T, C, *spatial] (moments: [B, C + 1, *spatial])"""
    if window is None:
        return _mc_batch(net, x, keys, samples, per_pass, keyed, activation, moments)
    outs = []
    for b in range(x.shape[0]):
        key = keys[b : b + 1]
        sweeps = [(t, 1) for t in range(samples)] if moments else [(0, samples)]
        total: Tensor | None = None
        for first, count in sweeps:

            def patches(
                p: Tensor, key: Tensor = key, first: int = first, count: int = count
            ) -> Tensor:  # [w, C, *roi] -> [w, count*K, *roi]
                k = key.expand(p.shape[0]) if key.numel() else key
                return _mc_batch(
                    net, p, k, count, min(per_pass, count), keyed, activation, first=first
                ).flatten(1, 2)

            out = window_predict(patches, x[b : b + 1], window)  # [1, count*K, *spatial]
            probs = out.view(1, count, -1, *out.shape[2:])
            if not moments:
                outs.append(probs)
                continue
            part = _sum_moments(probs, 1)  # [1, K + 1, *spatial]
            total = part if total is None else total + part
            del out, probs
        if total is not None:
            outs.append(total / samples)
    return torch.cat(outs)


def _under_flips(
    predict: Callable[[Tensor], Tensor],
    x: Tensor,
    flips: Sequence[tuple[int, ...]],
    moments: bool = False,
) -> Tensor:
    """``predict`` (MC probabilities) under each flip of ``flips`` (dims of ``x``; ``()`` is the
    identity), flipped back and stacked on the sample axis; with ``moments`` (``predict`` gives
    `sample_moments`) averaged flip by flip instead, one flip's output held at a time.
    # x [B, C, *spatial] -> [B, len(flips) * T, C, *spatial] (moments: [B, C + 1, *spatial])"""
    parts = []
    total: Tensor | None = None
    for flip in flips:
        out = predict(torch.flip(x, flip) if flip else x)
        if flip:  # moments keep x's layout [B, C', *spatial]; probs have the sample axis too
            out = torch.flip(out, flip if moments else tuple(d + 1 for d in flip))
        if moments:
            total = out if total is None else total + out
        else:
            parts.append(out)
    if total is not None:
        return total / len(flips)
    return parts[0] if len(parts) == 1 else torch.cat(parts, dim=1)


class _InFlight:
    """A scored batch on its way to the host, its copy started at once: on CUDA into pinned
    memory without waiting, so the next batch is fetched and launched while this one lands."""

    def __init__(self, ids: np.ndarray, values: Tensor) -> None:
        self.ids = ids
        self.event: torch.cuda.Event | None = None
        if values.device.type == "cuda":
            self.values = torch.empty(values.shape, dtype=values.dtype, pin_memory=True)
            self.values.copy_(values, non_blocking=True)
            self.event = torch.cuda.Event()
            self.event.record()
        else:
            self.values = values.cpu()

    def landed(self) -> MCBatch:
        if self.event is not None:
            self.event.synchronize()
        return MCBatch(ids=self.ids, values=self.values)


def _has_dropout(module: nn.Module) -> bool:
    from workbench.models._dropout import dropout_modules

    return bool(dropout_modules(module))


def iter_mc_predict(
    model: nn.Module,
    loader: Iterable[Any],
    samples: int = 20,
    *,
    reduce: Reducer | None = None,
    seed: int | None = None,
    device: str | torch.device | None = None,
    precision: Precision = "auto",
    max_rows: int | None = None,
    activation: Literal["softmax", "sigmoid"] = "softmax",
    window: SlidingWindow | None = None,
    flips: Sequence[tuple[int, ...]] | None = None,
    moments: bool = False,
    dropout: bool = True,
) -> Iterator[MCBatch]:
    """Stream MC-dropout probabilities batch by batch.

    Each batch is replicated ``samples`` times and run in one forward pass, in chunks of at most
    ``max_rows`` rows when given (``max_rows <= batch`` is the plain loop over samples). On an
    out-of-memory error (device or CPU allocator) the chunk is halved and retried, then the
    windows per pass. A classifier with a dropout-free
    ``trunk`` runs the trunk once and only its ``head`` T times. With ``seed``, dropout masks are
    keyed by (seed, item id, sample): identical across batch sizes, chunking and DDP ranks.
    ``reduce`` maps [B, T, C, *spatial] to a per-item output on the device; only that is yielded.
    With ``window``, each image is scored patch by patch (`SlidingWindow`), for scans too large
    for one forward pass. The network is moved to ``device`` (None: CUDA when present); its
    train/eval modes are restored afterwards. ``precision`` "auto" runs 16-mixed autocast on CUDA
    and 32-bit elsewhere; the probabilities are float32 either way. uint8 images are copied to
    the device as uint8 and scaled there; on CUDA a batch's result is copied back while the next
    batch is fetched and run. With ``flips`` (test-time augmentation for segmentation, e.g.
    `default_flips`), the T samples (the same dropout masks) are taken under each flip and
    flipped back: the sample axis holds ``len(flips) * T`` samples, flip by flip. With
    ``moments``, each batch yields its `sample_moments` ``[B, C + 1, *spatial]`` over all of
    them instead (what per-voxel uncertainty needs: `workbench.strategies.moment_scores`,
    `moment_uncertainty_map`), summed forward pass by forward pass and flip by flip (with
    ``window``, the windows are swept once per sample): a scan's samples are never all held, only
    one forward pass's; ``reduce`` then applies to the moments. ``dropout=False`` runs the
    network in eval mode instead: every sample is the same deterministic pass (test-time
    augmentation alone, with ``samples=1``).
    """
    if samples < 1:
        raise ModelError(f"samples must be >= 1, got {samples}")
    net = unwrap_network(model)
    dev = resolve_device(device)
    net.to(dev)
    offset = 0
    pending: _InFlight | None = None  # the batch before, its copy to the host under way
    with ExitStack() as stack:
        stack.enter_context(torch.inference_mode())
        stack.enter_context(mc_dropout(net) if dropout else _eval_mode(net))
        keyed = (
            stack.enter_context(KeyedDropout(net, seed)) if seed is not None and dropout else None
        )
        for batch in loader:
            x, ids = split_batch(batch, offset)
            offset += len(ids)
            x = _prepare(x, dev)
            keys = item_keys(ids) if keyed is not None else torch.empty(0, dtype=torch.int64)
            per_pass = samples if max_rows is None else max(1, max_rows // x.shape[0])
            while True:
                try:
                    with _autocast(dev, precision):
                        predict = partial(
                            _mc_probs,
                            net,
                            keys=keys,
                            samples=samples,
                            per_pass=per_pass,
                            keyed=keyed,
                            activation=activation,
                            window=window,
                            moments=moments,
                        )
                        probs = _under_flips(predict, x, flips or [()], moments)
                    break
                except RuntimeError as exc:
                    if not is_out_of_memory(exc):
                        raise
                    if per_pass > 1:
                        per_pass //= 2
                    elif window is not None and window.batch_size > 1:
                        window = replace(window, batch_size=window.batch_size // 2)
                    else:
                        hint = (
                            "a smaller patch size"
                            if window
                            else "a smaller predict batch size, or sliding windows"
                        )
                        raise ModelError(
                            f"out of memory scoring a batch of {x.shape[0]} items even one MC "
                            f"sample at a time: use {hint}"
                        ) from exc
                    if dev.type == "cuda":
                        torch.cuda.empty_cache()
            values = reduce(probs) if reduce is not None else probs
            batch_in_flight = _InFlight(ids, values.detach())
            if pending is not None:
                yield pending.landed()
            pending = batch_in_flight
        if pending is not None:
            yield pending.landed()


def mc_predict(
    model: nn.Module,
    loader: Iterable[Any],
    samples: int = 20,
    *,
    reduce: Reducer | None = None,
    seed: int | None = None,
    device: str | torch.device | None = None,
    precision: Precision = "auto",
    max_rows: int | None = None,
    activation: Literal["softmax", "sigmoid"] = "softmax",
    window: SlidingWindow | None = None,
    flips: Sequence[tuple[int, ...]] | None = None,
    moments: bool = False,
) -> MCPrediction:
    """`iter_mc_predict` collected: ids [N] and probs [N, T, C, *spatial], moments
    [N, C + 1, *spatial] or reduced [N, ...]. Pass ``reduce`` for large pools so that only
    per-item outputs are kept."""
    ids: list[np.ndarray] = []
    values: list[np.ndarray] = []
    for part in iter_mc_predict(
        model,
        loader,
        samples,
        reduce=reduce,
        seed=seed,
        device=device,
        precision=precision,
        max_rows=max_rows,
        activation=activation,
        window=window,
        flips=flips,
        moments=moments,
    ):
        ids.append(part.ids)
        values.append(part.values.numpy())
    if not ids:
        return MCPrediction(ids=np.empty(0, dtype=np.int64), values=np.empty(0, np.float32))
    return MCPrediction(ids=np.concatenate(ids), values=np.concatenate(values))


def default_flips(spatial_dims: int) -> list[tuple[int, ...]]:
    """Identity and every single-axis flip, as tensor dims of a [B, C, *spatial] batch."""
    return [(), *[(d,) for d in range(2, 2 + spatial_dims)]]


@dataclass(frozen=True)
class TTABatch:
    """Per-voxel mean probabilities [B, C, *spatial] and predictive entropy [B, *spatial]."""

    ids: np.ndarray
    mean: Tensor
    uncertainty: Tensor


def iter_tta_predict(
    model: nn.Module,
    loader: Iterable[Any],
    *,
    flips: Sequence[tuple[int, ...]] | None = None,
    samples: int = 1,
    seed: int | None = None,
    device: str | torch.device | None = None,
    precision: Precision = "auto",
    window: SlidingWindow | None = None,
) -> Iterator[TTABatch]:
    """Test-time augmentation for segmentation: each flip (default: identity and one per axis)
    is applied, predicted (``samples`` > 1 adds MC dropout; ``window`` runs it over sliding
    windows) and flipped back; the probabilities are averaged into a per-voxel mean and its
    entropy is the uncertainty map. `iter_mc_predict` with ``moments``: one flip's prediction
    held at a time, and the same out-of-memory retries."""
    batches = iter(loader)
    first = next(batches, None)
    if first is None:
        return
    x, _ = split_batch(first, 0)
    axes = list(flips) if flips is not None else default_flips(x.ndim - 2)
    mc = samples > 1
    for part in iter_mc_predict(
        model,
        chain([first], batches),
        samples,
        seed=seed if mc else None,
        device=device,
        precision=precision,
        window=window,
        flips=axes,
        moments=True,
        dropout=mc,
    ):
        mean = part.values[:, :-1].contiguous()  # [B, C, *spatial]
        entropy = -torch.special.xlogy(mean, mean).sum(1)  # [B, *spatial]
        yield TTABatch(ids=part.ids, mean=mean, uncertainty=entropy)


class _eval_mode:  # noqa: N801 - used as a context manager
    def __init__(self, net: nn.Module) -> None:
        self.net = net
        self.modes: list[tuple[nn.Module, bool]] = []

    def __enter__(self) -> nn.Module:
        self.modes = [(m, m.training) for m in self.net.modules()]
        return self.net.eval()

    def __exit__(self, *exc: object) -> None:
        for module, training in self.modes:
            module.training = training


def embeddings(
    model: nn.Module,
    loader: Iterable[Any],
    *,
    layer: str | None = None,
    device: str | torch.device | None = None,
) -> MCPrediction:
    """Penultimate embeddings [N, D] in eval mode, for core-set or BADGE: the network's
    ``embed`` method, or the flattened output of the submodule named ``layer``."""
    net = unwrap_network(model)
    dev = resolve_device(device)
    net.to(dev)
    captured: list[Tensor] = []
    handle = None
    if layer is not None:
        modules = dict(net.named_modules())
        if layer not in modules:
            raise ModelError(f"no layer named {layer!r} in {type(net).__name__}")
        handle = modules[layer].register_forward_hook(lambda m, i, o: captured.append(o))
    elif not callable(getattr(net, "embed", None)):
        raise ModelError(f"{type(net).__name__} has no embed(); name a layer for the embeddings")
    ids: list[np.ndarray] = []
    values: list[np.ndarray] = []
    offset = 0
    try:
        with torch.inference_mode(), _eval_mode(net):
            for batch in loader:
                x, batch_ids = split_batch(batch, offset)
                offset += len(batch_ids)
                x = _prepare(x, dev)
                if layer is None:
                    embed: Callable[[Tensor], Tensor] = getattr(net, "embed")  # noqa: B009
                    z = guarded_forward(embed, x, "computing embeddings")
                else:
                    captured.clear()
                    guarded_forward(net, x, "computing embeddings")
                    z = captured[-1]
                ids.append(batch_ids)
                values.append(z.flatten(1).float().cpu().numpy())
    finally:
        if handle is not None:
            handle.remove()
    return MCPrediction(ids=np.concatenate(ids), values=np.concatenate(values))


def flip_combinations(spatial_dims: int) -> list[tuple[int, ...]]:
    """Every subset of spatial axes (2**d flips), for a fuller TTA than `default_flips`."""
    axes = range(2, 2 + spatial_dims)
    return [c for r in range(spatial_dims + 1) for c in combinations(axes, r)]
