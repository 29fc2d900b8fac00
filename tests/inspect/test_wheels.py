"""Real cp313t wheels from PyPI, inspected member by member and checked by importing."""

from __future__ import annotations

import shutil
import subprocess
import zipfile
from pathlib import Path
from typing import Dict, List, Tuple

import pytest

from nogil_toolkit.inspect import EvidenceKind, ModuleInspection, Verdict, inspect_binary, inspect_bytes

from inspect_support import download_wheel, require

# For each pinned wheel (inspect_support.PINNED), every extension module's static verdict and
# whether a 3.13t import keeps the GIL off. The import decides the truth; the static verdict
# must be exactly the one listed, so a regression to UNKNOWN (or a new guess) fails.
# pydantic-core is PyO3 0.26 with the gil_used constant one helper deeper than PyInit: UNKNOWN.
N, U = Verdict.NOT_USED, Verdict.UNKNOWN
NUMPY_MODULES = ("_core._multiarray_tests", "_core._multiarray_umath", "_core._operand_flag_tests",
                 "_core._rational_tests", "_core._simd", "_core._struct_ufunc_tests", "_core._umath_tests",
                 "fft._pocketfft_umath", "linalg._umath_linalg", "linalg.lapack_lite", "random._bounded_integers",
                 "random._common", "random._generator", "random._mt19937", "random._pcg64", "random._philox",
                 "random._sfc64", "random.bit_generator", "random.mtrand")
# project -> (generator of its main extension or None for plain C, {module: (verdict, import keeps GIL off)})
FAST = {
    "markupsafe": (None, {"markupsafe._speedups": (N, True)}),
    "rpds-py": ("pyo3", {"rpds.rpds": (N, True)}),
    "frozenlist": ("cython", {"frozenlist._frozenlist": (N, True)}),
    "contourpy": ("pybind11", {"contourpy._contourpy": (N, True)}),
    "bcrypt": ("pyo3", {"bcrypt._bcrypt": (N, True)}),
    "pydantic-core": ("pyo3", {"pydantic_core._pydantic_core": (U, True)}),
}
SLOW = {"numpy": ("cython", {f"numpy.{name}": (N, True) for name in NUMPY_MODULES})}
# What each wheel needs at import time, installed beside it (also pinned).
DEPENDENCIES = {"contourpy": ["numpy"], "pydantic-core": ["typing-extensions"]}


def _members(wheel: Path) -> List[Tuple[str, ModuleInspection]]:
    with zipfile.ZipFile(wheel) as archive:
        return [(name, inspect_bytes(archive.read(name), name)) for name in archive.namelist()
                if name.endswith((".so", ".pyd")) or ".so." in name]


def _module_name(member: str) -> str:
    parts = member.split("/")
    return ".".join(parts[:-1] + [parts[-1].split(".", 1)[0]])


@pytest.fixture(scope="session")
def extracted(tmp_path_factory, ft_build_python):
    """Project -> directory its pinned wheel was installed into with its pinned dependencies.

    Modules are probed by importing their package as an application would, so the
    package's run-time dependencies (numpy for contourpy, ...) must be importable too.
    """
    cache: Dict[str, Path] = {}

    def install(project: str) -> Path:
        if project not in cache:
            target = tmp_path_factory.mktemp(project)
            wheels = [download_wheel(p) for p in [project, *DEPENDENCIES.get(project, [])]]
            result = subprocess.run([str(ft_build_python), "-m", "pip", "install", "-q", "--no-deps", "--no-index",
                                     "--target", str(target), *map(str, wheels)],
                                    capture_output=True, text=True, check=False, timeout=600)
            require(result.returncode == 0, f"cannot install {project}: {result.stderr[-300:]}")
            cache[project] = target
        return cache[project]
    return install


def _check_wheel(project: str, generator, expected, probe, extracted) -> None:
    wheel = download_wheel(project)
    root = extracted(project)
    modules = {_module_name(m): (m, r) for m, r in _members(wheel) if r.verdict is not Verdict.NOT_A_MODULE}
    assert sorted(modules) == sorted(expected), wheel.name
    if generator is not None:
        assert generator in {r.generator for _, r in modules.values()}
    for name, (member, report) in sorted(modules.items()):
        verdict, keeps_gil_off = expected[name]
        assert report.verdict is verdict, (member, report)
        assert report.verdict is not Verdict.UNKNOWN or report.reason
        declared = probe(root / member, name, [str(root)]).declared_not_used(name)
        assert declared is keeps_gil_off, (member, declared)


@pytest.mark.parametrize("project", sorted(FAST))
def test_wheel_agrees_with_import(project, probe, extracted):
    _check_wheel(project, *FAST[project], probe, extracted)


@pytest.mark.slow
@pytest.mark.parametrize("project", sorted(SLOW))
def test_big_wheel_agrees_with_import(project, probe, extracted):
    _check_wheel(project, *SLOW[project], probe, extracted)


def test_numpy_side_libraries_are_not_modules():
    libraries = [r for m, r in _members(download_wheel("numpy")) if "numpy.libs/" in m]
    assert libraries and all(r.verdict is Verdict.NOT_A_MODULE for r in libraries)


@pytest.mark.parametrize("project", ["markupsafe", "rpds-py"])
@pytest.mark.parametrize("platform, fmt, machine", [
    ("manylinux_2_28_aarch64", "elf", "aarch64"),
    ("win_amd64", "pe", "x86_64"),
    ("macosx_11_0_arm64", "macho", "arm64"),
    ("macosx_10_13_x86_64", "macho", "x86_64"),
])
def test_other_platforms_match_linux_x86_64(project, platform, fmt, machine):
    """The same release built for another platform declares the same thing.

    These binaries cannot be imported here, so the x86-64 Linux verdict (confirmed by import
    above) is the reference. Slot arrays are verified through each format's own fix-ups:
    RELA on aarch64, base relocations on Windows, rebase opcodes on macOS.
    """
    expected = FAST[project][1]
    found = {_module_name(m): r for m, r in _members(download_wheel(project, platform))
             if r.verdict is not Verdict.NOT_A_MODULE}
    assert found.keys() == expected.keys()
    for name, report in found.items():
        assert (report.format, report.machine) == (fmt, machine)
        assert report.init_symbols == (f"PyInit_{name.rsplit('.', 1)[-1]}",)
        assert report.verdict is expected[name][0], report


def test_pybind11_3_modules_are_decided_on_x86_64():
    """contourpy 1.3.3 is built with pybind11 3: its slot array only exists at run time, and
    the inspector reads the declaration from the stores in PyInit (import-checked above)."""
    wheel = download_wheel("contourpy")
    reports = [r for _, r in _members(wheel) if r.generator == "pybind11"]
    assert reports and all(r.verdict is Verdict.NOT_USED for r in reports), reports


def test_pybind11_3_modules_stay_unknown_on_aarch64():
    """No rule reads aarch64 code: the run-time slot array stays UNKNOWN there, with a reason."""
    wheel = download_wheel("contourpy", "manylinux_2_28_aarch64")
    reports = [r for _, r in _members(wheel) if r.generator == "pybind11"]
    assert reports and all(r.verdict is Verdict.UNKNOWN and "x86-64" in (r.reason or "") for r in reports), reports


def test_pyo3_gil_used_constant_is_read_only_in_pyinit_itself():
    """bcrypt 5.0.0 (PyO3 0.26) passes gil_used=false to make_module in PyInit__bcrypt itself;
    pydantic-core 2.41.4 (PyO3 0.26) does it one helper deeper, so it stays UNKNOWN, saying why."""
    (_, bcrypt), = _members(download_wheel("bcrypt"))
    assert bcrypt.verdict is Verdict.NOT_USED and bcrypt.evidence[0].kind is EvidenceKind.INIT_CODE, bcrypt
    (_, pydantic), = _members(download_wheel("pydantic-core"))
    assert pydantic.verdict is Verdict.UNKNOWN and "PyInit__pydantic_core" in (pydantic.reason or ""), pydantic


@pytest.mark.parametrize("setter, verdict, keeps_gil_off", [
    (b"\xb2\x01", Verdict.USED, False),  # mov $1, %dl: gil_used = true
    (b"\x89\xda", Verdict.UNKNOWN, None),  # mov %ebx, %edx: not a constant, nothing to confirm
])
def test_pyo3_gil_used_constant_patched(setter, verdict, keeps_gil_off, probe, extracted, tmp_path):
    """bcrypt's ``xor %edx,%edx`` replaced in place: the verdict follows the bytes, and a 3.13t
    import of the patched module agrees."""
    root = tmp_path / "site"
    shutil.copytree(extracted("bcrypt"), root)
    (member, report), = _members(download_wheel("bcrypt"))
    offset = report.evidence[0].offset
    path = root / member
    data = bytearray(path.read_bytes())
    assert data[offset:offset + 2] == b"\x31\xd2"
    data[offset:offset + 2] = setter
    path.write_bytes(bytes(data))
    patched = inspect_binary(path)
    assert patched.verdict is verdict, patched
    if keeps_gil_off is not None:
        assert probe(path, "bcrypt._bcrypt", [str(root)]).declared_not_used("bcrypt._bcrypt") is keeps_gil_off
