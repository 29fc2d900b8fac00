"""``build_ext -j N`` with extensions that share a source: each must link its own object.

The twins sample compiles ``common.c`` into both extensions with a different ``TWIN`` macro
(and the plugin's own rename per module). distutils puts both objects at one path, so in a
parallel build one extension linked the object compiled for the other: before the fix every
parallel build here answered "I am right" (or "I am left") from both modules.
"""

from __future__ import annotations

import json
import shutil
import zipfile
from pathlib import Path

import pytest

from nogil_toolkit.export_hooks import exports
from support import SAMPLES, clean_env, make_venv, run

pytestmark = pytest.mark.freethreaded

BUILDS = 4
SETUP = "from setuptools import setup; setup()"


@pytest.fixture(scope="module")
def plugin_venv(ft_python: str, wheelhouse: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A free-threaded venv with the plugin installed, so ``setup()`` runs it without isolation."""
    python = make_venv(ft_python, tmp_path_factory.mktemp("parallel") / "venv")
    run([python, "-m", "pip", "install", "--find-links", wheelhouse, "setuptools>=77", "nogil-setuptools"])
    return python


def test_parallel_builds_link_each_extension_with_its_own_objects(plugin_venv: Path, tmp_path: Path) -> None:
    project = tmp_path / "twins"
    shutil.copytree(SAMPLES / "twins", project)
    for build in range(BUILDS):
        shutil.rmtree(project / "build", ignore_errors=True)
        for library in (project / "src" / "twins").glob("*.so"):
            library.unlink()
        run([plugin_venv, "-c", SETUP, "build_ext", "--inplace", "-j", "2"], cwd=project, env=clean_env())
        out = run([plugin_venv, "-c", "import twins._left as l, twins._right as r; print(l.describe(), '|', r.describe())"],
                  cwd=project / "src", env=clean_env())
        assert out.stdout.strip() == "I am left | I am right", f"build {build + 1}: {out.stdout}"


# Cython 0.29's Cython.Distutils.old_build_ext (PyYAML 6.0.1 builds on it) sets every option
# straight into the instance's __dict__, past any property.
OLD_STYLE_SETUP = """
from setuptools import setup
from setuptools.command.build_ext import build_ext

class old_build_ext(build_ext):
    def __setattr__(self, name, value):
        self.__dict__[name] = value

setup(cmdclass={"build_ext": old_build_ext})
"""


def test_a_build_ext_that_sets_attributes_into_its_dict(plugin_venv: Path, tmp_path: Path) -> None:
    project = tmp_path / "twins"
    shutil.copytree(SAMPLES / "twins", project)
    run([plugin_venv, "-c", OLD_STYLE_SETUP, "build_ext", "--inplace"], cwd=project, env=clean_env())
    out = run([plugin_venv, "-W", "error::RuntimeWarning", "-c",
               "import sys, twins._left as l, twins._right as r; print(l.describe(), r.describe(), sys._is_gil_enabled())"],
              cwd=project / "src", env=clean_env())
    assert out.stdout.strip() == "I am left I am right False"
    objects = [p.relative_to(project / "build").parts for p in (project / "build").rglob("common.o")]
    assert sorted(parts[parts.index("nogil") + 1] for parts in objects) == ["twins._left", "twins._right"]


def test_undeclared_extensions_keep_the_distutils_object_layout(plugin_venv: Path, tmp_path: Path) -> None:
    """The per-extension folders are for declared extensions: a build without a declaration
    stays exactly what setuptools alone does."""
    project = tmp_path / "twins"
    shutil.copytree(SAMPLES / "twins", project)
    pyproject = project / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace("thread-safe = true", '[tool.nogil.modules]\n"twins._left" = true'))
    run([plugin_venv, "-c", SETUP, "build_ext", "--inplace"], cwd=project, env=clean_env())
    objects = sorted(p.relative_to(project / "build").as_posix() for p in (project / "build").rglob("common.o"))
    assert len(objects) == 2, objects
    assert any("/nogil/twins._left/" in o for o in objects), objects
    assert any("/nogil/" not in o for o in objects), objects


# An Extension that is a plain shared library, loaded with ctypes (pycryptodome builds its C
# this way): no PyInit_, so the shim's call of the renamed original cannot link.
MIXED_PYPROJECT = """\
[build-system]
requires = ["setuptools>=77", "nogil-setuptools"]
build-backend = "setuptools.build_meta"

[project]
name = "mixed"
version = "1.0"

[tool.setuptools]
packages = ["mixed"]
ext-modules = [
  { name = "mixed._mod", sources = ["mixed/mod.c"] },
  { name = "mixed._plain", sources = ["mixed/plain.c"] },
]

[tool.nogil]
thread-safe = true
"""
MIXED_MODULE_C = """\
#include <Python.h>
static struct PyModuleDef def = {PyModuleDef_HEAD_INIT, "mixed._mod", NULL, 0, NULL};
PyMODINIT_FUNC PyInit__mod(void) { return PyModuleDef_Init(&def); }
"""
MIXED_PLAIN_C = "int mixed_add(int a, int b) { return a + b; }\n"


def test_an_extension_without_init_is_built_as_the_plain_library_it_is(plugin_venv: Path, tmp_path: Path) -> None:
    project = tmp_path / "mixed"
    (project / "mixed").mkdir(parents=True)
    (project / "pyproject.toml").write_text(MIXED_PYPROJECT)
    (project / "mixed" / "__init__.py").write_text("")
    (project / "mixed" / "mod.c").write_text(MIXED_MODULE_C)
    (project / "mixed" / "plain.c").write_text(MIXED_PLAIN_C)
    build = run([plugin_venv, "-c", SETUP, "bdist_wheel", "-d", tmp_path / "dist"], cwd=project, env=clean_env())
    assert "nogil: mixed._plain defines no PyInit__plain: it is a shared library" in build.stdout + build.stderr
    (wheel,) = (tmp_path / "dist").glob("mixed-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(tmp_path / "site")
        (record,) = [n for n in archive.namelist() if n.endswith("/nogil-declaration.json")]
        assert set(json.loads(archive.read(record))["modules"]) == {"mixed._mod"}
    (plain,) = (tmp_path / "site" / "mixed").glob("_plain.*")
    assert not any("PyInit" in name for name in exports(plain))
    out = run([plugin_venv, "-W", "error::RuntimeWarning", "-c",
               f"import ctypes, sys, mixed._mod; print(ctypes.CDLL({str(plain)!r}).mixed_add(2, 3), "
               "sys._is_gil_enabled())"], cwd=tmp_path / "site", env=clean_env())
    assert out.stdout.split() == ["5", "False"]
