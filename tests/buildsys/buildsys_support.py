"""Helpers of the meson and CMake integration tests: isolated builds that can keep their build
directory, and what a built module exports and declares (read with pyelftools)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Optional

from elftools.elf.elffile import ELFFile
from wheel.wheelfile import WheelFile

from nogil_toolkit.declaration import GilDeclaration
from nogil_toolkit.marker import ELF_SECTION, iter_markers
from nogil_toolkit.wheel.record import RECORD_NAME
from support import clean_env, run


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
