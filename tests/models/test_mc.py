from __future__ import annotations

import ctypes
import multiprocessing
import re
import sys
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import torch

from workbench.models import (
    ArrayDataset,
    ModelError,
    batch_loader,
    build_segmenter,
    default_flips,
    embeddings,
    iter_tta_predict,
    mc_predict,
    sample_moments,
    small_cnn,
)
from workbench.models._windows import SlidingWindow
from workbench.strategies import moment_uncertainty_map, uncertainty_map


def entropy(probs: torch.Tensor) -> torch.Tensor:
    """Predictive entropy.  # [B, T, C] -> [B]"""
    mean = probs.mean(1)
    return -(mean * mean.clamp_min(1e-12).log()).sum(1)


def pool(n: int, seed: int = 0) -> ArrayDataset:
    rng = np.random.default_rng(seed)
    return ArrayDataset(rng.integers(0, 256, (n, 28, 28), dtype=np.uint8), ids=np.arange(n) + 1000)


def test_replicated_pass_equals_looped_pass_with_keyed_masks() -> None:
    net = small_cnn()
    loader = batch_loader(pool(40), 16)
    replicated = mc_predict(net, loader, 12, seed=7)
    looped = mc_predict(net, loader, 12, seed=7, max_rows=16)  # one sample per pass
    regrouped = mc_predict(net, batch_loader(pool(40), 5), 12, seed=7)
    assert replicated.values.shape == (40, 12, 2)
    np.testing.assert_array_equal(replicated.ids, np.arange(40) + 1000)
    np.testing.assert_allclose(replicated.values, looped.values, atol=1e-6)
    np.testing.assert_allclose(replicated.values, regrouped.values, atol=1e-6)
    assert np.unique(replicated.values[0, :, 0]).size == 12


def test_uint8_batches_scaled_on_the_device_score_as_float_batches_do() -> None:
    images = np.random.default_rng(3).integers(0, 256, (37, 28, 28), dtype=np.uint8)
    raw = ArrayDataset(images, ids=np.arange(37), scale_uint8=False)
    scaled = ArrayDataset(images, ids=np.arange(37))
    first = next(iter(batch_loader(raw, 8)))["image"]
    assert first.dtype == torch.uint8 and first.shape == (8, 1, 28, 28)
    assert raw[0]["image"].dtype == torch.uint8
    net = small_cnn()
    kept = mc_predict(net, batch_loader(raw, 8), 6, seed=2, reduce=entropy)
    as_float = mc_predict(net, batch_loader(scaled, 8), 6, seed=2, reduce=entropy)
    np.testing.assert_array_equal(kept.ids, np.arange(37))
    np.testing.assert_array_equal(kept.values, as_float.values)  # same arithmetic, same bits


def test_batches_are_copies_whether_fetched_as_a_run_or_scattered() -> None:
    images = np.random.default_rng(4).random((20, 1, 8, 8)).astype(np.float32)
    data = ArrayDataset(images.copy(), ids=np.arange(20))
    run = data.batch([4, 5, 6, 7])
    scattered = data.batch([7, 4, 6, 5])
    np.testing.assert_array_equal(run["image"].numpy(), images[4:8])
    np.testing.assert_array_equal(scattered["image"].numpy(), images[[7, 4, 6, 5]])
    np.testing.assert_array_equal(run["id"].numpy(), [4, 5, 6, 7])
    run["image"].add_(1.0)  # a consumer that works in place must not change the pool
    np.testing.assert_array_equal(data.images, images)


def test_keyed_and_native_masks_give_the_same_predictive_distribution() -> None:
    net = small_cnn(dropout=0.5)
    loader = batch_loader(pool(64), 64)
    keyed = mc_predict(net, loader, 400, seed=1).values
    native = mc_predict(net, loader, 400).values
    # same mean and spread per item, up to MC noise (400 samples)
    assert np.abs(keyed.mean(1) - native.mean(1)).max() < 0.01
    np.testing.assert_allclose(keyed.std(1), native.std(1), rtol=0.15, atol=1e-3)


def test_without_dropout_all_samples_equal_the_eval_forward() -> None:
    net = small_cnn(dropout=0.0).eval()
    data = pool(10)
    out = mc_predict(net, batch_loader(data, 4), 5, device="cpu").values
    expected = torch.softmax(net(data.batch(range(10))["image"]), 1).detach().numpy()
    np.testing.assert_allclose(out, np.repeat(expected[:, None], 5, 1), atol=1e-6)


def _rss(key: str) -> int:
    text = Path("/proc/self/status").read_text()
    match = re.search(rf"{key}:\s+(\d+) kB", text)
    assert match is not None
    return int(match.group(1)) * 1024


def _peak_growth(fn: Callable[[], object]) -> int:
    """Peak RSS during ``fn`` minus RSS before (Linux: VmHWM reset through clear_refs)."""
    libc = ctypes.CDLL("libc.so.6")
    libc.malloc_trim(0)
    Path("/proc/self/clear_refs").write_text("5")
    before = _rss("VmRSS")
    fn()
    return _rss("VmHWM") - before


def _measure_peak_growth(small: int, large: int) -> tuple[list[int], list[int]]:
    """Peak RSS growth of streaming (reduced) and full scoring for two pool sizes; run in a
    fresh process so that earlier tests' heap does not blur a few-MB signal."""
    libc = ctypes.CDLL("libc.so.6")
    libc.mallopt(-3, 64 * 1024)  # M_MMAP_THRESHOLD fixed: freed big blocks leave the RSS
    torch.set_num_threads(1)
    net = small_cnn(num_classes=10, channels=(4, 8), hidden=16)
    pools = {n: pool(n) for n in (small, large)}

    def score(
        n: int, reduce: Callable[[torch.Tensor], torch.Tensor] | None
    ) -> Callable[[], object]:
        return lambda: mc_predict(net, batch_loader(pools[n], 128), 40, reduce=reduce)

    score(small, entropy)()  # warm-up
    reduced = [min(_peak_growth(score(n, entropy)) for _ in range(2)) for n in (small, large)]
    full = [_peak_growth(score(n, None)) for n in (small, large)]  # keeps [N, 40, 10] float32
    return reduced, full


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self (Linux)")
def test_streaming_scorer_peak_memory_does_not_grow_with_pool() -> None:
    small, large = 1000, 16000
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as executor:
        reduced, full = executor.submit(_measure_peak_growth, small, large).result(timeout=600)
    kept_outputs = (large - small) * 40 * 10 * 4  # 24 MB more for the larger pool
    # the probe sees outputs that grow with the pool ...
    assert full[1] - full[0] > 0.8 * kept_outputs, full
    # ... and the streaming scorer's peak does not (allocator noise of a few MB allowed)
    assert reduced[1] - reduced[0] < 0.25 * kept_outputs, reduced


def test_tta_gives_mean_probs_and_uncertainty_map() -> None:
    net = build_segmenter("unet", num_classes=3, features=(8, 16, 32))
    volumes = torch.randn(3, 1, 16, 16, 16)
    loader = [{"image": volumes[:2], "id": ["a", "b"]}, {"image": volumes[2:], "id": ["c"]}]
    parts = list(iter_tta_predict(net, loader, samples=2, seed=0))
    assert [list(p.ids) for p in parts] == [["a", "b"], ["c"]]
    mean, uncertainty = parts[0].mean, parts[0].uncertainty
    assert mean.shape == (2, 3, 16, 16, 16) and uncertainty.shape == (2, 16, 16, 16)
    torch.testing.assert_close(mean.sum(1), torch.ones(2, 16, 16, 16))
    assert (uncertainty >= 0).all() and uncertainty.max() <= np.log(3) + 1e-5
    again = next(iter_tta_predict(net, loader[:1], samples=2, seed=0))
    torch.testing.assert_close(again.mean, mean)


def test_tta_alone_is_the_eval_pass_averaged_over_flipped_back_flips() -> None:
    net = build_segmenter("unet", num_classes=2, features=(8, 16, 32), dropout=0.3)
    x = torch.randn(2, 1, 16, 8, 16)
    out = next(iter_tta_predict(net, [{"image": x, "id": np.array([1, 2])}], device="cpu"))
    net.eval()
    with torch.no_grad():
        expected = torch.stack(
            [
                torch.flip(torch.softmax(net(torch.flip(x, flip) if flip else x), 1), flip)
                if flip
                else torch.softmax(net(x), 1)
                for flip in default_flips(3)
            ]
        ).mean(0)
    torch.testing.assert_close(out.mean, expected, atol=1e-5, rtol=1e-5)
    assert net.training is False  # modes restored as they were
    net.train()
    next(iter_tta_predict(net, [{"image": x, "id": np.array([1, 2])}], device="cpu"))
    assert net.training is True


def test_mc_samples_under_flips_are_the_flipped_back_samples_of_flipped_scans() -> None:
    net = build_segmenter("unet", num_classes=3, features=(8, 16, 32), dropout=0.2)
    volumes = torch.randn(2, 1, 16, 8, 16)
    ids = np.array([4, 9])
    loader = [{"image": volumes, "id": ids}]
    plain = mc_predict(net, loader, 3, seed=1).values  # [2, 3, 3, 16, 8, 16]
    flips = default_flips(3)
    both = mc_predict(net, loader, 3, seed=1, flips=flips).values
    assert both.shape == (2, 3 * 4, 3, 16, 8, 16)
    np.testing.assert_array_equal(both[:, :3], plain)
    for f, flip in enumerate(flips[1:], start=1):
        flipped = [{"image": torch.flip(volumes, flip), "id": ids}]
        direct = np.flip(mc_predict(net, flipped, 3, seed=1).values, flip[0] + 1)
        np.testing.assert_allclose(both[:, 3 * f : 3 * (f + 1)], direct, atol=1e-6)
        assert np.abs(both[:, 3 * f : 3 * (f + 1)] - plain).max() > 1e-3  # flips change them


@pytest.mark.parametrize("flips", [None, default_flips(3)], ids=["mc", "mc-under-flips"])
@pytest.mark.parametrize("max_rows", [None, 2], ids=["one-pass", "pass-by-pass"])
def test_moments_are_the_mean_and_mean_entropy_of_every_sample(
    flips: list[tuple[int, ...]] | None, max_rows: int | None
) -> None:
    """Scoring with ``moments=True`` (samples summed pass by pass and flip by flip) gives what
    the samples themselves give: mean probabilities, the mean per-sample entropy, and from them
    the entropy and BALD maps of `uncertainty_map`."""
    net = build_segmenter("unet", num_classes=3, features=(8, 16, 32), dropout=0.2)
    volumes = torch.randn(2, 1, 16, 8, 16)
    loader = [{"image": volumes, "id": np.array([4, 9])}]
    # on the CPU: under CUDA's 16-mixed, batches of other sizes round differently
    samples = mc_predict(net, loader, 4, seed=1, flips=flips, device="cpu").values
    moments = mc_predict(
        net, loader, 4, seed=1, flips=flips, moments=True, device="cpu", max_rows=max_rows
    ).values  # [2, T', 3, 16, 8, 16] -> [2, 4, 16, 8, 16]
    assert moments.shape == (2, 4, 16, 8, 16)
    p = samples.astype(np.float64)
    np.testing.assert_allclose(moments[:, :3], p.mean(1), atol=1e-6)
    mean_entropy = -(p * np.log(np.maximum(p, 1e-300))).sum(2).mean(1)
    np.testing.assert_allclose(moments[:, 3], mean_entropy, atol=1e-5)
    for kind in ("entropy", "bald", "margin", "least_confidence"):
        np.testing.assert_allclose(
            moment_uncertainty_map(moments, kind, spatial_dims=3),
            uncertainty_map(samples, kind, spatial_dims=3),
            atol=1e-5,
        )
    assert moment_uncertainty_map(moments, "bald", spatial_dims=3).max() > 1e-3  # they differ
    torch.testing.assert_close(
        sample_moments(torch.from_numpy(samples)), torch.from_numpy(moments), atol=1e-5, rtol=1e-5
    )


def test_moments_over_sliding_windows_are_those_of_the_windowed_samples() -> None:
    net = build_segmenter("unet", num_classes=2, features=(8, 16, 32), dropout=0.2)
    loader = [{"image": torch.randn(1, 1, 20, 28, 18), "id": np.array([3])}]
    window = SlidingWindow((16, 16, 16), overlap=0.25)
    flips = default_flips(3)
    samples = mc_predict(net, loader, 3, seed=2, window=window, flips=flips, device="cpu").values
    moments = mc_predict(
        net, loader, 3, seed=2, window=window, flips=flips, moments=True, device="cpu"
    ).values
    assert samples.shape == (1, 12, 2, 20, 28, 18) and moments.shape == (1, 3, 20, 28, 18)
    np.testing.assert_allclose(
        moments, sample_moments(torch.from_numpy(samples)).numpy(), atol=1e-5
    )


def test_embeddings_are_penultimate_features() -> None:
    net = small_cnn(hidden=32)
    out = embeddings(net, batch_loader(pool(20), 8))
    assert out.values.shape == (20, 32) and out.ids[0] == 1000
    by_layer = embeddings(net, batch_loader(pool(20), 8), layer="trunk")
    np.testing.assert_allclose(out.values, by_layer.values)


def test_input_that_does_not_fit_raises_model_error() -> None:
    net = small_cnn(in_channels=3)
    with pytest.raises(ModelError, match="does not fit"):
        mc_predict(net, batch_loader(pool(4), 4), 2)
    with pytest.raises(ModelError, match="samples"):
        mc_predict(net, [], 0)


def test_auto_precision_is_mixed_on_cuda_and_full_on_cpu() -> None:
    from workbench.models._mc import scoring_precision

    assert scoring_precision(torch.device("cuda")) == "16-mixed"  # as training there
    assert scoring_precision(torch.device("cpu")) == "32"
    assert scoring_precision(torch.device("cuda"), "32") == "32"  # asked for, kept


def test_mixed_precision_scores_close_to_full_precision_and_bad_names_are_refused() -> None:
    net = small_cnn()
    loader = batch_loader(pool(32), 16)
    full = mc_predict(net, loader, 6, seed=3, device="cpu").values
    mixed = mc_predict(net, loader, 6, seed=3, device="cpu", precision="bf16-mixed").values
    assert mixed.dtype == np.float32 and mixed.shape == full.shape  # probs back in float32
    assert 0 < np.abs(mixed - full).max() < 0.05  # bf16 really ran, and changed little
    with pytest.raises(ModelError, match="precision must be") as info:
        mc_predict(net, loader, 2, precision="fp8")  # type: ignore[arg-type]
    assert info.value.field == "precision"


def test_cpu_passes_are_capped_by_voxels_and_score_the_same(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """On the CPU a segmentation forward pass takes at most `PASS_VOXELS` of samples x scans:
    one sample of a 128^3 scan at a time, more of a small one; the moments do not change."""
    from pathlib import Path

    from workbench.recipes import TrainedSegmenter, iter_segmentation_moments
    from workbench.recipes import _segmentation as segmentation

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)  # the CPU rule, anywhere
    net = build_segmenter("unet", num_classes=2, features=(8, 16, 32), dropout=0.2)
    trained = TrainedSegmenter(
        module=net,
        metrics={},
        checkpoint_path=Path("."),
        state_dict={},
        spatial_dims=3,
        num_classes=2,
        seed=3,
        mc_samples=6,
        predict_batch_size=2,
    )
    rows = segmentation._rows_per_pass  # noqa: SLF001 - the cap itself is under test
    assert rows(trained, np.zeros((1, 1, 128, 128, 128), np.uint8)) == 1
    assert rows(trained, np.zeros((1, 1, 96, 96, 64), np.uint8)) == 3
    x = np.random.default_rng(0).integers(0, 256, (3, 1, 16, 8, 16), dtype=np.uint8)
    ids = np.array([5, 6, 7])
    capped = np.concatenate([m for _, m in iter_segmentation_moments(trained, x, ids=ids)])
    monkeypatch.setattr(segmentation, "PASS_VOXELS", 2**40)  # every sample in one pass
    replicated = np.concatenate([m for _, m in iter_segmentation_moments(trained, x, ids=ids)])
    monkeypatch.setattr(segmentation, "PASS_VOXELS", 1)  # one sample per pass
    single = np.concatenate([m for _, m in iter_segmentation_moments(trained, x, ids=ids)])
    np.testing.assert_allclose(capped, replicated, atol=1e-5)
    np.testing.assert_allclose(single, replicated, atol=1e-5)
