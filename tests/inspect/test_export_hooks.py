"""PEP 793 export hooks: what CPython 3.15 imports from a file, and what older CPythons see.

The fixtures are real shared libraries built from ``csrc/exporthook.c`` (3.15's slot layout
spelled out in the fixture, compiled against the 3.13t headers). Where the slot array lies is
cross-checked with pyelftools; what 3.13t does with a hook-only file is checked by importing it.
"""

from __future__ import annotations

import struct
from pathlib import Path
from typing import Dict

import pytest
from elftools.elf.elffile import ELFFile
from inspect_support import probe_import
from py315_support import build_hook_module, include_dir

from nogil_toolkit import abi
from nogil_toolkit.inspect import EvidenceKind, Verdict, inspect_binary
from nogil_toolkit.inspect.exporthook import FIRST_EXPORT_HOOK_VERSION, hook_symbol

SUFFIX = ".so"
CASES = {
    "defslot_not_used": ("DEFSLOT_NOT_USED",),
    "pyslot_not_used": ("PYSLOT_NOT_USED",),
    "pyslot_no_gil": ("PYSLOT_NO_GIL",),
    "hook_and_init": ("PYSLOT_NO_GIL", "WITH_PYINIT"),
    "runtime_choice": ("RUNTIME_CHOICE",),
}


@pytest.fixture(scope="module")
def hooks(tmp_path_factory: pytest.TempPathFactory, ft_python: str) -> Dict[str, Path]:
    out = tmp_path_factory.mktemp("hooks")
    include = include_dir(ft_python)
    built = {name: build_hook_module(out / name, name, SUFFIX, include, *defines) for name, defines in CASES.items()}
    built["pyslot_not_used_o0"] = build_hook_module(out / "o0", "pyslot_not_used_o0", SUFFIX, include,
                                                    "PYSLOT_NOT_USED", opt="-O0")
    return built


def symbol_value(path: Path, name: str) -> int:
    with path.open("rb") as stream:
        symbol = ELFFile(stream).get_section_by_name(".symtab").get_symbol_by_name(name)
        return symbol[0]["st_value"]


@pytest.mark.parametrize(("name", "id_"), [("defslot_not_used", 4), ("pyslot_not_used", 87),
                                            ("pyslot_not_used_o0", 87)])
def test_hook_only_module_declaring_not_used(hooks: Dict[str, Path], name: str, id_: int) -> None:
    path = hooks[name]
    report = inspect_binary(path, python=(3, 15))
    assert report.verdict is Verdict.NOT_USED and report.reason is None
    assert report.init_symbols == (f"PyModExport_{name}",)
    evidence = report.evidence[0]
    assert evidence.kind is EvidenceKind.SLOT and f"id {id_}" in evidence.detail
    array = symbol_value(path, "hook_slots")
    assert f"at {array:#x}" in evidence.detail
    # The evidence points at the 16-byte entry {id, flags, reserved, Py_MOD_GIL_NOT_USED}.
    entry = path.read_bytes()[evidence.offset:evidence.offset + 16]
    slot, flags, reserved, value = struct.unpack("<HHIQ", entry)
    assert (slot, reserved, value) == (id_, 0, 1) and flags in (0, 0x4)


@pytest.mark.parametrize("python", [(3, 13), (3, 14)])
def test_hook_only_module_is_no_module_before_315(hooks: Dict[str, Path], python: tuple) -> None:
    for name in ("defslot_not_used", "pyslot_not_used", "pyslot_no_gil", "runtime_choice"):
        report = inspect_binary(hooks[name], python=python)
        assert report.verdict is Verdict.NOT_A_MODULE
        assert f"PyModExport_{name} is only looked for by CPython 3.15" in report.evidence[0].detail


def test_313t_really_finds_no_module_in_a_hook_only_file(hooks: Dict[str, Path], ft_python: str) -> None:
    result = probe_import(ft_python, hooks["pyslot_not_used"], "pyslot_not_used", [])
    assert result.error is not None and "PyInit_pyslot_not_used" in result.error


def test_hook_without_gil_slot_is_undeclared(hooks: Dict[str, Path]) -> None:
    report = inspect_binary(hooks["pyslot_no_gil"], python=(3, 15))
    assert report.verdict is Verdict.UNDECLARED
    assert "has no Py_mod_gil slot" in report.evidence[0].detail


def test_hook_wins_over_pyinit_on_315_only(hooks: Dict[str, Path]) -> None:
    path = hooks["hook_and_init"]
    on_315 = inspect_binary(path, python=(3, 15))
    assert on_315.verdict is Verdict.UNDECLARED  # the hook's array has no Py_mod_gil
    assert on_315.init_symbols == ("PyModExport_hook_and_init", "PyInit_hook_and_init")
    on_313 = inspect_binary(path, python=(3, 13))
    assert on_313.verdict is Verdict.NOT_USED  # PyInit's definition declares Py_MOD_GIL_NOT_USED
    assert on_313.init_symbols == ("PyInit_hook_and_init",)


def test_a_hook_choosing_its_array_at_run_time_is_unknown(hooks: Dict[str, Path]) -> None:
    report = inspect_binary(hooks["runtime_choice"], python=(3, 15))
    assert report.verdict is Verdict.UNKNOWN
    assert report.reason == ("PyModExport_runtime_choice does not just return a static address "
                             "(its code is not recognised)")
    assert report.evidence[0].kind is EvidenceKind.EXPORT_HOOK


def test_unknown_version_applies_the_newest_rules(hooks: Dict[str, Path]) -> None:
    assert inspect_binary(hooks["pyslot_not_used"]).verdict is Verdict.NOT_USED


def test_a_hook_named_for_another_module_is_not_called(hooks: Dict[str, Path]) -> None:
    # Imported as "other", CPython asks for PyModExport_other / PyInit_other; the file has
    # PyInit_hook_and_init too, so the lone-entry-point rule does not apply either.
    report = inspect_binary(hooks["hook_and_init"], module="pkg.other", python=(3, 15))
    assert report.init_symbols == ("PyInit_hook_and_init",)


def test_hook_names_follow_the_documented_encoding() -> None:
    # Doc/c-api/extension-modules.rst: ASCII names as they are, others punycode with '-' -> '_'.
    assert hook_symbol("spam") == "PyModExport_spam"
    assert hook_symbol("café") == "PyModExportU_" + "café".encode("punycode").decode().replace("-", "_")
    assert abi._HOOKS_FROM == FIRST_EXPORT_HOOK_VERSION


@pytest.mark.parametrize(("entry", "field", "value", "reason"), [
    ("gil", "flags", 0x80, "has unknown flags 0x80 in entry 2"),
    ("gil", "reserved", 1, "has a non-zero reserved field in entry 2 (not an array CPython accepts)"),
    ("gil", "value", 2, "has the value 2, out of range in entry 2 (slot id 87)"),
    ("exec", "slot", 4, "has a constant slot whose value is a pointer in entry 1 (slot id 4)"),
    ("exec", "slot", 64, "has slot id 64 in entry 1, a type slot CPython 3.15 rejects in a module"),
    ("exec", "slot", 0x1234, "has slot id 4660 in entry 1, unknown to CPython 3.15 and not optional"),
])
def test_arrays_cpython_would_not_accept_as_read_are_unknown(hooks: Dict[str, Path], tmp_path: Path, entry: str,
                                                             field: str, value: int, reason: str) -> None:
    """The PySlot fixture with one field of one entry patched, as a damaged or future file would be."""
    path = hooks["pyslot_not_used"]
    data = bytearray(path.read_bytes())
    gil_offset = inspect_binary(path, python=(3, 15)).evidence[0].offset
    assert gil_offset is not None
    offset = gil_offset if entry == "gil" else gil_offset - 16  # the exec entry precedes the gil one
    fields = dict(zip(("slot", "flags", "reserved", "value"), struct.unpack_from("<HHIQ", data, offset)))
    fields[field] = value
    struct.pack_into("<HHIQ", data, offset, *fields.values())
    patched = tmp_path / path.name
    patched.write_bytes(bytes(data))
    report = inspect_binary(patched, python=(3, 15))
    assert report.verdict is Verdict.UNKNOWN
    assert report.reason is not None and report.reason.endswith(reason)


def test_an_unknown_optional_slot_is_skipped_as_cpython_does(hooks: Dict[str, Path], tmp_path: Path) -> None:
    path = hooks["pyslot_not_used"]
    data = bytearray(path.read_bytes())
    gil_offset = inspect_binary(path, python=(3, 15)).evidence[0].offset
    assert gil_offset is not None
    # The Py_mod_name entry (first) becomes {Py_slot_invalid, OPTIONAL, 0, pointer}: no effect.
    name_offset = gil_offset - 32
    _, _, reserved, pointer = struct.unpack_from("<HHIQ", data, name_offset)
    struct.pack_into("<HHIQ", data, name_offset, 0xFFFF, 0x1, reserved, pointer)
    patched = tmp_path / path.name
    patched.write_bytes(bytes(data))
    assert inspect_binary(patched, python=(3, 15)).verdict is Verdict.NOT_USED
