"""Python 3.15's export hook (PEP 793): the shim wraps ``PyModExport_<name>`` in modules that
define one, and only there. No 3.15 interpreter exists here, so the sample compiles against
3.13t's headers with a fixture header that spells the 3.15 names from CPython's documentation
(tests/samples/hook315/src/hook315/py315_compat.h), and the hooks are called through ctypes,
as CPython 3.15's loader calls them, in the free-threaded interpreter the modules were built for."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from hook_support import (HOOK_SAMPLE, NOT_USED, PY_MOD_EXEC, PY_MOD_GIL, PY_MOD_GIL_OLD, PY_MOD_SLOTS,
                          PYSLOT_INTPTR, call_hook, dynamic_symbols)
from support import build_wheel, run

pytestmark = pytest.mark.freethreaded


@pytest.fixture(scope="module")
def hook_modules(ft_venv: Path, wheelhouse: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The hook315 sample built through pip on the free-threaded interpreter: name -> .so."""
    wheel = build_wheel(ft_venv, HOOK_SAMPLE, tmp_path_factory.mktemp("hook315"), wheelhouse)
    out = wheel.parent / "unpacked"
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(out)
    return {path.name.partition(".")[0]: path for path in (out / "hook315").glob("*.so")}


def test_wrappers_are_exported_and_the_originals_hidden(hook_modules: dict[str, Path]) -> None:
    assert dynamic_symbols(hook_modules["_both"]) == {"PyInit__both", "PyModExport__both"}
    # Hook only: the shim's PyInit__both-like init exists (it refuses, naming the hook), the
    # original init was never there.
    assert dynamic_symbols(hook_modules["_only"]) == {"PyInit__only", "PyModExport__only"}
    # No hook in the sources: no wrapper, which CPython 3.15 would prefer and fail on.
    assert dynamic_symbols(hook_modules["_plain"]) == {"PyInit__plain"}


def test_the_hook_returns_one_array_with_the_declaration(hook_modules: dict[str, Path], ft_venv: Path) -> None:
    same, entries = call_hook(ft_venv, hook_modules["_both"], "PyModExport__both")
    assert same, "a second call returned another array"
    gil = [e for e in entries if e[0] in (PY_MOD_GIL, PY_MOD_GIL_OLD)]
    assert gil == [[PY_MOD_GIL, PYSLOT_INTPTR, NOT_USED, []]]  # the USED entry replaced, not joined
    (nested,) = [e[3] for e in entries if e[0] == PY_MOD_SLOTS]
    # The nested PyModuleDef_Slot array kept its exec slot and lost its old-id GIL entry.
    assert [slot for slot, _ in nested] == [PY_MOD_EXEC]
    assert entries[-1][0] == PY_MOD_GIL


def test_a_hook_without_gil_slot_gets_one_appended(hook_modules: dict[str, Path], ft_venv: Path) -> None:
    same, entries = call_hook(ft_venv, hook_modules["_only"], "PyModExport__only")
    assert same
    assert [(e[0], e[1], e[2]) for e in entries][-1] == (PY_MOD_GIL, PYSLOT_INTPTR, NOT_USED)
    assert [e[0] for e in entries] == [PY_MOD_EXEC, PY_MOD_GIL]


def test_hook_only_module_refuses_the_init_path_with_a_reason(hook_modules: dict[str, Path], ft_venv: Path) -> None:
    """Before 3.15 a hook-only file is no module; its init says why instead of crashing."""
    code = ("import importlib.util, sys\n"
            "spec = importlib.util.spec_from_file_location('hook315._only', sys.argv[1])\n"
            "try:\n    importlib.util.module_from_spec(spec)\n"
            "except ImportError as e:\n    print(e)\n")
    out = run([ft_venv, "-c", code, hook_modules["_only"]]).stdout
    assert "hook315._only defines no PyInit__only, only the export hook PyModExport__only of Python 3.15+" in out
