"""Real cp313t wheels from PyPI, inspected member by member and checked by importing."""

from __future__ import annotations

import subprocess
import zipfile
from pathlib import Path
from typing import Dict, List, Tuple

import pytest

from nogil_toolkit.inspect import ModuleInspection, Verdict, inspect_bytes

from inspect_support import download_wheel, require

# project -> generator the inspector should recognise in its main extension (None: plain C)
FAST = {"markupsafe": None, "rpds-py": "pyo3", "frozenlist": "cython", "contourpy": "pybind11"}
SLOW = {"numpy": "cython", "pydantic-core": "pyo3"}


def _members(wheel: Path) -> List[Tuple[str, ModuleInspection]]:
    with zipfile.ZipFile(wheel) as archive:
        return [(name, inspect_bytes(archive.read(name), name)) for name in archive.namelist()
                if name.endswith((".so", ".pyd")) or ".so." in name]


def _module_name(member: str) -> str:
    parts = member.split("/")
    return ".".join(parts[:-1] + [parts[-1].split(".", 1)[0]])


@pytest.fixture(scope="session")
def extracted(tmp_path_factory, ft_build_python):
    """Wheel -> directory it was installed into with its dependencies (for import probes).

    Modules are probed by importing their package as an application would, so the
    package's run-time dependencies (numpy for contourpy, ...) must be importable too.
    """
    cache: Dict[Path, Path] = {}

    def install(wheel: Path) -> Path:
        if wheel not in cache:
            target = tmp_path_factory.mktemp(wheel.name.split("-")[0])
            result = subprocess.run([str(ft_build_python), "-m", "pip", "install", "-q", "--only-binary=:all:",
                                     "--target", str(target), str(wheel)],
                                    capture_output=True, text=True, check=False, timeout=600)
            require(result.returncode == 0, f"cannot install {wheel.name}: {result.stderr[-300:]}")
            cache[wheel] = target
        return cache[wheel]
    return install


def _check_wheel(project: str, generator, probe, extracted) -> None:
    wheel = download_wheel(project)
    require(wheel is not None, f"cannot download a cp313t wheel of {project}")
    root = extracted(wheel)
    members = _members(wheel)
    modules = [(m, r) for m, r in members if r.verdict is not Verdict.NOT_A_MODULE]
    assert modules, f"{wheel.name} has no extension module"
    if generator is not None:
        assert generator in {r.generator for _, r in modules}
    for member, report in modules:
        assert report.verdict is not Verdict.UNKNOWN or report.reason
        name = _module_name(member)
        result = probe(root / member, name, [str(root)])
        declared = result.declared_not_used(name)
        assert declared is not None, (member, result)
        if report.verdict is not Verdict.UNKNOWN:
            assert declared == (report.verdict is Verdict.NOT_USED), (member, report)


@pytest.mark.parametrize("project", sorted(FAST))
def test_wheel_agrees_with_import(project, probe, extracted):
    _check_wheel(project, FAST[project], probe, extracted)


@pytest.mark.slow
@pytest.mark.parametrize("project", sorted(SLOW))
def test_big_wheel_agrees_with_import(project, probe, extracted):
    _check_wheel(project, SLOW[project], probe, extracted)


def test_numpy_side_libraries_are_not_modules():
    wheel = download_wheel("numpy")
    require(wheel is not None, "cannot download numpy")
    libraries = [r for m, r in _members(wheel) if "numpy.libs/" in m]
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
    reference = download_wheel(project)
    other = download_wheel(project, platform)
    require(reference is not None and other is not None, f"cannot download {project} for {platform}")
    expected = {_module_name(m).split(".")[-1]: r.verdict for m, r in _members(reference)
                if r.verdict is not Verdict.NOT_A_MODULE}
    found = {_module_name(m).split(".")[-1]: r for m, r in _members(other) if r.verdict is not Verdict.NOT_A_MODULE}
    assert found.keys() == expected.keys()
    for name, report in found.items():
        assert (report.format, report.machine) == (fmt, machine)
        assert report.init_symbols == (f"PyInit_{name}",)
        assert report.verdict is expected[name], report


def test_pybind11_3_modules_are_decided_on_x86_64():
    """contourpy 1.3.3 is built with pybind11 3: its slot array only exists at run time, and
    the inspector reads the declaration from the stores in PyInit (import-checked above)."""
    wheel = download_wheel("contourpy")
    require(wheel is not None, "cannot download contourpy")
    reports = [r for _, r in _members(wheel) if r.generator == "pybind11"]
    assert reports and all(r.verdict is Verdict.NOT_USED for r in reports), reports


def test_pybind11_3_modules_stay_unknown_on_aarch64():
    """No rule reads aarch64 code: the run-time slot array stays UNKNOWN there, with a reason."""
    wheel = download_wheel("contourpy", "manylinux_2_28_aarch64")
    require(wheel is not None, "cannot download contourpy for aarch64")
    reports = [r for _, r in _members(wheel) if r.generator == "pybind11"]
    assert reports and all(r.verdict is Verdict.UNKNOWN and "x86-64" in (r.reason or "") for r in reports), reports
