"""A real meson-python project nobody here wrote: contourpy 1.2.1 (pinned sdist), a C++-only
project built with werror=true whose release does not declare free threading. Two lines of
meson.build and the setup block make its module keep the GIL off on free-threaded CPython."""

from __future__ import annotations

import sys
import tarfile
from pathlib import Path

import pytest

from buildsys_support import exports_and_markers, installed_extension, pip_wheel, wheel_record
from nogil_toolkit.declaration import GilDeclaration
from support import REPO, clean_env, run

pytestmark = [pytest.mark.slow, pytest.mark.freethreaded]

PROJECT = "contourpy"
VERSION = "1.2.1"
MODULE = "contourpy._contourpy"
BUILD_REQUIRES = '''    "nogil-meson",
    "meson==1.12.1",
    "meson-python==0.22.1",
    "ninja==1.13.2",
    "pybind11==2.13.6",'''

# contourpy's package __init__ imports numpy; the extension alone needs none of it.
LOAD = f"""
import glob, importlib.util, sys
(path,) = glob.glob(sys.argv[1])
spec = importlib.util.spec_from_file_location({MODULE!r}, path)
module = importlib.util.module_from_spec(spec)
print(module.FillType.OuterCode, sys._is_gil_enabled())
"""


def declared_source(sdist: Path, out: Path) -> Path:
    """The unpacked sdist with nogil-meson as backend, ``thread-safe = true`` and the setup block."""
    with tarfile.open(sdist) as archive:
        archive.extractall(out, filter="data")
    source = out / f"{PROJECT}-{VERSION}"
    pyproject = source / "pyproject.toml"
    text = pyproject.read_text()
    original_requires = '    "meson >= 1.2.0",\n    "meson-python >= 0.13.1",\n    "pybind11 >= 2.12.0",'
    assert 'build-backend = "mesonpy"' in text and original_requires in text
    assert "mod_gil" not in "".join(p.read_text() for p in (source / "src").glob("*.cpp"))
    pyproject.write_text(text.replace('build-backend = "mesonpy"', 'build-backend = "nogil_meson"')
                         .replace(original_requires, BUILD_REQUIRES) + "\n[tool.nogil]\nthread-safe = true\n")
    block = (REPO / "templates" / "nogil_meson_setup.build").read_text()
    block = "\n".join(f"nogil_modules = [{MODULE!r}]" if line.startswith("nogil_modules = ") else line
                      for line in block.splitlines()) + "\n"
    meson = source / "meson.build"
    anchor = "py3 = py_mod.find_installation(pure: false)\n"
    assert anchor in meson.read_text()
    meson.write_text(meson.read_text().replace(anchor, f"{anchor}py = py3\n{block}"))
    ext = source / "src" / "meson.build"
    assert "dependencies: [pybind11_dep]," in ext.read_text()
    ext.write_text(ext.read_text().replace("dependencies: [pybind11_dep],",
                                           f"dependencies: [pybind11_dep, nogil[{MODULE!r}]],"))
    return source


def test_contourpy_from_its_sdist_keeps_the_gil_off(ft_venv: Path, plugin_wheelhouse: Path, tmp_path: Path) -> None:
    run([ft_venv, "-m", "pip", "download", "--no-deps", "--no-binary", PROJECT, "-d", tmp_path / "sdist",
         f"{PROJECT}=={VERSION}"], env=clean_env(), timeout=1800)
    (sdist,) = (tmp_path / "sdist").glob(f"{PROJECT}-{VERSION}.tar.gz")
    source = declared_source(sdist, tmp_path / "unpacked")
    wheel, _ = pip_wheel(ft_venv, source, tmp_path / "out", plugin_wheelhouse)
    assert wheel is not None and ("-cp313t-" in wheel.name or "-cp314t-" in wheel.name), wheel
    assert wheel_record(wheel)[0]["modules"] == {MODULE: "not-used"}
    run([sys.executable, "-m", "nogil_toolkit", "wheel", "verify", wheel])
    run([ft_venv, "-m", "pip", "install", "--force-reinstall", "--no-deps", wheel])
    path = installed_extension(ft_venv, MODULE)
    out = run([ft_venv, "-W", "error::RuntimeWarning", "-c", LOAD, str(path)], env=clean_env()).stdout
    assert out.split() == ["FillType.OuterCode", "False"]
    exported, markers = exports_and_markers(path)
    assert {s for s in exported if "PyInit" in s} == {"PyInit__contourpy"}
    assert markers == [(MODULE, GilDeclaration.NOT_USED)]
