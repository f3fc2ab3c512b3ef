"""Self-supervised features of unlabelled images (SimCLR), for a cold start with no model yet.

TypiClust (Hacohen et al. 2022) picks the first labels as the typical items of clusters of
*self-supervised* features: with no label at all, a contrastive encoder trained on the pool
itself (two augmented views of each image must find each other among the batch, Chen et al.
2020) places images of one kind near each other, which raw pixels do not.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from workbench.models import resolve_device, small_cnn
from workbench.models._rng import deterministic_kernels
from workbench.recipes._augment import augment_images

Progress = Callable[[str, int, "int | None"], None]
_PROJECTION = 64
DEFAULT_MAX_SIDE = {2: 64, 3: 16}  # per spatial dims: the sides every benchmark trained at
_SEED_SALT = 0x551


def _standardised(images: np.ndarray, spatial_dims: int, max_side: int) -> Tensor:
    """``[N, C, *spatial]`` float32, each axis area-resized to at most ``max_side``, z-scored
    over every pixel of every image."""
    x = torch.from_numpy(np.ascontiguousarray(images)).float()
    if x.ndim == spatial_dims + 1:
        x = x.unsqueeze(1)
    if x.ndim != spatial_dims + 2:
        raise ValueError(
            f"images must be [N, (C,) *spatial] with {spatial_dims} spatial axes, "
            f"got shape {tuple(images.shape)}"
        )
    size = [min(int(side), max_side) for side in x.shape[2:]]
    if size != list(x.shape[2:]):
        x = F.interpolate(x, size=tuple(size), mode="area")
    return (x - x.mean()) / x.std().clamp_min(1e-6)


def _view(x: Tensor, spatial_dims: int) -> Tensor:
    """One strongly augmented view per image: a left-right flip, for 2D rotation / shift /
    zoom, intensity jitter and noise.  # [B, C, *spatial] -> same"""
    v = augment_images(
        x, flip_axes=(spatial_dims - 1,), rotate=0.5, shift=0.15, scale=0.25, intensity=0.4
    )
    return v + 0.1 * torch.randn_like(v)


def nt_xent(a: Tensor, b: Tensor, temperature: float) -> Tensor:
    """SimCLR's loss: each of the 2B projections must pick its partner view among the other
    2B - 1.  # a, b [B, D] -> scalar"""
    z = F.normalize(torch.cat([a, b]), dim=1)
    similarity = z @ z.T / temperature
    similarity.fill_diagonal_(float("-inf"))
    n = len(a)
    partner = torch.cat([torch.arange(n, 2 * n), torch.arange(n)]).to(a.device)
    return F.cross_entropy(similarity, partner)


@dataclass(frozen=True)
class ContrastiveEncoder:
    """What `train_contrastive` gives: the pool's trunk features, L2-normalised, and the trained
    trunk's weights (the keys of `small_cnn`'s ``trunk``, on the CPU)."""

    features: np.ndarray
    trunk_state: dict[str, Tensor]


def contrastive_features(
    images: np.ndarray,
    *,
    spatial_dims: int = 2,
    seed: int = 0,
    steps: int = 600,
    batch_size: int = 128,
    temperature: float = 0.2,
    max_side: int | None = None,
    device: str | torch.device | None = None,
    progress: Progress | None = None,
) -> np.ndarray:
    """`train_contrastive`'s features alone.  # images [N, (C,) *spatial] -> [N, D] float32"""
    return train_contrastive(
        images,
        spatial_dims=spatial_dims,
        seed=seed,
        steps=steps,
        batch_size=batch_size,
        temperature=temperature,
        max_side=max_side,
        device=device,
        progress=progress,
    ).features


def train_contrastive(
    images: np.ndarray,
    *,
    spatial_dims: int = 2,
    seed: int = 0,
    steps: int = 600,
    batch_size: int = 128,
    temperature: float = 0.2,
    max_side: int | None = None,
    device: str | torch.device | None = None,
    progress: Progress | None = None,
) -> ContrastiveEncoder:
    """Train a SimCLR encoder (the `small_cnn` trunk and a 2-layer projection) on ``images``,
    no label read, and return its trunk features, L2-normalised, with the trunk's weights.
    # images [N, (C,) *spatial] (any dtype) -> features [N, D] float32

    Images larger than ``max_side`` (default 64 for images, 16 for volumes) along an axis are
    area-resized to it first (what tells
    kinds of image apart survives; the cost stays that of small images). Deterministic for a
    ``seed`` on one device, CUDA included for 2D images (3D max pooling has no deterministic
    CUDA kernel); the global torch random state and deterministic-kernel setting are left as
    they were.
    ``progress("self-supervised features", step, steps)`` every 50 steps. At the defaults, on
    one CPU thread: 80-105 s for 28x28 images, about 8 minutes at 64x64 or larger."""
    if max_side is None:
        max_side = DEFAULT_MAX_SIDE.get(spatial_dims, 16)
    if steps < 1 or batch_size < 2 or temperature <= 0 or max_side < 8:
        raise ValueError(
            f"need steps >= 1, batch_size >= 2, temperature > 0 and max_side >= 8, "
            f"got {steps}, {batch_size}, {temperature} and {max_side}"
        )
    x = _standardised(images, spatial_dims, max_side)
    if len(x) < 2:
        raise ValueError(f"contrastive features need at least 2 images, got {len(x)}")
    dev = resolve_device(device)
    with (
        torch.random.fork_rng(devices=[dev] if dev.type == "cuda" else []),
        deterministic_kernels(),
    ):
        torch.manual_seed(seed * 1000 + _SEED_SALT)
        trunk = small_cnn(spatial_dims=spatial_dims, in_channels=x.shape[1]).trunk.to(dev)
        with torch.no_grad():  # eval: probing the width must not move BatchNorm statistics
            width = int(trunk.eval()(x[:2].to(dev)).shape[1])
        projection = nn.Sequential(
            nn.Linear(width, width), nn.ReLU(), nn.Linear(width, _PROJECTION)
        ).to(dev)
        params = [*trunk.parameters(), *projection.parameters()]
        optimiser = torch.optim.AdamW(params, lr=2e-3, weight_decay=1e-4)
        schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, steps)
        trunk.train()
        for step in range(1, steps + 1):
            batch = x[torch.randint(len(x), (min(batch_size, len(x)),))].to(dev)
            a = projection(trunk(_view(batch, spatial_dims)))
            b = projection(trunk(_view(batch, spatial_dims)))
            loss = nt_xent(a, b, temperature)
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            schedule.step()
            if progress is not None and (step % 50 == 0 or step == steps):
                progress("self-supervised features", step, steps)
        trunk.eval()
        with torch.no_grad():
            features = torch.cat(
                [trunk(x[i : i + 512].to(dev)).cpu() for i in range(0, len(x), 512)]
            )
        state = {k: v.detach().cpu().clone() for k, v in trunk.state_dict().items()}
    return ContrastiveEncoder(F.normalize(features, dim=1).numpy().astype(np.float32), state)
