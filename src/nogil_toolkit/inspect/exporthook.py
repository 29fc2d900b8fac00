"""Read a PEP 793 export hook (``PyModExport_<name>``) and the slot array it returns.

CPython 3.15 defines a module by an exported function that returns a slot array, with no
``PyModuleDef`` around it. Its declaration is therefore data the hook points to: the hook's
code must be exactly "return the address of a static array", and that array must be one
CPython 3.15 accepts. Anything else (another machine, a computed array, an unknown flag or
slot) is a reason, never a guess.

Facts from CPython 3.15's headers and docs (see the README's development notes):

* Hook names (``Doc/c-api/extension-modules.rst``): ``PyModExport_<name>`` for ASCII names,
  ``PyModExportU_<punycode name, '-' -> '_'>`` otherwise, as for ``PyInit_``/``PyInitU_``.
* Preference (``Python/importdl.c``, ``_PyImport_GetModuleExportHooks``): the export-hook
  prefix is looked up first; when found it is returned and ``PyInit_<name>`` is never looked
  up (gh-141169 / GH-141206 show that order). The docs say the same: with both exported,
  ``PyInit_<name>`` is ignored.
* Entry layout (``Include/slots.h``, PEP 820 ``PySlot``): ``uint16_t sl_id; uint16_t
  sl_flags; uint32_t`` reserved (must be 0), then an 8-byte union (``sl_ptr``, ``sl_func``,
  ``sl_size``, ...): 16 bytes. A ``PyModuleDef_Slot`` (``int slot; void *value``) of a 64-bit
  little-endian build has the same bytes when its id is below 65536: id, zero flags, zero
  padding, value. So one reader serves both forms there; other layouts are not read.
* Flags (``Include/slots.h`` as merged for 3.15, GH-149055): ``PySlot_OPTIONAL`` 0x1 (an
  unknown id is ignored instead of failing), ``PySlot_STATIC`` 0x2, ``PySlot_INTPTR`` 0x4
  (the value sits in ``sl_ptr``, which is where every value sits in these bytes anyway).
* Ids (``Include/slots_generated.h``): the module slots that existed before 3.15 keep their
  old ids next to new ones, ``_Py_SLOT_COMPAT_VALUE(OLD, NEW)``: ``Py_mod_create`` 1/84,
  ``Py_mod_exec`` 2/85, ``Py_mod_multiple_interpreters`` 3/86, ``Py_mod_gil`` 4/87; which one a
  build emits depends on the header version and ``Py_LIMITED_API``, and 3.15 resolves both.
  New module slots: ``Py_mod_name`` 100, ``Py_mod_doc`` 101, ``Py_mod_state_size`` 102,
  ``Py_mod_methods`` 103, ``Py_mod_state_traverse``/``clear``/``free`` 104-106, ``Py_mod_abi``
  109, ``Py_mod_token`` 110; ``Py_slot_subslots`` 92 and ``Py_mod_slots`` 94 nest arrays;
  ``Py_slot_invalid`` 0xffff. An id of 0 ends the array.
"""

from __future__ import annotations

import struct
from typing import Dict, FrozenSet, NamedTuple, Optional, Sequence, Tuple, Union

from nogil_toolkit.declaration import GilDeclaration
from nogil_toolkit.inspect.image import BinaryImage
from nogil_toolkit.inspect.initcode import MAX_FUNCTION_SIZE

FIRST_EXPORT_HOOK_VERSION = (3, 15)
"""The first CPython that looks for ``PyModExport_*`` (PEP 793)."""
HOOK_PREFIXES = ("PyModExport_", "PyModExportU_")

PYSLOT_OPTIONAL = 0x1
PYSLOT_STATIC = 0x2
PYSLOT_INTPTR = 0x4
_KNOWN_FLAGS = PYSLOT_OPTIONAL | PYSLOT_STATIC | PYSLOT_INTPTR

# Module slot ids CPython 3.15 accepts in an export hook's array, by what their value is.
_GIL_IDS = frozenset({4, 87})
_MULTIPLE_INTERPRETERS_IDS = frozenset({3, 86})
_FUNCTION_IDS = frozenset({1, 84, 2, 85, 104, 105, 106})  # create, exec, state traverse/clear/free
_EXEC_IDS = frozenset({2, 85})
_POINTER_IDS = frozenset({100, 101, 103, 109, 110})  # name, doc, methods, abi, token
_SIZE_IDS = frozenset({102})  # state_size
_NESTING_IDS = frozenset({92, 94})  # Py_slot_subslots, Py_mod_slots
# The canonical slot each id stands for, to find duplicates across the old and new ids.
_CANONICAL: Dict[int, int] = {1: 84, 2: 85, 3: 86, 4: 87}
# Largest constant a constant-valued slot accepts (Py_MOD_GIL_NOT_USED is 1; the
# multiple-interpreters values go up to Py_MOD_PER_INTERPRETER_GIL_SUPPORTED, 2).
_CONSTANT_LIMITS = {**{i: 1 for i in _GIL_IDS}, **{i: 2 for i in _MULTIPLE_INTERPRETERS_IDS}}
_MODULE_IDS = (_GIL_IDS | _MULTIPLE_INTERPRETERS_IDS | _FUNCTION_IDS | _POINTER_IDS | _SIZE_IDS | _NESTING_IDS)
# Every other id below this is a type slot (or reserved): CPython rejects it in a module.
_KNOWN_ID_LIMIT = 111
_MAX_ENTRIES = 64
_ENTRY = struct.Struct("<HHIQ")

_ENDBR64 = b"\xf3\x0f\x1e\xfa"
_FRAME_ENTER = b"\x55\x48\x89\xe5"  # push %rbp; mov %rsp,%rbp
_LEA_RAX = b"\x48\x8d\x05"  # lea rel32(%rip),%rax
_MOV_RAX = b"\x48\x8b\x05"  # mov rel32(%rip),%rax (a GOT slot)
_RETURNS = (b"\xc3", b"\xf3\xc3", b"\x5d\xc3", b"\x5d\xf3\xc3")  # [pop %rbp;] [rep] ret


def hook_symbol(module_name: str) -> str:
    """The export hook CPython 3.15 looks up for a module whose last name part is ``module_name``."""
    try:
        return "PyModExport_" + module_name.encode("ascii").decode()
    except UnicodeEncodeError:
        return "PyModExportU_" + module_name.encode("punycode").decode("ascii").replace("-", "_")


def hooks_apply(version: Optional[Tuple[int, ...]]) -> bool:
    """Whether a CPython of ``version`` uses export hooks; ``None`` (not known): the newest rules."""
    return version is None or tuple(version[:2]) >= FIRST_EXPORT_HOOK_VERSION


def choose_hook(exports: Sequence[str], init_symbols: Sequence[str], module_name: Optional[str]) -> Optional[str]:
    """The export hook CPython 3.15 calls for this file, or ``None`` if it calls ``PyInit_*``.

    CPython asks for the hook named after the module first and uses it when present. A file
    whose name does not tell the module (or exports the hook of another name) has its hook
    taken only when it is the file's one entry point, as a lone ``PyInit_*`` is.
    """
    hooks = sorted(s for s in exports if s.startswith(HOOK_PREFIXES))
    if not hooks:
        return None
    if module_name and hook_symbol(module_name) in hooks:
        return hook_symbol(module_name)
    if len(hooks) == 1 and not init_symbols:
        return hooks[0]
    return None


class HookSlot(NamedTuple):
    slot: int
    flags: int
    value: int
    relocated: bool


class HookSlotArray(NamedTuple):
    """The verified slot array an export hook returns."""

    hook: str
    address: int
    file_offset: int
    entries: Tuple[HookSlot, ...]

    def _gil_index(self) -> Optional[int]:
        return next((i for i, e in enumerate(self.entries) if e.slot in _GIL_IDS), None)

    @property
    def gil(self) -> Optional[GilDeclaration]:
        index = self._gil_index()
        if index is None:
            return None
        return GilDeclaration.NOT_USED if self.entries[index].value == 1 else GilDeclaration.USED

    @property
    def gil_slot(self) -> Optional[HookSlot]:
        index = self._gil_index()
        return None if index is None else self.entries[index]

    def gil_entry_offset(self) -> Optional[int]:
        index = self._gil_index()
        return None if index is None else self.file_offset + index * _ENTRY.size


def read_hook_slot_array(image: BinaryImage, hook: str) -> Union[HookSlotArray, str]:
    """The slot array ``hook`` returns, or why it cannot be read exactly."""
    if image.format != "elf" or image.machine != "x86_64":
        return f"export hook code is only read in x86-64 ELF files, not {image.machine} {image.format}"
    relocations = image.relocations
    if relocations is None:
        return "the binary has no relocation information to verify the hook's slot array"
    found = image.function_code(hook, MAX_FUNCTION_SIZE)
    if found is None:
        return f"the extent of {hook} is not known"
    address = _returned_address(image, *found)
    if isinstance(address, str):
        return f"{hook} {address}"
    section = image.section_at(address)
    if section is None or section.executable or not section.in_file or address % 8:
        return f"{hook} returns {address:#x}, which is not an aligned slot array in the file's data"
    entries = _walk(image, address, relocations.locations)
    if isinstance(entries, str):
        return f"the slot array {hook} returns (at {address:#x}) {entries}"
    offset = image.file_offset(address, _ENTRY.size)
    assert offset is not None
    return HookSlotArray(hook, address, offset, entries)


def _returned_address(image: BinaryImage, address: int, code: bytes) -> Union[int, str]:
    """The address a hook of the exact shape ``[endbr64] [frame] lea/mov X(%rip),%rax [pop] ret``
    returns; a ``mov`` loads a GOT slot, whose relocation says where it points."""
    position = len(_ENDBR64) if code.startswith(_ENDBR64) else 0
    if code[position:position + len(_FRAME_ENTER)] == _FRAME_ENTER:
        position += len(_FRAME_ENTER)
    opcode = code[position:position + 3]
    if opcode not in (_LEA_RAX, _MOV_RAX) or len(code) < position + 7:
        return "does not just return a static address (its code is not recognised)"
    (displacement,) = struct.unpack_from("<i", code, position + 3)
    target = address + position + 7 + displacement
    tail = code[position + 7:]
    if not any(tail.startswith(ret) and not tail[len(ret):].strip(b"\x90\xcc") for ret in _RETURNS):
        return "does more than return a static address (its code is not recognised)"
    if opcode == _LEA_RAX:
        return target
    relocations = image.relocations
    pointed = None if relocations is None else relocations.targets_of({target}).get(target)
    if pointed is None:
        return "loads its result from a pointer whose target is not known statically"
    return pointed


def _walk(image: BinaryImage, address: int, locations: FrozenSet[int]) -> Union[Tuple[HookSlot, ...], str]:
    """Decode entries up to the terminator, as CPython 3.15 would accept them."""
    entries = []
    seen = set()
    for index in range(_MAX_ENTRIES + 1):
        start = address + index * _ENTRY.size
        raw = image.read(start, _ENTRY.size)
        if raw is None:
            return "runs past the end of its section"
        slot, flags, reserved, value = _ENTRY.unpack(raw)
        if start in locations:
            return f"has a relocated slot id in entry {index}"
        relocated = start + 8 in locations
        if slot == 0:
            return tuple(entries)
        if reserved:
            return f"has a non-zero reserved field in entry {index} (not an array CPython accepts)"
        if flags & ~_KNOWN_FLAGS:
            return f"has unknown flags {flags:#x} in entry {index}"
        if slot not in _MODULE_IDS:
            if slot < _KNOWN_ID_LIMIT:
                return f"has slot id {slot} in entry {index}, a type slot CPython 3.15 rejects in a module"
            if flags & PYSLOT_OPTIONAL:
                continue  # an id CPython does not know (or Py_slot_invalid), marked optional: ignored
            return f"has slot id {slot} in entry {index}, unknown to CPython 3.15 and not optional"
        if slot in _NESTING_IDS:
            return f"nests another slot array (slot id {slot}), which is not followed"
        canonical = _CANONICAL.get(slot, slot)
        if canonical in seen and slot not in _EXEC_IDS:
            return f"repeats slot id {slot} (entry {index}), which CPython rejects"
        seen.add(canonical)
        problem = _value_problem(slot, value, relocated)
        if problem:
            return f"has {problem} in entry {index} (slot id {slot})"
        entries.append(HookSlot(slot, flags, value, relocated))
    return f"has no terminator within {_MAX_ENTRIES} entries"


def _value_problem(slot: int, value: int, relocated: bool) -> Optional[str]:
    if slot in _FUNCTION_IDS:
        return None if relocated else "a function slot whose value is not a relocated pointer"
    if slot in _POINTER_IDS:
        return None if relocated or value == 0 else "a pointer slot whose value is not a relocated pointer"
    if relocated:
        return "a constant slot whose value is a pointer"
    if slot in _SIZE_IDS:
        return None
    if value > _CONSTANT_LIMITS[slot]:
        return f"the value {value}, out of range"
    return None
