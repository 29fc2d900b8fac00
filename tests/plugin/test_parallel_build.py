"""``build_ext -j N`` with extensions that share a source: each must link its own object.

The twins sample compiles ``common.c`` into both extensions with a different ``TWIN`` macro
(and the plugin's own rename per module). distutils puts both objects at one path, so in a
parallel build one extension linked the object compiled for the other: before the fix every
parallel build here answered "I am right" (or "I am left") from both modules.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

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
