"""Helpers of the Python 3.15 export-hook tests (setuptools, meson, CMake): the hook called
through ctypes as CPython 3.15's loader calls it, and the entry points a module exports."""

from __future__ import annotations

import json
from pathlib import Path

from elftools.elf.elffile import ELFFile

from support import SAMPLES, run

HOOK_SAMPLE = SAMPLES / "hook315"
"""Modules with and without the hook, and py315_compat.h, which spells the 3.15 names from
CPython's documentation for compiling against 3.13's headers (no 3.15 interpreter here)."""

# Calls the hook twice and prints whether both calls returned one array, then each entry:
# id, flags and value, and the entries of a nested PyModuleDef_Slot array (Py_mod_slots).
# The layout is PySlot's from 3.15's Doc/c-api/slots.rst: uint16 id, uint16 flags, uint32
# reserved, then an 8-byte union.
CALL_HOOK = """
import ctypes, json, sys
class PySlot(ctypes.Structure):
    _fields_ = [("id", ctypes.c_uint16), ("flags", ctypes.c_uint16), ("reserved", ctypes.c_uint32),
                ("ptr", ctypes.c_void_p)]
class DefSlot(ctypes.Structure):
    _fields_ = [("slot", ctypes.c_int), ("value", ctypes.c_void_p)]
hook = getattr(ctypes.PyDLL(sys.argv[1]), sys.argv[2])
hook.restype = ctypes.POINTER(PySlot)
first, second = hook(), hook()
entries, i = [], 0
while first[i].id:
    nested, j = [], 0
    if first[i].id == 94:
        inner = ctypes.cast(first[i].ptr, ctypes.POINTER(DefSlot))
        while inner[j].slot:
            nested.append([inner[j].slot, inner[j].value or 0]); j += 1
    entries.append([first[i].id, first[i].flags, first[i].ptr or 0, nested]); i += 1
print(json.dumps([ctypes.addressof(first.contents) == ctypes.addressof(second.contents), entries]))
"""
PY_MOD_GIL, PY_MOD_GIL_OLD, PY_MOD_SLOTS, PY_MOD_EXEC = 87, 4, 94, 85
PYSLOT_INTPTR, NOT_USED = 0x4, 1


def dynamic_symbols(library: Path) -> set[str]:
    """Exported ``PyInit``/``PyModExport`` names of ``library``, read with pyelftools."""
    with library.open("rb") as stream:
        return {s.name for s in ELFFile(stream).get_section_by_name(".dynsym").iter_symbols()
                if s["st_shndx"] != "SHN_UNDEF" and s["st_info"]["bind"] != "STB_LOCAL"
                and ("PyInit" in s.name or "PyModExport" in s.name)}


def call_hook(python: Path, library: Path, hook: str) -> tuple[bool, list]:
    """Whether two calls returned one array, and its entries (see CALL_HOOK)."""
    same, entries = json.loads(run([python, "-c", CALL_HOOK, library, hook]).stdout)
    return same, entries
