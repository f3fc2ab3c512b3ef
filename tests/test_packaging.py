"""The conda environment and pyproject.toml install the same thing; the package is importable."""

from __future__ import annotations

from pathlib import Path

import tomllib
import yaml

ROOT = Path(__file__).resolve().parents[1]


def _pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def test_environment_yml_installs_the_pyproject_package_with_all_its_extras() -> None:
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip_lines = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d)
    editable = [line for line in pip_lines if line.startswith("-e .")]
    assert len(editable) == 1, "environment.yml must install this project with pip -e ."
    extras = set(editable[0].split("[", 1)[1].rstrip("]").split(","))
    assert extras == set(_pyproject()["project"]["optional-dependencies"]), (
        "environment.yml must install every extra that pyproject.toml declares"
    )
    python_pin = next(
        d for d in env["dependencies"] if isinstance(d, str) and d.startswith("python")
    )
    required = _pyproject()["project"]["requires-python"].removeprefix(">=")
    assert tuple(map(int, python_pin.split("=")[1].split("."))) >= tuple(
        map(int, required.split("."))
    )


def test_environment_yml_pins_the_same_torch_as_the_setup_script() -> None:
    env_text = (ROOT / "environment.yml").read_text()
    setup_text = (ROOT / ".ci" / "setup").read_text()
    pin = next(line.split("==")[1] for line in env_text.splitlines() if "torch==" in line)
    assert f"WORKBENCH_TORCH_VERSION:-{pin}" in setup_text


def test_console_script_points_at_an_existing_function() -> None:
    target = _pyproject()["project"]["scripts"]["workbench"]
    module_name, func_name = target.split(":")
    module = __import__(module_name, fromlist=[func_name])
    assert callable(getattr(module, func_name))
