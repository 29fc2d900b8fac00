"""Bugs found by ``benchmarks/check_env.py`` on a venv of real cp313t wheels, each pinned down
with real modules compiled for the free-threaded interpreter."""

from __future__ import annotations

from pathlib import Path

import pytest

from nogil_toolkit.environment import ExtensionFile, find_extensions
from nogil_toolkit.probe import probe_module
from nogil_toolkit.target import query_target
from support import run

pytestmark = pytest.mark.freethreaded

# An extension whose module code imports its own package, whose __init__ imports the extension
# back: the pattern of numpy.random._generator, scipy.linalg._cythonized_array_utils,
# sklearn.neighbors._ball_tree, pywt._extensions._dwt, zmq.backend.cython._zmq ... A normal
# import loads the package first and works; loading the file alone (what the probe does)
# fails in the module's code, after CPython has already acted on its declaration.
CIRCULAR_C = """
#include <Python.h>
#include <stdlib.h>
static int exec_module(PyObject *m) {
    PyObject *package;
    if (getenv("PROBE_TEST_ABORT_IN_EXEC")) abort();
    package = PyImport_ImportModule("%(package)s");
    if (package == NULL) return -1;
    Py_DECREF(package);
    return PyModule_AddIntConstant(m, "value", 42);
}
static PyModuleDef_Slot slots[] = {
    {Py_mod_exec, exec_module},
%(gil_slot)s
    {0, NULL}};
static struct PyModuleDef def = {PyModuleDef_HEAD_INIT, "_fast", NULL, 0, NULL, slots};
PyMODINIT_FUNC PyInit__fast(void) { return PyModuleDef_Init(&def); }
"""
GIL_SLOT = "#ifdef Py_GIL_DISABLED\n    {Py_mod_gil, Py_MOD_GIL_NOT_USED},\n#endif"


@pytest.fixture(scope="module")
def circular_packages(ft_python: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """circ_free (declares Py_MOD_GIL_NOT_USED) and circ_gil (declares nothing), each a package
    whose __init__ imports its extension ``_fast``, which imports the package back."""
    root = tmp_path_factory.mktemp("circular")
    include, suffix = run([ft_python, "-c", "import sysconfig; print(sysconfig.get_paths()['include']); "
                           "print(sysconfig.get_config_var('EXT_SUFFIX'))"]).stdout.split()
    for package, gil_slot in (("circ_free", GIL_SLOT), ("circ_gil", "")):
        folder = root / package
        folder.mkdir()
        (folder / "__init__.py").write_text("from ._fast import value\n")
        source = root / f"{package}.c"
        source.write_text(CIRCULAR_C % {"package": package, "gil_slot": gil_slot})
        run(["cc", "-shared", "-fPIC", f"-I{include}", source, "-o", folder / f"_fast{suffix}"])
    return root


def _extension(ft_python: str, root: Path, module: str) -> ExtensionFile:
    files = find_extensions(query_target(ft_python), [str(root)])
    return next(f for f in files if f.module == module)


@pytest.mark.parametrize("package", ["circ_free", "circ_gil"])
def test_the_modules_import_normally(ft_python: str, circular_packages: Path, package: str) -> None:
    out = run([ft_python, "-I", "-c", f"import sys; sys.path.insert(0, {str(circular_packages)!r}); "
               f"import {package}; print({package}.value, sys._is_gil_enabled())"])
    assert out.stdout.split() == ["42", "True" if package == "circ_gil" else "False"]


def test_probe_judges_a_module_whose_code_fails_alone_by_its_creation(ft_python: str, circular_packages: Path) -> None:
    """Before the fix the probe read the GIL after running the module's code, so the circular
    import made it "could not be loaded" (inconclusive) for 60 real modules that declare
    Py_MOD_GIL_NOT_USED and import fine."""
    file = _extension(ft_python, circular_packages, "circ_free._fast")
    result = probe_module(ft_python, file, [str(circular_packages)])
    assert result.error is None
    assert result.exec_error is not None and "ImportError" in result.exec_error
    assert result.gil_enabled is False
    assert result.needs_gil is False
    assert "GIL still disabled" in result.summary


def test_probe_still_blames_an_undeclared_module_whose_code_fails_alone(ft_python: str,
                                                                         circular_packages: Path) -> None:
    file = _extension(ft_python, circular_packages, "circ_gil._fast")
    result = probe_module(ft_python, file, [str(circular_packages)])
    assert result.exec_error is not None
    assert result.blamed == "circ_gil._fast"
    assert result.needs_gil is True


def test_probe_keeps_the_verdict_when_the_module_code_kills_the_interpreter(
        ft_python: str, circular_packages: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The verdict is printed as soon as the module exists: a crash in its code afterwards (here
    abort() in its exec slot) is reported, and no longer turns the answer into "the interpreter
    died". The switch is an environment variable; ``-I`` ignores only PYTHON* variables."""
    file = _extension(ft_python, circular_packages, "circ_free._fast")
    monkeypatch.setenv("PROBE_TEST_ABORT_IN_EXEC", "1")
    result = probe_module(ft_python, file, [str(circular_packages)])
    assert result.needs_gil is False
    assert result.exec_error is not None and "died" in result.exec_error
