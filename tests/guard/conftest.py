"""Session fixtures of the runtime guard's tests."""

from __future__ import annotations

from pathlib import Path

import pytest
from guard_support import DECLARED, UNDECLARED, Modules, build_module


@pytest.fixture(scope="session")
def guard_modules(ft_python: str, ft_abi: tuple[str, str], tmp_path_factory: pytest.TempPathFactory) -> Modules:
    """The C fixtures, built once: four declared modules and five that declare nothing."""
    folder = tmp_path_factory.mktemp("guard-modules")
    for name in DECLARED + UNDECLARED:
        build_module(ft_python, name, folder, ft_abi[1], declare=name in DECLARED)
    return Modules(folder, ft_abi[1])


@pytest.fixture()
def cache(tmp_path: Path) -> Path:
    """A fresh verdict cache: every test starts cold."""
    return tmp_path / "cache"
