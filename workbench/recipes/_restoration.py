"""A self-supervised start for segmentation networks: restore scans with boxes painted over.

A segmenter's first round sees a handful of labelled scans. Before it, the same network can
learn what the project's scans look like from the unlabelled ones: it is trained to restore
scans in which a few boxes were painted over with noise (in-painting, one of the restoration
tasks of Models Genesis, Zhou et al. 2021), reading no label. Every weight but the output
layer's then starts the segmenter (`load_pretrained`). A U-Net's skip connections would let it
copy an untouched scan through; the painted boxes can only be filled from their context, which
is what the segmenter needs too.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from workbench.models import ModelError, resolve_device
from workbench.models._rng import deterministic_kernels
from workbench.recipes._data import as_images

StateDict = Mapping[str, Tensor]
Progress = Callable[[str, int, "int | None"], None]
DEFAULT_RESTORATION_STEPS = 400
_BOXES = (1, 3)  # boxes painted over per scan, at least and at most
_BOX_SIDE = (0.15, 0.4)  # a box's side as a share of the scan's, least and most
_NOISE = 0.1  # noise added over the whole scan, in units of the batch's standard deviation
_SEED_SALT = 0x6E5


def paint_boxes(x: Tensor, generator: torch.Generator) -> Tensor:
    """``x`` with 1-3 random boxes per scan (sides 15-40% of the scan's) filled with noise of the
    batch's mean and spread, and light noise over the rest.  # [B, C, *spatial] -> same"""
    out = x.clone()
    mean, std = float(x.mean()), float(x.std().clamp_min(1e-6))
    spatial = x.shape[2:]
    for b in range(x.shape[0]):
        for _ in range(int(torch.randint(_BOXES[0], _BOXES[1] + 1, (1,), generator=generator))):
            box: list[slice] = []
            for side in spatial:
                share = _BOX_SIDE[0] + (_BOX_SIDE[1] - _BOX_SIDE[0]) * float(
                    torch.rand(1, generator=generator)
                )
                size = max(1, int(side * share))
                start = int(torch.randint(0, side - size + 1, (1,), generator=generator))
                box.append(slice(start, start + size))
            region: tuple[int | slice, ...] = (b, slice(None), *box)
            noise = torch.randn(out[region].shape, generator=generator, device="cpu")
            out[region] = (mean + std * noise).to(out.device, out.dtype)
    noise = torch.randn(out.shape, generator=generator, device="cpu").to(out.device, out.dtype)
    return out + _NOISE * std * noise


def pretrain_restoration(
    images: np.ndarray,
    network: Callable[..., nn.Module],
    *,
    spatial_dims: int,
    seed: int = 0,
    steps: int = DEFAULT_RESTORATION_STEPS,
    batch_size: int = 4,
    lr: float = 2e-3,
    device: str | torch.device | None = None,
    progress: Progress | None = None,
) -> dict[str, Tensor]:
    """Train ``network(spatial_dims=, in_channels=C, num_classes=C)`` for ``steps`` steps to
    restore scans of ``images`` ``[N, (C,) *spatial]`` (one shape; uint8 scaled to [0, 1] as the
    segmenter reads it) with boxes painted over (`paint_boxes`), mean squared error on every
    voxel; random flips on every axis. Returns its weights on the CPU. Deterministic for a
    ``seed`` on one device; the caller's global random generators are left as they were."""
    if steps < 1 or batch_size < 1:
        raise ModelError(
            f"steps and batch_size must be at least 1, got {steps} and {batch_size}",
            field="steps",
        )
    x_all = as_images(np.asarray(images), spatial_dims)
    if len(x_all) == 0:
        raise ModelError("no scans to pretrain on", field="images")
    dev = resolve_device(device)
    channels = int(x_all.shape[1])
    generator = torch.Generator().manual_seed(seed ^ _SEED_SALT)
    with torch.random.fork_rng(devices=[dev] if dev.type == "cuda" else []):
        torch.manual_seed(seed ^ _SEED_SALT)
        net = network(spatial_dims=spatial_dims, in_channels=channels, num_classes=channels)
        net = net.to(dev).train()
        optimiser = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=1e-4)
        with deterministic_kernels():
            for step in range(steps):
                rows = torch.randint(0, len(x_all), (batch_size,), generator=generator)
                x = x_all[rows]
                for axis in range(2, 2 + spatial_dims):
                    if float(torch.rand(1, generator=generator)) < 0.5:
                        x = x.flip(axis)
                x = x.to(dev)
                loss = F.mse_loss(net(paint_boxes(x, generator)), x)
                if not torch.isfinite(loss):
                    raise ModelError(
                        f"restoration pretraining diverged at step {step} (loss {loss.item()})",
                        field="lr",
                    )
                optimiser.zero_grad(set_to_none=True)
                loss.backward()
                optimiser.step()
                if progress is not None and ((step + 1) % 50 == 0 or step + 1 == steps):
                    progress("pretraining on unlabelled scans", step + 1, steps)
    return {name: value.detach().cpu().clone() for name, value in net.state_dict().items()}


def load_pretrained(net: nn.Module, state: StateDict) -> int:
    """Load the entries of ``state`` whose names and shapes match ``net``'s (all but an output
    layer of another channel count); returns how many. Raises ModelError when none match (a
    state of another network)."""
    own = net.state_dict()
    fitting = {k: v for k, v in state.items() if k in own and own[k].shape == v.shape}
    if not fitting:
        raise ModelError(
            f"the pretrained state fits none of {type(net).__name__}'s weights "
            f"(it holds {len(state)} entries of another network)",
            field="pretrained_state",
        )
    net.load_state_dict(fitting, strict=False)
    return len(fitting)
