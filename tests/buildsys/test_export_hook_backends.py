"""meson and CMake wrap Python 3.15's export hook with the same generated shim as setuptools:
the hook315 sample's modules built as a meson-python and as a scikit-build-core project (the
build files written here around the sample's sources), through pip on the free-threaded
interpreter, then the hooks called through ctypes as CPython 3.15 calls them."""

from __future__ import annotations

from pathlib import Path

import pytest

from buildsys_support import HOOKS, cmake_hook_project, meson_hook_project, pip_wheel
from hook_support import NOT_USED, PY_MOD_GIL, PYSLOT_INTPTR, call_hook, dynamic_symbols

pytestmark = [pytest.mark.slow, pytest.mark.freethreaded]


def test_hooks_are_wrapped_and_the_originals_hidden(hook_build: tuple[dict[str, Path], Path],
                                                     ft_venv: Path) -> None:
    modules, _ = hook_build
    assert dynamic_symbols(modules["_both"]) == {"PyInit__both", "PyModExport__both"}
    assert dynamic_symbols(modules["_only"]) == {"PyInit__only", "PyModExport__only"}
    assert dynamic_symbols(modules["_plain"]) == {"PyInit__plain"}
    for module in HOOKS:
        same, entries = call_hook(ft_venv, modules[module], f"PyModExport_{module}")
        assert same and entries[-1][:3] == [PY_MOD_GIL, PYSLOT_INTPTR, NOT_USED]


def test_meson_fails_a_hook_left_out_of_nogil_export_hooks(ft_venv: Path, plugin_wheelhouse: Path,
                                                            tmp_path: Path) -> None:
    project = meson_hook_project(tmp_path, ("_only",))
    wheel, output = pip_wheel(ft_venv, project, tmp_path / "out", plugin_wheelhouse, check=False)
    assert wheel is None
    assert ("h315._both defines Python 3.15's export hook PyModExport__both, which CPython 3.15 prefers over "
            "PyInit__both, but its shim does not wrap it: add 'h315._both' to nogil_export_hooks") in output, output
    assert "Traceback" not in output


def test_cmake_fails_a_hook_declared_without_export_hook(ft_venv: Path, plugin_wheelhouse: Path,
                                                         tmp_path: Path) -> None:
    """_both defines the hook but is declared without EXPORT_HOOK: the step after its link fails
    the build, naming the fix; _plain (no hook) passes the same step."""
    project = cmake_hook_project(tmp_path, ("_only",))
    wheel, output = pip_wheel(ft_venv, project, tmp_path / "out", plugin_wheelhouse, check=False)
    assert wheel is None
    assert ("h315._both defines Python 3.15's export hook PyModExport__both, which CPython 3.15 prefers over "
            "PyInit__both, but its shim does not wrap it: name it with --export-hook h315._both (CMake: "
            "nogil_declare(<target> h315._both EXPORT_HOOK))") in output, output
    assert "h315._plain defines" not in output and "Traceback" not in output
