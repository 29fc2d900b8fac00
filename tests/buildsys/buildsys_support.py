"""Helpers of the meson and CMake integration tests: isolated builds that can keep their build
directory, and what a built module exports and declares (read with pyelftools)."""

from __future__ import annotations

import json
import shutil
import zipfile
from pathlib import Path
from typing import Optional

from elftools.elf.elffile import ELFFile
from wheel.wheelfile import WheelFile

from nogil_toolkit.declaration import GilDeclaration
from nogil_toolkit.marker import ELF_SECTION, iter_markers
from nogil_toolkit.wheel.record import RECORD_NAME
from hook_support import HOOK_SAMPLE
from support import REPO, clean_env, run


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


# The hook315 sample (tests/samples/hook315) as a meson and a CMake project: the build files
# are written around its sources, so the C exists once.
HOOK_MODULES = ("_both", "_only", "_plain")
HOOKS = ("_both", "_only")
PYPROJECT_TAIL = "\n[project]\nname = \"h315\"\nversion = \"1.0\"\n\n[tool.nogil]\nthread-safe = true\n"
MESON_REQUIRES = '["nogil-meson", "meson-python==0.22.1", "meson==1.12.1", "ninja==1.13.2"]'
CMAKE_REQUIRES = '["scikit-build-core==1.1.2", "cmake==4.4.5", "ninja==1.13.2", "nogil-cmake"]'


def hook_sources(project: Path) -> None:
    """The sample's C files and compatibility header, as package ``h315``."""
    (project / "src" / "h315").mkdir(parents=True)
    for path in (HOOK_SAMPLE / "src" / "hook315").iterdir():
        shutil.copy(path, project / "src" / "h315" / path.name)


def meson_hook_project(root: Path, hooks: tuple[str, ...]) -> Path:
    """The sample as a meson-python project whose setup block lists ``hooks`` in nogil_export_hooks."""
    project = root / "meson_hook"
    hook_sources(project)
    (project / "pyproject.toml").write_text(
        f'[build-system]\nrequires = {MESON_REQUIRES}\nbuild-backend = "nogil_meson"\n{PYPROJECT_TAIL}')
    block = (REPO / "templates" / "nogil_meson_setup.build").read_text()
    block = block.replace("nogil_modules = ['pkg._speedups', 'pkg.legacy._old']",
                          f"nogil_modules = {[f'h315.{m}' for m in HOOK_MODULES]!r}")
    block = block.replace("nogil_export_hooks = []", f"nogil_export_hooks = {[f'h315.{m}' for m in hooks]!r}")
    extensions = "".join(
        f"py.extension_module('{m}', 'src/h315/{m}.c', subdir: 'h315', install: true,\n"
        f"  dependencies: nogil['h315.{m}'])\n" for m in HOOK_MODULES)
    # Every C file, the generated shims included, sees the 3.15 names, as with 3.15's headers.
    (project / "meson.build").write_text(
        "project('h315', 'c', version: '1.0')\npy = import('python').find_installation(pure: false)\n"
        "add_project_arguments('-include', meson.current_source_dir() / 'src/h315/py315_compat.h', "
        "language: 'c')\n"
        f"{block}\npy.install_sources('src/h315/__init__.py', subdir: 'h315')\n{extensions}")
    return project


def cmake_hook_project(root: Path, hooks: tuple[str, ...] = HOOKS) -> Path:
    """The sample as a scikit-build-core project, nogil_declare(... EXPORT_HOOK) on each of ``hooks``."""
    project = root / "cmake_hook"
    hook_sources(project)
    (project / "pyproject.toml").write_text(
        f'[build-system]\nrequires = {CMAKE_REQUIRES}\nbuild-backend = "scikit_build_core.build"\n'
        f'{PYPROJECT_TAIL}\n[tool.scikit-build]\nwheel.packages = ["src/h315"]\n')
    targets = "".join(
        f"python_add_library({m} MODULE src/h315/{m}.c WITH_SOABI)\n"
        f"nogil_declare({m} h315.{m}{' EXPORT_HOOK' if m in hooks else ''})\n" for m in HOOK_MODULES)
    (project / "CMakeLists.txt").write_text(
        "cmake_minimum_required(VERSION 3.19)\nproject(h315 LANGUAGES C)\n"
        "find_package(Python REQUIRED COMPONENTS Interpreter Development.Module)\ninclude(NogilToolkit)\n"
        "add_compile_options(-include ${CMAKE_CURRENT_SOURCE_DIR}/src/h315/py315_compat.h)\n"
        f"{targets}install(TARGETS {' '.join(HOOK_MODULES)} DESTINATION h315)\n")
    return project


def built_modules(wheel: Path, out: Path) -> dict[str, Path]:
    """The extension modules of ``wheel``, unpacked under ``out``: short name -> file."""
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(out)
    return {path.name.partition(".")[0]: path for path in (out / "h315").glob("*.so")}
