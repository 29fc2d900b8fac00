"""Fixtures of the meson and CMake integration tests: the build plugins' wheels beside the
toolkit's, and builds that keep their build directory so the generated shims can be compared."""

from __future__ import annotations

from pathlib import Path

import pytest
from buildsys_support import HOOKS, built_modules, cmake_hook_project, meson_hook_project, pip_wheel

from support import SAMPLES, build_plugins, gil_python, make_venv, own_wheels, run


@pytest.fixture(scope="session")
def plugin_wheelhouse(wheelhouse: Path) -> Path:
    """The session's wheelhouse with nogil-meson and nogil-cmake added, for isolated builds."""
    return own_wheels(build_plugins(), wheelhouse)


@pytest.fixture(scope="session")
def gil312_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A venv of a GIL CPython 3.12: a missing interpreter fails, it is not skipped."""
    python = gil_python(12)
    assert python is not None, "no GIL build of CPython 3.12 on PATH or in pyenv"
    return make_venv(python, tmp_path_factory.mktemp("gil312") / "venv")


def ft_build(ft_venv: Path, sample: Path, wheelhouse: Path, out: Path) -> tuple[Path, Path]:
    """``sample`` built on the free-threaded interpreter and installed into ``ft_venv``:
    the wheel and the kept build directory."""
    wheel, _ = pip_wheel(ft_venv, sample, out, wheelhouse, build_dir=out / "build")
    assert wheel is not None
    run([ft_venv, "-m", "pip", "install", "--force-reinstall", "--no-deps", wheel])
    return wheel, out / "build"


@pytest.fixture(scope="session")
def meson_ft(ft_venv: Path, plugin_wheelhouse: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return ft_build(ft_venv, SAMPLES / "meson_spine", plugin_wheelhouse, tmp_path_factory.mktemp("meson-ft"))


@pytest.fixture(scope="session")
def cmake_ft(ft_venv: Path, plugin_wheelhouse: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return ft_build(ft_venv, SAMPLES / "cmake_spine", plugin_wheelhouse, tmp_path_factory.mktemp("cmake-ft"))


@pytest.fixture(scope="session", params=["meson", "cmake"])
def hook_build(request: pytest.FixtureRequest, ft_venv: Path, plugin_wheelhouse: Path,
               tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Path], Path]:
    """The hook315 sample built by meson and by CMake on the free-threaded interpreter: its
    modules, and the build directory (with the generated shims)."""
    root = tmp_path_factory.mktemp(f"{request.param}-hook")
    project = meson_hook_project(root, HOOKS) if request.param == "meson" else cmake_hook_project(root)
    wheel, output = pip_wheel(ft_venv, project, root / "out", plugin_wheelhouse, build_dir=root / "build")
    assert wheel is not None, output
    return built_modules(wheel, root / "unpacked"), root / "build"
