"""Session fixtures for the inspector: real binaries built once, and an import probe.

Everything here builds or downloads real artefacts (gcc, Cython, pybind11, PyPI wheels) so
that each static verdict can be checked against what a free-threaded interpreter does when
it actually imports the module.
"""

from __future__ import annotations

import shutil
import subprocess
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List

import pytest
from inspect_support import CACHE, PINNED_GENERATORS, ProbeResult, probe_import, require, without_section_headers
from support import gil_python

HERE = Path(__file__).parent
CSRC = HERE / "csrc"


@pytest.fixture(scope="session")
def gil_313_include() -> str:
    """Headers of a GIL build of CPython 3.13 (found on PATH, like the other GIL builds)."""
    python = gil_python(13)
    require(python is not None, "no GIL build of CPython 3.13 (python3.13) found")
    assert python is not None
    out = subprocess.run([python, "-I", "-c", "import sysconfig; print(sysconfig.get_path('include'))"],
                         capture_output=True, text=True, check=True)
    include = Path(out.stdout.strip())
    require((include / "Python.h").exists(), f"{python} has no headers at {include}")
    return str(include)


@pytest.fixture(scope="session")
def ft_include(ft_python: str) -> str:
    out = subprocess.run([ft_python, "-I", "-c", "import sysconfig; print(sysconfig.get_path('include'))"],
                         capture_output=True, text=True, check=True)
    return out.stdout.strip()


@pytest.fixture(scope="session")
def ft_ext_suffix(ft_python: str) -> str:
    out = subprocess.run([ft_python, "-I", "-c", "import sysconfig; print(sysconfig.get_config_var('EXT_SUFFIX'))"],
                         capture_output=True, text=True, check=True)
    return out.stdout.strip()


@pytest.fixture(scope="session")
def probe(ft_python: str):
    def run(path: Path, name: str, extra_paths: List[str] = ()) -> ProbeResult:
        return probe_import(ft_python, path, name, list(extra_paths))
    return run


# -- C fixtures -------------------------------------------------------------------------------


@dataclass(frozen=True)
class BuiltModule:
    path: Path
    name: str
    """Importable module name (what PyInit_<name> says)."""
    importable: bool
    """Built against the free-threaded headers, so the 3.13t probe can import it."""


def _gcc(args: List[str]) -> None:
    result = subprocess.run(["gcc", *args], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"gcc {' '.join(args)} failed:\n{result.stderr}")


def _build_c(out_dir: Path, source: str, name: str, include: str, suffix: str, *,
             defines: List[str] = (), opt: str = "-O2", link: List[str] = ()) -> Path:
    target = out_dir / f"{name}{suffix}"
    _gcc([opt, "-fPIC", "-shared", "-fvisibility=hidden", f"-I{include}", f"-DMODNAME_STR=\"{name}\"",
          f"-DPYINIT=PyInit_{name}", *(f"-D{d}" for d in defines), str(CSRC / source), "-o", str(target),
          *link])
    return target


@pytest.fixture(scope="session")
def c_modules(tmp_path_factory, ft_include: str, ft_ext_suffix: str, gil_313_include: str) -> Dict[str, BuiltModule]:
    """Every C fixture, keyed by a short label; ``*_gil`` ones use the GIL 3.13 headers."""
    require(shutil.which("gcc") is not None, "gcc is needed to build fixtures")
    out = tmp_path_factory.mktemp("cmods")
    built: Dict[str, BuiltModule] = {}

    def add(label: str, source: str, name: str, include: str = ft_include, suffix: str = ft_ext_suffix,
            importable: bool = True, **kwargs) -> None:
        directory = out / label
        directory.mkdir()
        path = _build_c(directory, source, name, include, suffix, **kwargs)
        built[label] = BuiltModule(path, name, importable)

    add("multi_not_used", "multiphase.c", "multi_not_used", defines=["GIL_NOT_USED"])
    add("multi_used", "multiphase.c", "multi_used", defines=["GIL_USED"])
    add("multi_none", "multiphase.c", "multi_none")
    add("multi_not_used_O0", "multiphase.c", "multi_not_used_o0", defines=["GIL_NOT_USED"], opt="-O0")
    add("multi_not_used_O3", "multiphase.c", "multi_not_used_o3", defines=["GIL_NOT_USED"], opt="-O3")
    add("multi_not_used_relr", "multiphase.c", "multi_relr", defines=["GIL_NOT_USED"],
        link=["-Wl,-z,pack-relative-relocs"])
    add("multi_none_relr", "multiphase.c", "multi_none_relr", link=["-Wl,-z,pack-relative-relocs"])
    add("const_slots", "constslots.c", "const_slots")
    add("single_setgil", "singlephase.c", "single_setgil", defines=["DECLARE"])
    add("single_setgil_O0", "singlephase.c", "single_setgil_o0", defines=["DECLARE"], opt="-O0")
    add("single_plain", "singlephase.c", "single_plain")
    add("decoy", "decoy.c", "decoy")
    add("marker", "marker.c", "marker_mod")
    add("plainlib", "plainlib.c", "plainlib", suffix=".so", importable=False)
    add("multi_null_slots", "nullslots.c", "multi_null_slots")
    add("multi_null_slots_dotted", "nullslots.c", "multi_null_dotted", defines=['M_NAME="pkg.multi_null_dotted"'])
    add("multi_null_slots_O0", "nullslots.c", "multi_null_slots_o0", defines=["WITH_METHODS"], opt="-O0")
    add("multi_null_slots_O3", "nullslots.c", "multi_null_slots_o3", defines=["WITH_METHODS"], opt="-O3")
    add("patched_in_init", "patchedslots.c", "patched_in_init", defines=["PATCH_IN_INIT"])
    add("patched_elsewhere", "patchedslots.c", "patched_elsewhere")
    def add_without_section_headers(label: str) -> None:
        """The module as ``sstrip`` leaves it: no section header table, cut after the last segment."""
        src = built[label]
        directory = out / f"{label}_no_sections"
        directory.mkdir()
        target = directory / src.path.name
        target.write_bytes(without_section_headers(src.path.read_bytes()))
        built[f"{label}_no_sections"] = BuiltModule(target, src.name, src.importable)

    for label in ("multi_not_used", "multi_none", "single_setgil", "multi_not_used_O3", "multi_null_slots"):
        src = built[label]
        stripped = out / f"{label}_stripped"
        stripped.mkdir()
        target = stripped / src.path.name
        subprocess.run(["strip", "--strip-all", "-o", str(target), str(src.path)], check=True)
        built[f"{label}_stripped"] = BuiltModule(target, src.name, src.importable)
    for label, source, defines in (("gil_multi_not_used", "multiphase.c", ["GIL_NOT_USED"]),
                                   ("gil_multi_none", "multiphase.c", []),
                                   ("gil_single_setgil", "singlephase.c", ["DECLARE"])):
        add(label, source, label, include=gil_313_include, suffix=".cpython-313-x86_64-linux-gnu.so",
            importable=False, defines=defines)
    for label, defines in (("empty_slots", []), ("empty_slots_const", ["CONST"]),
                           ("empty_slots_filled", ["FILL_IN_INIT"])):
        add(label, "emptyslots.c", label, defines=defines)
    for label in ("multi_not_used", "multi_none", "single_setgil", "multi_null_slots", "empty_slots", "marker"):
        add_without_section_headers(label)
    return built


@pytest.fixture(scope="session")
def fake32_modules(tmp_path_factory) -> Dict[str, Path]:
    """32-bit i386 imitations of multi-phase modules, linked without any 32-bit libc."""
    out = tmp_path_factory.mktemp("fake32")
    built = {}
    for label, value in (("not_used", "(void*)1"), ("used", "(void*)0")):
        obj = out / f"{label}.o"
        so = out / f"fake32_{label}.so"
        result = subprocess.run(["gcc", "-m32", "-O2", "-fPIC", "-ffreestanding", "-nostdinc", "-c",
                                 f"-DGIL_VALUE={value}", str(CSRC / "fake32.c"), "-o", str(obj)],
                                capture_output=True, text=True, check=False)
        # Freestanding (-nostdinc, no libc): the stock x86-64 gcc emits i386 objects without
        # gcc-multilib, so nothing here needs provisioning beyond gcc and binutils.
        assert result.returncode == 0, f"gcc -m32 failed: {result.stderr[-500:]}"
        subprocess.run(["ld", "-m", "elf_i386", "-shared", "-o", str(so), str(obj)], check=True)
        built[label] = so
    return built


# -- a free-threaded build environment (Cython, pybind11) -------------------------------------


@pytest.fixture(scope="session")
def ft_build_python(ft_python: str) -> Path:
    """The interpreter of a cached 3.13t venv with the pinned generators (Cython, pybind11)."""
    root = CACHE / "ft-venv"
    python = root / "bin" / "python"
    stamp = root / "installed.txt"
    wanted = " ".join(PINNED_GENERATORS)
    if not (python.exists() and stamp.exists() and stamp.read_text() == f"{ft_python}\n{wanted}"):
        if root.exists():
            shutil.rmtree(root)
        subprocess.run([ft_python, "-m", "venv", str(root)], check=True)
        result = subprocess.run([str(python), "-m", "pip", "install", "-q", *wanted.split()],
                                capture_output=True, text=True, check=False, timeout=600)
        require(result.returncode == 0, f"pip install into the 3.13t venv failed: {result.stderr[-300:]}")
        stamp.write_text(f"{ft_python}\n{wanted}")
    return python


@pytest.fixture(scope="session")
def pybind11_213_include(ft_build_python: Path) -> str:
    """Headers of pybind11 2.13 (single-phase init with a run-time SetGIL flag)."""
    target = CACHE / "pybind11-2.13"
    include = target / "pybind11" / "include"
    if not include.exists():
        result = subprocess.run([str(ft_build_python), "-m", "pip", "install", "-q", "--no-deps",
                                 "--target", str(target),
                                 "pybind11==2.13.6"], capture_output=True, text=True, check=False, timeout=300)
        require(result.returncode == 0, f"cannot install pybind11 2.13: {result.stderr[-300:]}")
    return str(include)


def _build_with_setuptools(python: Path, directory: Path, setup_py: str, sources: Dict[str, str], name: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "setup.py").write_text(textwrap.dedent(setup_py))
    for filename, text in sources.items():
        (directory / filename).write_text(textwrap.dedent(text))
    result = subprocess.run([str(python), "setup.py", "-q", "build_ext", "--inplace"], cwd=directory,
                            capture_output=True, text=True, check=False, timeout=600)
    if result.returncode != 0:
        raise RuntimeError(f"build in {directory} failed:\n{result.stdout[-2000:]}\n{result.stderr[-3000:]}")
    matches = sorted(directory.glob(f"{name}.*.so"))
    assert matches, f"no {name} extension in {directory}"
    return matches[0]


@pytest.fixture(scope="session")
def setuptools_build():
    """``build(python, directory, setup_py, sources, name) -> extension path``."""
    return _build_with_setuptools
