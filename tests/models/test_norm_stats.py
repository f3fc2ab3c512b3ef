"""`recalibrate_batch_norm`: BatchNorm statistics re-estimated from data, nothing else touched."""

from __future__ import annotations

import torch
from torch import nn

from workbench.models import recalibrate_batch_norm


def _net() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 3, 3, padding=1), nn.Dropout(0.5), nn.BatchNorm2d(3))


def _batches(n: int = 4) -> list[torch.Tensor]:
    gen = torch.Generator().manual_seed(1)
    return [torch.randn(8, 1, 6, 6, generator=gen) * 3 + 5 for _ in range(n)]


def test_running_statistics_become_those_of_the_data_seen_with_dropout_off() -> None:
    net = _net()
    net.train()
    bn = net[2]
    assert isinstance(bn, nn.BatchNorm2d)
    weights = {
        k: v.clone()
        for k, v in net.state_dict().items()
        if "running" not in k and "num_batches" not in k
    }
    batches = _batches()
    assert recalibrate_batch_norm(net, batches) == 1
    with torch.no_grad():  # what the BN layer sees: conv output, dropout off
        feats = [net[0](x) for x in batches]
    means = torch.stack([f.mean((0, 2, 3)) for f in feats]).mean(0)
    variances = torch.stack([f.var((0, 2, 3), unbiased=True) for f in feats]).mean(0)
    torch.testing.assert_close(bn.running_mean, means)
    torch.testing.assert_close(bn.running_var, variances)
    for key, value in weights.items():
        assert torch.equal(net.state_dict()[key], value), key
    assert net.training and net[1].training and bn.training  # modes restored
    assert bn.momentum == 0.1


def test_eval_mode_and_momentum_are_restored() -> None:
    net = _net().eval()
    bn = net[2]
    assert isinstance(bn, nn.BatchNorm2d)
    bn.momentum = 0.3
    recalibrate_batch_norm(net, _batches(1))
    assert not any(m.training for m in net.modules())
    assert bn.momentum == 0.3


def test_without_batch_norm_or_without_batches_nothing_changes() -> None:
    plain = nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU())
    assert recalibrate_batch_norm(plain, _batches()) == 0
    net = _net()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    assert recalibrate_batch_norm(net, []) == 0
    for key, value in before.items():
        assert torch.equal(net.state_dict()[key], value), key
