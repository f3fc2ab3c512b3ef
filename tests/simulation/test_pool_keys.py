"""Each pool position of a simulation is named by what it is in its source, so a report's
picks can be traced back to the cases."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from workbench.cli import main
from workbench.io import read_label
from workbench.simulation import SimulationData, load_simulation_data
from workbench.simulation._data import _pad_crop
from workbench.store import open_project

pytestmark = pytest.mark.shared_data


def test_npz_pool_keys_name_the_train_images(
    shared_data: Path, breast_tiny: SimulationData
) -> None:
    with np.load(shared_data / "medmnist" / "breastmnist.npz") as z:
        train = z["train_images"]
    assert len(breast_tiny.pool_keys) == len(breast_tiny.pool_x) == 60
    assert breast_tiny.describe()["pool_keys"] == list(breast_tiny.pool_keys)
    for key, image in zip(breast_tiny.pool_keys, breast_tiny.pool_x, strict=True):
        assert key.startswith("train[") and key.endswith("]")
        np.testing.assert_array_equal(train[int(key[6:-1])], image)


def test_folder_pool_keys_are_the_image_paths(hippocampus_tiny: Path) -> None:
    data = load_simulation_data(hippocampus_tiny, shape=(24, 32, 24))
    assert len(data.pool_keys) == len(data.pool_x) == len(set(data.pool_keys))
    for key, mask in zip(data.pool_keys, data.pool_y, strict=True):
        assert key.startswith("imagesTr/") and (hippocampus_tiny / key).is_file()
        label = hippocampus_tiny / "labelsTr" / Path(key).name
        np.testing.assert_array_equal(
            _pad_crop(np.asarray(read_label(str(label))).astype(np.uint8), mask.shape), mask
        )


def test_project_pool_keys_are_the_item_keys(tmp_path: Path) -> None:
    demo = Path(__file__).resolve().parents[2] / "workbench/demo_data/breastmnist/breastmnist.npz"
    project = tmp_path / "breast"
    assert (
        main(["init", str(project), "--task", "classification", "--classes", "malignant", "benign"])
        == 0
    )
    assert main(["import", str(project), str(demo), "--labels-as-ground-truth"]) == 0
    data = load_simulation_data(project, max_pool=50, max_val=10, max_test=10)
    with open_project(project) as store:
        train = {item.key for item in store.list_items(split="train")}
        truth = {
            store.get_item(v.item_id).key: v.class_index
            for v in store.current_labels(include_ground_truth=True)
        }
    assert len(data.pool_keys) == 50 and set(data.pool_keys) <= train
    assert [truth[key] for key in data.pool_keys] == data.pool_y.tolist()
