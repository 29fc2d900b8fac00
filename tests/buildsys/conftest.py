"""Fixtures of the meson and CMake integration tests: the build plugins' wheels beside the
toolkit's, and builds that keep their build directory so the generated shims can be compared."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path
from typing import Optional

import pytest
from elftools.elf.elffile import ELFFile
from wheel.wheelfile import WheelFile

from nogil_toolkit.declaration import GilDeclaration
from nogil_toolkit.marker import ELF_SECTION, iter_markers
from nogil_toolkit.wheel.record import RECORD_NAME
from support import REPO, SAMPLES, clean_env, gil_python, make_venv, run

BUILD_PLUGINS = REPO / "build_plugins"


@pytest.fixture(scope="session")
def plugin_wheelhouse(wheelhouse: Path) -> Path:
    """The session's wheelhouse with nogil-meson and nogil-cmake added, for isolated builds."""
    run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-w", wheelhouse,
         *sorted(p for p in BUILD_PLUGINS.iterdir() if (p / "pyproject.toml").exists())])
    return wheelhouse


def pip_wheel(python: Path, project: Path, out: Path, wheelhouse: Path, build_dir: Optional[Path] = None,
              check: bool = True) -> tuple[Optional[Path], str]:
    """``pip wheel`` a copy of ``project`` with build isolation; ``build_dir`` keeps the backend's
    build directory (meson-python and scikit-build-core both take ``-C build-dir=``).

    Returns the wheel (None if the build failed and ``check`` is false) and pip's output."""
    source = out / f"src-{project.name}"
    shutil.rmtree(source, ignore_errors=True)
    shutil.copytree(project, source)
    settings = ["-C", f"build-dir={build_dir}"] if build_dir is not None else []
    result = run([python, "-m", "pip", "wheel", "--no-deps", "--find-links", wheelhouse, "-w", out / "dist",
                  *settings, source], env=clean_env(), check=check, timeout=1200)
    wheels = sorted((out / "dist").glob("*.whl"))
    return (wheels[-1] if wheels else None), result.stdout + result.stderr


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


def installed_extension(venv_python: Path, module: str) -> Path:
    site = next(venv_python.parent.parent.glob("lib/python*/site-packages"))
    package, _, name = module.rpartition(".")
    (found,) = (site / package.replace(".", "/")).glob(f"{name}.cpython-*.so")
    return found


def exports_and_markers(path: Path) -> tuple[set[str], list[tuple[str, GilDeclaration]]]:
    """The dynamic symbols ``path`` exports, and the toolkit markers in its own section (pyelftools)."""
    with path.open("rb") as stream:
        elf = ELFFile(stream)
        exported = {s.name for s in elf.get_section_by_name(".dynsym").iter_symbols()
                    if s["st_shndx"] != "SHN_UNDEF" and s["st_info"]["bind"] != "STB_LOCAL"}
        section = elf.get_section_by_name(ELF_SECTION)
        markers = [(m.module, m.declaration) for m in iter_markers(section.data())] if section is not None else []
    return exported, markers


def wheel_record(wheel: Path) -> tuple[dict[str, object], str]:
    """The wheel's declaration record and its RECORD text (WheelFile checks every hash it reads)."""
    with WheelFile(wheel) as archive:
        record = json.loads(archive.read(f"{archive.dist_info_path}/{RECORD_NAME}"))
        listed = archive.read(archive.record_path).decode()
    return record, listed
