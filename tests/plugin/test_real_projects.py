"""The plugin inside real projects' builds: their own ``build_ext`` subclasses, Cython,
pybind11 with ``ParallelCompile``, setup.py-only projects, shared sources, and every way
of building (``pip wheel``, ``python -m build`` sdist then wheel, ``pip install -e``,
``build_ext --inplace -j``).

Real sdists (``conftest.SDISTS``) come from PyPI, pinned, from releases that declare nothing about free-threading;
the only change is the one a user makes (see ``plugin_support.declare``). Where no small real
project has the shape, a sample of tests/samples does. Each build runs once: the tests of one
build share a module fixture.
"""

from __future__ import annotations

import json
import shutil
import tarfile
import zipfile
from pathlib import Path

import pytest

from nogil_toolkit.declaration import GilDeclaration
from nogil_toolkit.wheel.record import RECORD_NAME
from plugin_support import declare, exported_init_symbols, toolkit_markers, unpack
from support import SAMPLES, build_wheel, clean_env, gil_python, import_strict, install, make_venv, run

@pytest.fixture(scope="module")
def ft_build_venv(ft_python: str, wheelhouse: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A free-threaded venv with setuptools and the plugin installed, for builds without
    isolation (``--no-build-isolation``, ``setup.py build_ext --inplace``)."""
    venv = make_venv(ft_python, tmp_path_factory.mktemp("ft-build") / "venv")
    run([venv, "-m", "pip", "install", "--find-links", wheelhouse, "setuptools>=64", "nogil-setuptools"])
    return venv


def wheel_member(wheel: Path, suffix: str) -> bytes:
    with zipfile.ZipFile(wheel) as archive:
        (name,) = [n for n in archive.namelist() if n.endswith(suffix)]
        return archive.read(name)


def record_of(wheel: Path) -> dict[str, object]:
    return json.loads(wheel_member(wheel, f".dist-info/{RECORD_NAME}"))


# --- msgpack 1.0.8: python -m build, sdist then wheel from that sdist ----------------------

@pytest.fixture(scope="module")
def gil313_venv(wheelhouse: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A GIL CPython 3.13 venv with build, setuptools, wheel and the plugin: for projects
    that cannot build for free-threaded 3.13 whatever the plugin does."""
    python = gil_python(13)
    assert python is not None, "no GIL build of CPython 3.13 on PATH or in pyenv"
    venv = make_venv(python, tmp_path_factory.mktemp("gil313") / "venv")
    run([venv, "-m", "pip", "install", "--find-links", wheelhouse, "build==1.6.1", "setuptools>=64", "wheel",
         "nogil-setuptools"])
    return venv


@pytest.fixture(scope="module")
def msgpack_build(sdists: dict[str, Path], gil313_venv: Path, wheelhouse: Path,
                  tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    work = tmp_path_factory.mktemp("msgpack")
    venv = gil313_venv
    project = unpack(sdists["msgpack==1.0.8"], work / "src")
    declare(project)
    run([venv, "-m", "build", "--outdir", work / "dist", project],
        env=clean_env(PIP_FIND_LINKS=str(wheelhouse)), timeout=1200)
    (sdist,) = (work / "dist").glob("*.tar.gz")
    (wheel,) = (work / "dist").glob("*.whl")
    install(venv, wheel)
    return {"venv": venv, "sdist": sdist, "wheel": wheel}


def test_msgpack_own_build_extension_builds_and_imports(msgpack_build: dict[str, Path]) -> None:
    out = run([msgpack_build["venv"], "-W", "error", "-c",
               "import msgpack, msgpack._cmsgpack as c\n"
               "assert msgpack.Packer is c.Packer, 'fell back to pure Python'\n"
               "print(msgpack.unpackb(msgpack.packb({'a': [1, 2]})))"], env=clean_env())
    assert out.stdout.strip() == "{'a': [1, 2]}"


def test_msgpack_wheel_declares_and_hides_the_renamed_init(msgpack_build: dict[str, Path],
                                                           tmp_path: Path) -> None:
    library = tmp_path / "_cmsgpack.so"
    library.write_bytes(wheel_member(msgpack_build["wheel"], ".so"))
    assert exported_init_symbols(library) == {"PyInit__cmsgpack"}
    assert [(m.module, m.declaration) for m in toolkit_markers(library)] == \
        [("msgpack._cmsgpack", GilDeclaration.NOT_USED)]
    assert record_of(msgpack_build["wheel"])["modules"] == {"msgpack._cmsgpack": "not-used"}


def test_sdist_carries_no_generated_shim(msgpack_build: dict[str, Path]) -> None:
    with tarfile.open(msgpack_build["sdist"]) as sdist:
        names = sdist.getnames()
    assert any(n.endswith("msgpack/_cmsgpack.pyx") for n in names)  # the listing is the real one
    assert not [n for n in names if "nogil" in n.lower() or "/build/" in n]


# --- cymem 2.0.8: cythonize() and an own build_ext subclass, pip install -e -------------------

@pytest.mark.freethreaded
def test_cymem_editable_install_keeps_the_gil_disabled(sdists: dict[str, Path], ft_venv: Path, wheelhouse: Path,
                                                       tmp_path: Path) -> None:
    project = unpack(sdists["cymem==2.0.8"], tmp_path / "src")
    declare(project)
    run([ft_venv, "-m", "pip", "install", "--no-deps", "--find-links", wheelhouse, "-e", project],
        env=clean_env(), timeout=1200)
    out = import_strict(ft_venv, "cymem.cymem", "print(cymem.cymem.__file__); pool = cymem.cymem.Pool(); "
                        "print(pool.size)")
    path, size = out.split()
    assert Path(path).is_relative_to(project) and size == "0"  # the editable copy, not an installed one
    assert [(m.module, m.declaration) for m in toolkit_markers(Path(path))] == \
        [("cymem.cymem", GilDeclaration.NOT_USED)]


# --- MarkupSafe 2.1.5: setup.py only, declared without touching its build ---------------------

@pytest.mark.freethreaded
def test_setup_py_only_project_declared_with_the_table_alone(sdists: dict[str, Path], ft_build_venv: Path,
                                                             ft_venv: Path, tmp_path: Path) -> None:
    """No [build-system]: the plugin comes from the build environment (--no-build-isolation),
    the declaration from a pyproject.toml that holds [tool.nogil] and nothing else."""
    project = unpack(sdists["MarkupSafe==2.1.5"], tmp_path / "src")
    assert not (project / "pyproject.toml").exists()
    declare(project, build_requires=False)
    run([ft_build_venv, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-w", tmp_path / "dist", project],
        env=clean_env())
    (wheel,) = (tmp_path / "dist").glob("*.whl")
    assert record_of(wheel)["modules"] == {"markupsafe._speedups": "not-used"}
    install(ft_venv, wheel)
    import_strict(ft_venv, "markupsafe._speedups",
                  "import markupsafe; assert str(markupsafe.escape('<a>')) == '&lt;a&gt;'")


# --- pybind11 with ParallelCompile ------------------------------------------------------------

@pytest.mark.freethreaded
def test_pybind11_parallel_compile(ft_venv: Path, wheelhouse: Path, tmp_path: Path) -> None:
    wheel = build_wheel(ft_venv, SAMPLES / "pybind_par", tmp_path, wheelhouse)
    assert record_of(wheel)["modules"] == {"pbpar._core": "not-used"}
    install(ft_venv, wheel)
    out = import_strict(ft_venv, "pbpar", "print(pbpar.add(2, 3), pbpar.scaled([1.0, 2.5], 2.0))")
    assert out.strip().split(maxsplit=1) == ["5", "[2.0, 5.0]"]


# --- several extensions sharing sources --------------------------------------------------------

@pytest.mark.freethreaded
def test_extensions_sharing_sources(ft_venv: Path, wheelhouse: Path, tmp_path: Path) -> None:
    wheel = build_wheel(ft_venv, SAMPLES / "twins", tmp_path, wheelhouse)
    assert record_of(wheel)["modules"] == {"twins._left": "not-used", "twins._right": "not-used"}
    install(ft_venv, wheel)
    out = import_strict(ft_venv, "twins._left, twins._right",
                        "print(twins._left.describe(), '|', twins._right.describe())")
    assert out.strip() == "I am left | I am right"


def test_psutil_shared_sources_inplace(sdists: dict[str, Path], gil313_venv: Path, tmp_path: Path) -> None:
    """psutil's _psutil_linux and _psutil_posix share _psutil_common.c and _psutil_posix.c.
    Built one after the other: with ``-j`` distutils compiles a shared source of two extensions
    to one object path from two threads, and either extension may link the other's object
    (with or without the plugin; here that would link the other module's renamed init). psutil 5.9.8 defines Py_LIMITED_API whenever ``wheel`` is
    importable, which free-threaded 3.13 cannot build (the plugin refuses it, see
    test_build_errors): it is built on the GIL 3.13, where the limited API leaves the shim
    nothing to declare, but the rename, the hiding and the marker still apply."""
    project = unpack(sdists["psutil==5.9.8"], tmp_path / "src")
    declare(project)
    build = run([gil313_venv, "setup.py", "build_ext", "--inplace"], cwd=project, env=clean_env())
    assert "-DPy_LIMITED_API=0x03060000" in build.stdout + build.stderr
    libraries = {p.name.partition(".")[0]: p for p in (project / "psutil").glob("*.so")}
    assert sorted(libraries) == ["_psutil_linux", "_psutil_posix"]
    for name, library in libraries.items():
        # _psutil_linux also links _psutil_posix.c and so exports its init too, as without the
        # plugin; the renamed originals are never exported.
        exported = exported_init_symbols(library)
        assert f"PyInit_{name}" in exported and not [s for s in exported if "nogil_toolkit" in s], exported
        assert [m.module for m in toolkit_markers(library)] == [f"psutil.{name}"]
    out = run([gil313_venv, "-W", "error", "-c",
               "import psutil; print(psutil.Process().pid == __import__('os').getpid(), psutil.cpu_count() > 0)"],
              cwd=project, env=clean_env())
    assert out.stdout.split() == ["True", "True"]


# --- build_ext --inplace -j 2, twice: nothing added to the project's extensions ----------------

INPLACE = """
import json, sys
from setuptools import setup
dist = setup(script_args=["build_ext", "--inplace", "-j", "2"])
json.dump({e.name: [e.sources, e.extra_objects, e.define_macros, e.depends] for e in dist.ext_modules}, sys.stdout)
"""


@pytest.mark.freethreaded
def test_inplace_parallel_builds_leave_the_extensions_as_written(ft_build_venv: Path, tmp_path: Path) -> None:
    project = tmp_path / "spine"
    shutil.copytree(SAMPLES / "spine", project)
    first = run([ft_build_venv, "-c", INPLACE], cwd=project, env=clean_env())
    extensions = json.loads(first.stdout.strip().splitlines()[-1])
    assert extensions["spine._multi"] == [["src/spine/_multi.c"], [], [], []]
    assert extensions["spine._cpp"][0] == ["src/spine/_cpp.cpp"]
    built = sorted(p.name for p in (project / "src" / "spine").glob("*.so"))
    assert len(built) == 4, built
    # A second run finds everything up to date: the shim does not force a relink.
    second = run([ft_build_venv, "-c", INPLACE], cwd=project, env=clean_env())
    assert "nogil_shim" not in second.stdout + second.stderr
    assert "gcc" not in second.stdout + second.stderr and "g++" not in second.stdout + second.stderr
    out = run([ft_build_venv, "-W", "error::RuntimeWarning", "-c",
               "import sys, spine._multi, spine._single, spine._cpp, spine._own\n"
               "assert not sys._is_gil_enabled(); print(spine._cpp.greet())"],
              cwd=project / "src", env=clean_env())
    assert out.stdout.strip() == "hello from C++17"
    # A changed declaration rewrites the shim, which is in each extension's depends: relinked.
    pyproject = project / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace("thread-safe = true", "thread-safe = false"))
    run([ft_build_venv, "-c", INPLACE], cwd=project, env=clean_env())
    (multi,) = (project / "src" / "spine").glob("_multi.*.so")
    assert [(m.module, m.declaration) for m in toolkit_markers(multi)] == [("spine._multi", GilDeclaration.USED)]
