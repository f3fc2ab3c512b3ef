"""Keyed dropout masks on large inputs (3D feature maps): drawn per row from a generator seeded
by the row's hash instead of hashed per unit, still a function of the row key alone."""

from __future__ import annotations

import torch
from torch import nn

from workbench.models._dropout import GENERATOR_UNITS, KeyedDropout

SHAPE = (2, 32, 32, 32)  # 65,536 units per row: the generator path
assert torch.Size(SHAPE).numel() >= GENERATOR_UNITS


def _masked(net: nn.Module, keys: list[int], seed: int = 3) -> torch.Tensor:
    x = torch.ones(len(keys), *SHAPE)
    with KeyedDropout(net, seed) as keyed:
        keyed.rows = torch.tensor(keys)
        return net(x)


def test_large_masks_depend_on_the_row_key_only() -> None:
    net = nn.Sequential(nn.Dropout(0.25))
    batch = _masked(net, [5, 9, 5])
    alone = _masked(net, [9])
    assert torch.equal(batch[0], batch[2]) and torch.equal(batch[1], alone[0])
    assert not torch.equal(batch[0], batch[1])
    assert not torch.equal(_masked(net, [5], seed=4)[0], batch[0])  # the seed matters
    kept = (batch[0] > 0).float().mean().item()
    assert abs(kept - 0.75) < 0.01  # 65,536 draws: sd of the fraction 0.0017
    assert torch.allclose(batch[0][batch[0] > 0], torch.tensor(1 / 0.75))


def test_each_dropout_module_draws_its_own_large_mask() -> None:
    net = nn.Sequential(nn.Dropout(0.5), nn.Dropout(0.5))
    twice = _masked(net, [1])
    once = _masked(nn.Sequential(nn.Dropout(0.5)), [1])
    # two independent masks keep a quarter of the units (scaled by 4), one keeps half
    assert abs((twice > 0).float().mean().item() - 0.25) < 0.01
    assert abs((once > 0).float().mean().item() - 0.5) < 0.01


def test_gradients_flow_through_large_masks_in_training() -> None:
    conv = nn.Conv3d(2, 2, 1)
    net = nn.Sequential(conv, nn.Dropout(0.5)).train()
    x = torch.randn(2, *SHAPE)
    with KeyedDropout(net, 0) as keyed:
        keyed.rows = torch.tensor([1, 2])
        out = net(x)
    out.sum().backward()
    assert conv.weight.grad is not None and float(conv.weight.grad.abs().sum()) > 0
    assert net[1].training  # modes restored
