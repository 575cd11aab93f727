"""Security-relevant dependencies are installed at or above the floors pyproject.toml declares.

pip honours the floors at install time, but a venv built earlier, a Docker layer or a
``pip install mlflow==<old>`` later can hold a release with known advisories (the comments beside
the floors in ``pyproject.toml`` name them); this test makes CI fail on such an environment.
"""

from __future__ import annotations

import importlib.metadata as md

import pytest

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10 (requires-python): pytest's own TOML dependency
    import tomli as tomllib  # type: ignore[no-redef]
from conftest import ROOT
from packaging.requirements import Requirement
from packaging.version import Version

SECURITY_RELEVANT = ("mlflow", "ray")  # servers and deserialisers that hold our runs and models


def floors(pyproject: str) -> dict[str, Version]:
    """``{package: lowest allowed version}`` of the ``>=`` requirements in a pyproject text."""
    out = {}
    for line in tomllib.loads(pyproject)["project"]["dependencies"]:
        req = Requirement(line)
        lows = [Version(s.version) for s in req.specifier if s.operator in (">=", "==", "~=")]
        if lows:
            out[req.name.lower()] = max(lows)
    return out


def below_floor(installed: dict[str, str], required: dict[str, Version]) -> list[str]:
    """The packages whose installed version is below its floor, as ``name installed < floor``."""
    return [
        f"{name} {installed[name]} < {required[name]}"
        for name in SECURITY_RELEVANT
        if Version(installed[name]) < required[name]
    ]


def test_security_relevant_dependencies_are_at_or_above_their_floor():
    required = floors((ROOT / "pyproject.toml").read_text())
    assert set(SECURITY_RELEVANT) <= set(required), "every security-relevant package has a floor"
    installed = {name: md.version(name) for name in SECURITY_RELEVANT}
    assert not below_floor(installed, required), (
        f"installed below the security floor in pyproject.toml: {below_floor(installed, required)}"
        "; upgrade them (pip install -U mlflow ray)"
    )


@pytest.mark.parametrize(
    ("installed", "bad"),
    [({"mlflow": "2.12.0", "ray": "2.60.0"}, ["mlflow 2.12.0 < 3.13"]),
     ({"mlflow": "3.17.2", "ray": "2.54.1"}, ["ray 2.54.1 < 2.55"]),
     ({"mlflow": "3.13.0", "ray": "2.55.0"}, [])],
)  # fmt: skip
def test_the_floor_check_catches_an_old_release(installed, bad):
    """The comparison itself: an old mlflow or ray is caught, the floor release passes."""
    required = floors((ROOT / "pyproject.toml").read_text())
    assert required["mlflow"] >= Version("2.22.4"), "GHSA-5cvj-7rg6-jggj is fixed in 2.22.4"
    assert below_floor(installed, required) == bad
