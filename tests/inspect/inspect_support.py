"""Helpers shared by the inspector's tests (kept out of conftest.py so tests can import them)."""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional

import pytest

CACHE = Path(os.environ.get("NOGIL_TEST_CACHE", Path.home() / ".cache/nogil-toolkit/inspect-tests"))

# A probe reports what the interpreter did; the static verdict is "declared" or not.
# With a search path (a package unpacked from a wheel) the module is imported by its dotted
# name, parents first, as an application would; alone, it is loaded straight from its file.
PROBE_SCRIPT = textwrap.dedent(
    """
    import importlib, importlib.util, json, os, sys, warnings
    path, name = sys.argv[1], sys.argv[2]
    sys.path[:0] = sys.argv[3:]
    error = None
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            if sys.argv[3:]:
                module = importlib.import_module(name)
                if not os.path.samefile(module.__file__, path):
                    error = f"imported {module.__file__} instead of {path}"
            else:
                spec = importlib.util.spec_from_file_location(name, path)
                module = importlib.util.module_from_spec(spec)
                sys.modules[name] = module
                spec.loader.exec_module(module)
        except BaseException as exc:
            error = repr(exc)
    messages = [str(w.message) for w in caught if "global interpreter lock" in str(w.message)]
    print(json.dumps({"gil": sys._is_gil_enabled(), "warnings": messages, "error": error}))
    """
)


def require(condition: bool, why: str) -> None:
    """Fail (never skip) when something the tests can provision is missing: a skipped check
    on a fresh machine would hide exactly the failures it exists to find."""
    if not condition:
        pytest.fail(why)


def without_section_headers(data: bytes) -> bytes:
    """An x86-64 ELF file as ``sstrip`` leaves it: ``e_shoff``, ``e_shnum`` and ``e_shstrndx``
    zeroed and everything after the last loaded byte cut off (section headers, ``.symtab``).
    The dynamic loader never reads section headers, so the result still imports."""
    phoff = struct.unpack_from("<Q", data, 0x20)[0]
    phentsize, phnum = struct.unpack_from("<HH", data, 0x36)
    end = 0
    for index in range(phnum):
        _type, _flags, offset, _vaddr, _paddr, file_size = struct.unpack_from("<IIQQQQ", data,
                                                                              phoff + index * phentsize)
        end = max(end, offset + file_size)
    result = bytearray(data[:max(end, phoff + phnum * phentsize)])
    struct.pack_into("<Q", result, 0x28, 0)
    struct.pack_into("<HHH", result, 0x3A, 0, 0, 0)
    return bytes(result)


# -- import probe -----------------------------------------------------------------------------


@dataclass(frozen=True)
class ProbeResult:
    """What a fresh free-threaded interpreter did when importing one module."""

    gil_enabled: bool
    warned_for: List[str]
    error: Optional[str]

    def declared_not_used(self, name: str) -> Optional[bool]:
        """True/False if the probe decides the module's declaration, None if inconclusive.

        The GIL warning is issued once per process and names the module that triggered it,
        so a warning about another module (a parent package's extension) decides nothing.
        """
        short = name.rsplit(".", 1)[-1]
        mine = [w for w in self.warned_for if f"'{name}'" in w or f"'{short}'" in w]
        if mine:
            return False
        if self.warned_for:
            return None
        if self.error is not None:
            return None
        return not self.gil_enabled


def probe_import(ft_python: str, path: Path, name: str, extra_paths: List[str] = ()) -> ProbeResult:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHON_GIL", "PYTHONPATH", "PYTHONWARNINGS")}
    out = subprocess.run(
        [ft_python, "-I", "-W", "error::RuntimeWarning", "-c", PROBE_SCRIPT, str(path), name, *extra_paths],
        capture_output=True, text=True, env=env, timeout=120, check=False,
    )
    if out.returncode != 0 or not out.stdout.strip():
        return ProbeResult(True, [], f"probe crashed: {out.stderr[-500:]}")
    data = json.loads(out.stdout.strip().splitlines()[-1])
    return ProbeResult(data["gil"], data["warnings"], data["error"])


# -- real wheels ------------------------------------------------------------------------------


# Every wheel the inspector's tests read, at one exact version, so that every machine
# tests the same binaries (and the verdicts in the tests stay true).
PINNED = {
    "bcrypt": "5.0.0",
    "contourpy": "1.3.3",
    "frozenlist": "1.8.0",
    "markupsafe": "3.0.3",
    "numpy": "2.4.6",
    "pydantic-core": "2.41.4",
    "rpds-py": "2026.5.1",
    "typing-extensions": "4.15.0",
}

# The code generators the fixtures are built with (installed into a cached 3.13t venv).
PINNED_GENERATORS = ("cython==3.3.1", "pybind11==3.1.0", "setuptools==84.2.1")

_PLATFORMS = {
    "manylinux_2_28_x86_64": ["manylinux2014_x86_64", "manylinux_2_17_x86_64", "manylinux_2_27_x86_64",
                              "manylinux_2_28_x86_64", "manylinux1_x86_64", "manylinux_2_5_x86_64"],
    "manylinux_2_28_aarch64": ["manylinux2014_aarch64", "manylinux_2_17_aarch64", "manylinux_2_27_aarch64",
                               "manylinux_2_28_aarch64"],
    "macosx_10_13_x86_64": ["macosx_10_9_x86_64", "macosx_10_12_x86_64", "macosx_10_13_x86_64"],
}


def download_wheel(project: str, platform: str = "manylinux_2_28_x86_64") -> Path:
    """The pinned cp313t wheel of ``project`` for ``platform``, cached across sessions."""
    version = PINNED[project]
    target = CACHE / "wheels" / platform
    target.mkdir(parents=True, exist_ok=True)
    prefix = f"{project.replace('-', '_').lower()}-{version}-"

    def cached() -> List[Path]:
        return [p for p in target.glob("*.whl") if p.name.lower().startswith(prefix)]

    if not cached():
        command = [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:",
                   "--python-version", "3.13", "--abi", "cp313t", "-d", str(target), f"{project}=={version}"]
        for name in _PLATFORMS.get(platform, [platform]):
            command += ["--platform", name]
        result = subprocess.run(command, capture_output=True, text=True, check=False, timeout=600)
        require(bool(cached()), f"cannot download {project}=={version} for {platform}: {result.stderr[-300:]}")
    return cached()[0]
