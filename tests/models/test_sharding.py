"""The pieces that make N-process training equal one process: global batches shared by rank,
keyed randomness, global-batch BatchNorm, and unpadded pool shards."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import lightning as L
import pytest
import torch
from torch import nn

from workbench.models import ClassificationModule, ModelError, small_cnn
from workbench.models._dropout import KeyedDropout, draw_keys, keyed_uniform
from workbench.models._sharding import (
    EpochDraws,
    GlobalBatchNorm,
    GlobalBatchSampler,
    RankShardSampler,
)
from workbench.recipes._augment import augment_images, augment_scans
from workbench.recipes._data import SplitDataModule, TensorItems


def _shares(n: int, draws: int, batch: int, world: int, epoch: int, replacement: bool) -> Any:
    out = []
    for rank in range(world):
        sampler = EpochDraws(n, draws, replacement=replacement, seed=3)
        sampler.set_epoch(epoch)
        out.append(list(GlobalBatchSampler(sampler, batch, rank=rank, world_size=world)))
    return out


@pytest.mark.parametrize("replacement", [False, True])
def test_ranks_share_the_global_batches_of_one_process(replacement: bool) -> None:
    (single,) = _shares(23, 21, 7, 1, 0, replacement)
    assert len(single) == 3 and all(len(b) == 7 for b in single)
    assert [d for b in single for _, d in b] == list(range(21))
    for world in (2, 3, 7):
        shares = _shares(23, 21, 7, world, 0, replacement)
        assert {len(s) for s in shares} == {3}  # same number of steps on every rank
        for step, batch in enumerate(single):
            parts = [s[step] for s in shares]
            assert all(parts)  # no rank left empty
            assert Counter(p for part in parts for p in part) == Counter(batch)
    later = _shares(23, 21, 7, 1, 1, replacement)[0]
    assert [i for b in later for i, _ in b] != [i for b in single for i, _ in b]
    assert [d for b in later for _, d in b] == list(range(21, 42))
    with pytest.raises(ModelError, match="cannot be shared by 8"):
        GlobalBatchSampler(EpochDraws(23, 21, replacement=False, seed=0), 7, world_size=8)


def test_lightning_advances_the_epoch_of_the_draws(tmp_path: Path) -> None:
    g = torch.Generator().manual_seed(0)
    images, labels = torch.rand(40, 1, 28, 28, generator=g), torch.arange(40) % 2
    data = SplitDataModule(
        TensorItems(images, labels),
        TensorItems(images[:8], labels[:8]),
        batch_size=8,
        min_steps=2,
        predict_batch_size=8,
        seed=0,
    )
    seen: list[list[int]] = []

    class Record(L.Callback):
        def on_train_batch_start(self, trainer: Any, module: Any, batch: Any, idx: int) -> None:
            seen.append(batch["draw"].tolist())

    module = ClassificationModule(small_cnn(), mc_samples=2)
    trainer = L.Trainer(
        max_epochs=2,
        logger=False,
        enable_progress_bar=False,
        enable_checkpointing=False,
        accelerator="cpu",
        use_distributed_sampler=False,
        callbacks=[Record()],
    )
    trainer.fit(module, datamodule=data)
    # 40 items, batch 8: a permutation of 40 a epoch, 5 batches, draws numbered across epochs
    assert [d for b in seen for d in b] == list(range(80))


def test_keyed_augmentation_does_not_depend_on_the_batch() -> None:
    x = torch.rand(6, 1, 28, 28, generator=torch.Generator().manual_seed(1))
    keys = draw_keys(torch.arange(6) + 100, torch.arange(6), seed=0)
    kwargs: dict[str, Any] = {
        "flip_axes": (0, 1),
        "rotate": 0.3,
        "shift": 0.1,
        "scale": 0.1,
        "intensity": 0.1,
    }
    whole = augment_images(x, keys=keys, **kwargs)
    parts = torch.cat([augment_images(x[i::2], keys=keys[i::2], **kwargs) for i in (0, 1)])
    torch.testing.assert_close(parts, torch.cat([whole[0::2], whole[1::2]]))
    other = augment_images(
        x, keys=draw_keys(torch.arange(6) + 100, torch.arange(6) + 6, 0), **kwargs
    )
    assert not torch.allclose(other, whole)  # a later draw of the same items differs
    u = keyed_uniform(draw_keys(torch.arange(20000), torch.zeros(20000), 0), 3)
    assert float(u.min()) >= 0.0 and float(u.max()) < 1.0
    assert abs(float(u.mean()) - 0.5) < 0.01


def test_keyed_scan_augmentation_flips_mask_with_image_whatever_the_batch() -> None:
    g = torch.Generator().manual_seed(2)
    y = (torch.rand(6, 1, 8, 10, 6, generator=g) > 0.7).to(torch.uint8)
    x = y.float() * 0.5 + 0.25  # the image shows its mask: flips must move both together
    keys = draw_keys(torch.arange(6) + 100, torch.arange(6), seed=0)
    kwargs: dict[str, Any] = {"flip_axes": (0, 1, 2), "intensity": 0.1}
    xa, ya = augment_scans(x, y, keys=keys, **kwargs)
    gain_free = (xa - xa.amin((1, 2, 3, 4), keepdim=True)) > 1e-3  # where the jittered image
    assert torch.equal(gain_free, ya.bool())  # is bright is exactly the flipped mask
    assert not torch.equal(ya, y)  # something was flipped
    parts = [augment_scans(x[i::2], y[i::2], keys=keys[i::2], **kwargs) for i in (0, 1)]
    torch.testing.assert_close(torch.cat([p[0] for p in parts]), torch.cat([xa[0::2], xa[1::2]]))
    assert torch.equal(torch.cat([p[1] for p in parts]), torch.cat([ya[0::2], ya[1::2]]))
    later = augment_scans(
        x, y, keys=draw_keys(torch.arange(6) + 100, torch.arange(6) + 6, 0), **kwargs
    )[0]
    assert not torch.allclose(later, xa)  # a later draw of the same scans differs


def test_keyed_dropout_trains_and_restores_modes() -> None:
    net = nn.Sequential(nn.Linear(4, 64), nn.Dropout(0.5), nn.Linear(64, 1))
    net.train()
    x = torch.ones(3, 4)
    rows = draw_keys(torch.arange(3), torch.arange(3), seed=5)
    with KeyedDropout(net, 7) as keyed:
        keyed.rows = rows
        out = net(x)
        keyed.rows = rows[[2, 0, 1]]
        shuffled = net(x[[2, 0, 1]])
    torch.testing.assert_close(shuffled, out[[2, 0, 1]])
    out.sum().backward()
    first = net[0]
    assert isinstance(first, nn.Linear)
    assert first.weight.grad is not None and bool(first.weight.grad.abs().sum() > 0)
    assert all(m.training for m in net.modules())
    hidden = net[1](net[0](x))  # plain dropout again: zeros about half
    assert 0.2 < float((hidden == 0).float().mean()) < 0.8


def test_global_batch_norm_is_plain_batch_norm_in_one_process() -> None:
    net = small_cnn()
    twin = small_cnn()
    twin.load_state_dict(net.state_dict())
    GlobalBatchNorm().apply(twin)
    norms = [m for m in twin.modules() if isinstance(m, nn.BatchNorm2d)]
    assert norms and all(type(m).__name__ == "GlobalBatchNorm2d" for m in norms)
    x = torch.rand(8, 1, 28, 28)
    torch.testing.assert_close(twin.trunk.train()(x), net.trunk.train()(x))  # no dropout there
    GlobalBatchNorm().revert(twin)
    assert all(type(m) is nn.BatchNorm2d for m in twin.modules() if isinstance(m, nn.BatchNorm2d))
    for key, value in net.state_dict().items():
        torch.testing.assert_close(twin.state_dict()[key], value)


def test_rank_shards_cover_the_pool_once() -> None:
    for world in (1, 2, 3, 5):
        shards = [list(RankShardSampler(11, num_replicas=world, rank=r)) for r in range(world)]
        assert sorted(i for s in shards for i in s) == list(range(11))
        assert [len(RankShardSampler(11, num_replicas=world, rank=r)) for r in range(world)] == [
            len(s) for s in shards
        ]
