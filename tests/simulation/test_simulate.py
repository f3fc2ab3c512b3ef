"""End-to-end simulations on tiny real subsets: determinism, report schema, segmentation."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from workbench.recipes import (
    ClassificationRecipe,
    SegmentationRecipe,
    contrastive_features,
    embed,
)
from workbench.simulation import (
    TARGETS,
    SimulationConfig,
    SimulationData,
    aulc,
    labels_to_reach,
    labels_to_reach_range,
    load_simulation_data,
    plot_curves,
    runs_from_report,
    simulate,
    summarise,
)
from workbench.simulation._run import _train, evaluate, pool_restoration
from workbench.strategies import StrategyError, get_strategy, select_typiclust

pytestmark = pytest.mark.shared_data


@pytest.fixture(scope="module")
def report(breast_tiny: SimulationData, tiny_recipe: ClassificationRecipe) -> dict[str, Any]:
    config = SimulationConfig(
        strategies=("random", "bald"), seeds=(0, 1), initial=6, batch=5, rounds=2
    )
    return simulate(breast_tiny, tiny_recipe, config)


def test_same_seed_gives_identical_curves(
    breast_tiny: SimulationData, tiny_recipe: ClassificationRecipe, report: dict[str, Any]
) -> None:
    config = SimulationConfig(
        strategies=("bald",), seeds=(1,), initial=6, batch=5, rounds=2, reference=False
    )
    again = simulate(breast_tiny, tiny_recipe, config)
    first = next(r for r in report["strategies"]["bald"]["runs"] if r["seed"] == 1)
    second = again["strategies"]["bald"]["runs"][0]
    assert json.dumps(first) == json.dumps(second)


def test_a_report_read_back_summarises_to_itself(
    breast_tiny: SimulationData, tiny_recipe: ClassificationRecipe, report: dict[str, Any]
) -> None:
    config = SimulationConfig(
        strategies=("random", "bald"), seeds=(0, 1), initial=6, batch=5, rounds=2
    )
    runs = runs_from_report(report, "random") + runs_from_report(report, "bald")
    again = summarise(breast_tiny, tiny_recipe, config, report["reference"]["per_seed"], runs)
    assert json.dumps(again, sort_keys=True) == json.dumps(report, sort_keys=True)
    renamed = runs_from_report(report, "bald", renamed="bald_stored")
    assert {r.strategy for r in renamed} == {"bald_stored"} and len(renamed) == 2
    with pytest.raises(KeyError, match="no runs of strategy 'entropy'; it has random, bald"):
        runs_from_report(report, "entropy")


def test_two_worker_processes_give_the_same_report(
    breast_tiny: SimulationData, tiny_recipe: ClassificationRecipe, report: dict[str, Any]
) -> None:
    config = SimulationConfig(
        strategies=("random", "bald"), seeds=(0, 1), initial=6, batch=5, rounds=2, workers=2
    )
    ticks: list[tuple[int, int]] = []
    parallel = simulate(
        breast_tiny, tiny_recipe, config, progress=lambda d, t, _w: ticks.append((d, t))
    )
    assert json.dumps(parallel["strategies"]) == json.dumps(report["strategies"])
    assert parallel["reference"] == report["reference"]
    assert ticks[-1] == (13, 13)  # 2 strategies x 2 seeds x 3 trainings + 1 reference
    assert len(ticks) == 5  # one tick per finished curve or reference training
    assert [d for d, _ in ticks] == sorted(d for d, _ in ticks)


def test_a_simulation_in_this_process_leaves_its_settings_as_they_were(
    breast_tiny: SimulationData,
    tiny_recipe: ClassificationRecipe,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """As in a notebook kernel: one thread and silenced warnings for the simulation only."""
    import logging
    import warnings

    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(threads + 1)  # not the simulation's 1, whatever the machine
    filters = list(warnings.filters)
    level = logging.getLogger("lightning.pytorch").level
    seen: list[int] = []
    inside = torch.get_num_threads

    def counted() -> int:
        seen.append(inside())
        return seen[-1]

    try:
        monkeypatch.setattr(torch, "get_num_threads", counted)
        config = SimulationConfig(
            strategies=("random",), seeds=(0,), initial=6, batch=5, rounds=1, reference=False
        )
        simulate(breast_tiny, tiny_recipe, config)
        monkeypatch.undo()
        assert 1 in seen  # the simulation ran at its one thread ...
        assert torch.get_num_threads() == threads + 1  # ... and gave the others back
        assert warnings.filters == filters
        assert logging.getLogger("lightning.pytorch").level == level
    finally:
        torch.set_num_threads(threads)


def test_a_failing_curve_in_a_worker_raises_its_error(
    breast_tiny: SimulationData, tiny_recipe: ClassificationRecipe
) -> None:
    from workbench.strategies import StrategyError

    config = SimulationConfig(
        strategies=("random", "no_such_strategy"),
        seeds=(3,),
        initial=6,
        batch=5,
        rounds=1,
        reference=False,
        workers=2,
    )
    for workers in (2, 1):  # the error names its curve, from a worker process or this one
        with pytest.raises(StrategyError, match="no_such_strategy") as caught:
            simulate(breast_tiny, tiny_recipe, dataclasses.replace(config, workers=workers))
        assert str(caught.value).startswith("no_such_strategy, seed 3: ")
        assert caught.value.context == "no_such_strategy, seed 3"


def test_a_failing_curve_stops_the_other_workers_and_leaves_no_work_folder(
    breast_tiny: SimulationData,
    tiny_recipe: ClassificationRecipe,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """When one curve fails, the curve training in the other worker must not go on for
    minutes after the error is raised (writing into a removed work folder)."""
    import os
    import tempfile

    from workbench.strategies import StrategyError

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # where the work folder goes
    long_recipe = dataclasses.replace(tiny_recipe, max_epochs=50, patience=50)
    config = SimulationConfig(
        strategies=("random", "no_such_strategy"),
        seeds=(0,),
        initial=6,
        batch=5,
        rounds=20,
        reference=False,
        workers=2,
    )
    with pytest.raises(StrategyError, match="no_such_strategy"):
        simulate(breast_tiny, long_recipe, config)
    assert _spawned_workers(os.getpid()) == [], "a worker is still training"
    assert list(tmp_path.iterdir()) == []


def test_workers_below_one_is_refused(
    breast_tiny: SimulationData, tiny_recipe: ClassificationRecipe
) -> None:
    with pytest.raises(ValueError, match="workers"):
        simulate(breast_tiny, tiny_recipe, SimulationConfig(seeds=(0,), rounds=0, workers=0))


def test_report_schema_is_complete_and_consistent(report: dict[str, Any], tmp_path: Path) -> None:
    json.dumps(report)  # JSON-ready
    assert report["metric"] == "auc"
    assert {"dataset", "config", "recipe", "reference", "strategies", "interval"} <= set(report)
    ref = report["reference"]["metric"]
    assert 0.0 <= ref <= 1.0
    random_aulc = report["strategies"]["random"]["aulc"]["per_seed"]
    for name, s in report["strategies"].items():
        assert [r["seed"] for r in s["runs"]] == [0, 1]
        per_seed = []
        for run in s["runs"]:
            assert [p["labels"] for p in run["curve"]] == [6, 11, 16]
            assert [len(p) for p in run["picks"]] == [6, 5, 5]
            flat = [i for p in run["picks"] for i in p]
            assert len(set(flat)) == 16
            assert {"auc", "accuracy"} <= set(run["curve"][0]["metrics"])
            for point in run["curve"]:  # the training's own metrics beside the test metrics
                training = point["training"]
                assert {"val_auc", "attempts", "degenerate"} <= set(training)
                assert training["attempts"] >= 1 and training["degenerate"] in (0.0, 1.0)
            labels = [p["labels"] for p in run["curve"]]
            metric = [p["metrics"]["auc"] for p in run["curve"]]
            per_seed.append(aulc(labels, metric))
        assert s["aulc"]["per_seed"] == pytest.approx(per_seed)
        assert s["aulc"]["mean"] == pytest.approx(np.mean(per_seed))
        assert s["aulc"]["lo"] <= s["aulc"]["mean"] <= s["aulc"]["hi"]
        assert set(s["labels_to_reach"]) == {f"{t:.2f}" for t in TARGETS}
        mean_curve = s["mean_curve"]
        for key, n in s["labels_to_reach"].items():
            expected = labels_to_reach(
                [p["labels"] for p in mean_curve], [p["mean"] for p in mean_curve], float(key) * ref
            )
            assert n == expected
            # where the mean reaches the target lies between where its interval's upper and
            # lower ends do
            span = s["labels_to_reach_range"][key]
            assert span == list(
                labels_to_reach_range(
                    [p["labels"] for p in mean_curve],
                    [p["lo"] for p in mean_curve],
                    [p["hi"] for p in mean_curve],
                    float(key) * ref,
                )
            )
            rank = [np.inf if v is None else v for v in (span[0], n, span[1])]
            assert rank == sorted(rank)
        if name == "random":
            assert s["aulc_vs_random"] is None
            assert s["vs_random_per_budget"] is None
            assert s["labels_to_reach_vs_random"] is None
        else:
            ratios = s["labels_to_reach_vs_random"]
            assert set(ratios) == set(s["labels_to_reach"])
            for key, reading in ratios.items():  # the point reading is the two mean curves'
                mine, base = (
                    s["labels_to_reach"][key],
                    report["strategies"]["random"]["labels_to_reach"][key],
                )
                assert reading["ratio"] == (None if None in (mine, base) else mine / base)
                assert reading["resamples"] == 2000 and 0.0 <= reading["censored"] <= 1.0
            diff = s["aulc_vs_random"]
            assert diff["per_seed"] == pytest.approx(np.subtract(per_seed, random_aulc))
            assert diff["lo"] <= diff["mean"] <= diff["hi"]
            by_budget = s["vs_random_per_budget"]
            assert [b["labels"] for b in by_budget] == [6, 11, 16]
            for j, budget in enumerate(by_budget):  # seed by seed, this budget's test AUC
                ours = [run["curve"][j]["metrics"]["auc"] for run in s["runs"]]
                theirs = [
                    run["curve"][j]["metrics"]["auc"]
                    for run in report["strategies"]["random"]["runs"]
                ]
                assert budget["mean"] == pytest.approx(np.mean(np.subtract(ours, theirs)))
                assert budget["n"] == 2 and budget["lo"] <= budget["mean"] <= budget["hi"]
    # strategies share the cold-start set under a seed (paired comparison)
    firsts = {name: s["runs"][0]["picks"][0] for name, s in report["strategies"].items()}
    assert firsts["random"] == firsts["bald"]
    png = plot_curves(report, tmp_path / "curves.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    # with a strategy paired against random, a panel of the differences below: taller
    alone = {**report, "strategies": {"random": report["strategies"]["random"]}}
    single = plot_curves(alone, tmp_path / "random.png").read_bytes()
    height = int.from_bytes(png[20:24], "big")
    assert (height, int.from_bytes(single[20:24], "big")) == (720, 504)


def test_segmentation_simulation_one_round(
    hippocampus_tiny: Path, tiny_seg_recipe: SegmentationRecipe
) -> None:
    data = load_simulation_data(hippocampus_tiny, shape=(24, 32, 24))
    assert data.task == "segmentation" and data.spatial_dims == 3 and data.num_classes == 3
    assert len(data.pool_x) + len(data.val_x) + len(data.test_x) == 7
    config = SimulationConfig(
        strategies=("random", "bald"), seeds=(0,), initial=2, batch=1, rounds=1, score_pool=4
    )
    report = simulate(data, tiny_seg_recipe, config)
    assert report["metric"] == "dice"
    for s in report["strategies"].values():
        curve = s["runs"][0]["curve"]
        assert [p["labels"] for p in curve] == [2, 3]
        assert all(0.0 <= p["metrics"]["dice"] <= 1.0 for p in curve)


@pytest.mark.parametrize("name", ["coreset", "typiclust"])
def test_diversity_picks_are_placed_relative_to_the_labels(
    breast_tiny: SimulationData, tiny_recipe: ClassificationRecipe, tmp_path: Path, name: str
) -> None:
    config = SimulationConfig(
        strategies=(name,), seeds=(0,), initial=6, batch=5, rounds=1, reference=False
    )
    picks = simulate(breast_tiny, tiny_recipe, config)["strategies"][name]["runs"][0]["picks"]
    # by hand: the first model (same training seed), every unlabelled and labelled pool item
    # through it, the labelled ones flagged
    first = np.asarray(picks[0])
    trained = _train(
        tiny_recipe,
        breast_tiny,
        breast_tiny.pool_x[first],
        breast_tiny.pool_y[first],
        0,
        tmp_path,
        None,
    )
    unlabelled = np.setdiff1d(np.arange(len(breast_tiny.pool_x)), first)
    positions = np.concatenate([unlabelled, first])
    features = embed(trained, breast_tiny.pool_x[positions])
    strategy = get_strategy(name)
    flagged = np.arange(len(positions)) >= len(unlabelled)
    by_hand = strategy(
        k=5, embeddings=features, labelled_mask=flagged, rng=np.random.default_rng([0, 0, 0x5E1EC7])
    )
    assert picks[1] == positions[by_hand.indices].tolist()


def test_typical_cold_start_is_shared_by_every_strategy(
    breast_tiny: SimulationData, tiny_recipe: ClassificationRecipe
) -> None:
    config = SimulationConfig(
        strategies=("random", "bald"),
        seeds=(2,),
        initial=6,
        batch=5,
        rounds=1,
        reference=False,
        cold_start="typical",
        contrastive_steps=15,
    )
    report = simulate(breast_tiny, tiny_recipe, config)
    assert report["config"]["cold_start"] == "typical"
    assert report["config"]["contrastive_steps"] == 15
    firsts = [report["strategies"][n]["runs"][0]["picks"][0] for n in config.strategies]
    # by hand: TypiClust over this seed's self-supervised features of the pool
    features = contrastive_features(breast_tiny.pool_x, seed=2, steps=15)
    by_hand = select_typiclust(features, 6, rng=np.random.default_rng([2, 0xC01D])).indices
    assert firsts == [sorted(by_hand.tolist())] * 2


@pytest.mark.parametrize("name", ["coreset", "typiclust", "badge"])
def test_embedding_strategies_are_refused_on_segmentation_before_any_training(
    hippocampus_tiny: Path, tiny_seg_recipe: SegmentationRecipe, name: str
) -> None:
    data = load_simulation_data(hippocampus_tiny, shape=(24, 32, 24))
    config = SimulationConfig(strategies=("random", name), seeds=(0,), initial=2, batch=1, rounds=1)
    with pytest.raises(StrategyError, match=f"strategy '{name}' reads a classifier's embeddings"):
        simulate(data, tiny_seg_recipe, config)


_KILLED_PARENT = """
import sys
from workbench.recipes import ClassificationRecipe
from workbench.simulation import SimulationConfig, load_simulation_data, simulate

if __name__ == "__main__":
    data = load_simulation_data(sys.argv[1], max_pool=200, max_val=20, max_test=40)
    recipe = ClassificationRecipe(max_epochs=50, patience=50, min_steps_per_epoch=20)
    config = SimulationConfig(strategies=("random",), seeds=(0, 1), initial=20, batch=20,
                              rounds=8, reference=False, workers=2)
    simulate(data, recipe, config)
"""


def _spawned_workers(pid: int) -> list[Any]:
    import psutil

    out = []
    for child in psutil.Process(pid).children():
        try:
            if "spawn_main" in " ".join(child.cmdline()):
                out.append(child)
        except psutil.NoSuchProcess:
            pass
    return out


def test_worker_processes_end_when_the_simulation_process_is_killed(
    shared_data: Path, tmp_path: Path
) -> None:
    """A killed notebook kernel or command must not leave workers training for minutes."""
    import os
    import signal
    import subprocess
    import sys
    import time

    import psutil

    script = tmp_path / "simulate.py"
    script.write_text(_KILLED_PARENT)
    parent = subprocess.Popen(
        [sys.executable, str(script), str(shared_data / "medmnist" / "breastmnist.npz")],
        cwd=Path(__file__).resolve().parents[2],
        env={**os.environ, "TMPDIR": str(tmp_path)},  # a killed run's work folder stays there
    )
    try:
        workers: list[psutil.Process] = []
        deadline = time.monotonic() + 120
        while len(workers) < 2 and time.monotonic() < deadline:
            time.sleep(0.5)
            assert parent.poll() is None, "the simulation ended before it was killed"
            workers = _spawned_workers(parent.pid)
        assert len(workers) == 2, "the two worker processes never started"
        time.sleep(5)  # let them get into training
        assert all(w.is_running() for w in workers)
    finally:
        os.kill(parent.pid, signal.SIGKILL)
        parent.wait()
    # a worker still importing torch when its parent died (a loaded machine) ends when it gets
    # to its initializer; one left running would train these curves for minutes
    gone, alive = psutil.wait_procs(workers, timeout=90)
    assert not alive, f"workers still running after their parent was killed: {alive}"


def test_ssl_init_starts_every_curve_and_the_reference_from_the_seeds_encoder(
    breast_tiny: SimulationData, tiny_recipe: ClassificationRecipe, tmp_path: Path
) -> None:
    """The first training of a curve is the one made by hand from the seed's pool encoder,
    and the report is the same with one process or two (which share the encoders on disk)."""
    from workbench.simulation._run import evaluate, pool_encoder

    config = SimulationConfig(
        strategies=("random",),
        seeds=(0, 1),
        initial=6,
        batch=5,
        rounds=1,
        ssl_init=True,
        contrastive_steps=10,
    )
    alone = simulate(breast_tiny, tiny_recipe, config)
    shared = simulate(breast_tiny, tiny_recipe, dataclasses.replace(config, workers=2))
    assert alone["config"]["ssl_init"] is True and alone["config"]["contrastive_steps"] == 10
    assert alone["strategies"] == shared["strategies"]
    assert alone["reference"] == shared["reference"]
    for run in runs_from_report(alone, "random"):
        trunk = pool_encoder(breast_tiny, run.seed, 10).trunk_state
        first = np.asarray(run.picks[0])
        by_hand = _train(
            tiny_recipe,
            breast_tiny,
            breast_tiny.pool_x[first],
            breast_tiny.pool_y[first],
            run.seed * 1000,
            tmp_path / str(run.seed),
            None,
            trunk,
        )
        assert evaluate(by_hand, breast_tiny) == run.curve[0].metrics
    reference = _train(
        tiny_recipe,
        breast_tiny,
        breast_tiny.pool_x,
        breast_tiny.pool_y,
        999,
        tmp_path / "ref",
        None,
        pool_encoder(breast_tiny, 0, 10).trunk_state,
    )
    assert alone["reference"]["per_seed"] == [evaluate(reference, breast_tiny)]
    without = simulate(breast_tiny, tiny_recipe, dataclasses.replace(config, ssl_init=False))
    assert "ssl_init" not in without["config"]
    assert without["reference"] != alone["reference"]


def test_ssl_init_starts_a_segmenter_from_its_restoration_pretrained_network(
    hippocampus_tiny: Path, tiny_seg_recipe: SegmentationRecipe, tmp_path: Path
) -> None:
    data = load_simulation_data(hippocampus_tiny, shape=(24, 32, 24))
    config = SimulationConfig(
        strategies=("random",),
        seeds=(0,),
        initial=2,
        batch=1,
        rounds=1,
        ssl_init=True,
        restoration_steps=3,
        encoder_cache=tmp_path / "cache",
    )
    with pytest.raises(ValueError, match="restoration_steps must be >= 1, got 0"):
        simulate(data, tiny_seg_recipe, dataclasses.replace(config, restoration_steps=0))
    report = simulate(data, tiny_seg_recipe, config)
    assert report["config"]["restoration_steps"] == 3
    assert "contrastive_steps" not in report["config"]  # no encoder: a random cold start
    (cached,) = (tmp_path / "cache").glob("restoration-*.pt")  # one per seed, shared
    state = pool_restoration(data, 0, tiny_seg_recipe.network, 3)
    assert torch.load(cached, weights_only=True).keys() == state.keys()
    (run,) = runs_from_report(report, "random")
    first = np.asarray(run.picks[0])
    by_hand = _train(
        tiny_seg_recipe,
        data,
        data.pool_x[first],
        data.pool_y[first],
        0,
        tmp_path / "by-hand",
        None,
        state,
    )
    assert evaluate(by_hand, data) == run.curve[0].metrics
    fresh = _train(
        tiny_seg_recipe, data, data.pool_x[first], data.pool_y[first], 0, tmp_path / "f", None
    )
    assert not torch.equal(
        next(iter(fresh.state_dict.values())), next(iter(by_hand.state_dict.values()))
    )


def test_a_process_keeps_only_the_newest_few_pool_encoders(breast_tiny: SimulationData) -> None:
    """A notebook that ran simulations does not hold every seed's features for good."""
    from workbench.simulation import _run

    _run._ENCODERS.clear()
    encoders = [_run.pool_encoder(breast_tiny, seed, 1) for seed in range(6)]
    assert len(_run._ENCODERS) == _run._KEPT_ENCODERS
    assert _run.pool_encoder(breast_tiny, 5, 1) is encoders[5]  # the newest, from memory
    again = _run.pool_encoder(breast_tiny, 0, 1)  # dropped: trained again, the same
    assert again is not encoders[0]
    np.testing.assert_array_equal(again.features, encoders[0].features)


def test_an_encoder_cache_lets_a_rerun_train_no_encoder(
    breast_tiny: SimulationData,
    tiny_recipe: ClassificationRecipe,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """With ``encoder_cache`` a second simulation on the same data (a fresh process's memory:
    the in-process encoders cleared) reads every seed's encoder from the folder, gives the
    same report, and a damaged file is trained again, with a warning, and replaced."""
    from workbench.simulation import _run

    trainings: list[int] = []
    real = _run.train_contrastive

    def counted(*args: Any, **kwargs: Any) -> Any:
        trainings.append(kwargs["seed"])
        return real(*args, **kwargs)

    monkeypatch.setattr(_run, "train_contrastive", counted)
    cache = tmp_path / "encoders"
    config = SimulationConfig(
        strategies=("random",),
        seeds=(0, 1),
        initial=6,
        batch=5,
        rounds=1,
        cold_start="typical",
        ssl_init=True,
        contrastive_steps=5,
        encoder_cache=cache,
        reference=False,
    )
    _run._ENCODERS.clear()
    first = simulate(breast_tiny, tiny_recipe, config)
    assert sorted(trainings) == [0, 1] and len(list(cache.glob("encoder-*.pt"))) == 2
    _run._ENCODERS.clear()
    again = simulate(breast_tiny, tiny_recipe, config)
    assert sorted(trainings) == [0, 1]  # none trained the second time
    assert again["strategies"] == first["strategies"]
    assert "encoder_cache" not in again["config"]  # where they are kept changes no result
    damaged = sorted(cache.glob("encoder-*.pt"))[0]
    damaged.write_bytes(b"not a checkpoint")
    _run._ENCODERS.clear()
    with pytest.warns(RuntimeWarning, match="cannot be read .* training it again"):
        third = simulate(breast_tiny, tiny_recipe, config)
    assert len(trainings) == 3 and third["strategies"] == first["strategies"]
    assert torch.load(damaged, weights_only=True)["features"].shape[0] == len(breast_tiny.pool_x)


def test_an_encoder_cache_that_is_a_file_is_refused_before_any_training(
    breast_tiny: SimulationData, tiny_recipe: ClassificationRecipe, tmp_path: Path
) -> None:
    a_file = tmp_path / "encoders"
    a_file.write_text("mine")
    config = SimulationConfig(
        strategies=("random",),
        seeds=(0,),
        initial=6,
        batch=5,
        rounds=1,
        ssl_init=True,
        encoder_cache=a_file,
    )
    with pytest.raises(ValueError, match="encoder_cache .*encoders cannot be a folder"):
        simulate(breast_tiny, tiny_recipe, config)
    assert a_file.read_text() == "mine"
