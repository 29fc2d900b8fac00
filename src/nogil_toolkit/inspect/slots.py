"""Find ``PyModuleDef_Slot`` arrays in a library image and read their ``Py_mod_gil`` entry.

A multi-phase module's declaration is data: ``PyModuleDef.m_slots`` points to an array of
``{int slot; void *value}`` entries ending in ``{0, NULL}``. The bytes ``{4, 1}`` alone
prove nothing (any table of small integers contains them), so an array only counts when
everything about it fits what a compiler emits for a real module definition:

* it is the target of a load-time pointer fix-up (a relocation), as ``m_slots`` is;
* that pointer sits where ``m_slots`` sits in a ``PyModuleDef`` whose other fields look
  as ``PyModuleDef_HEAD_INIT`` and a compiler leave them: ``m_init``, ``m_index`` and
  ``m_copy`` zero; ``m_name`` a relocated pointer to a valid module name; ``m_size`` a
  small unrelocated integer; ``m_doc``, ``m_methods`` and the three function pointers
  after ``m_slots`` either NULL or relocated;
* every entry has a slot id CPython knows, zero padding, and a value of the right kind:
  ``Py_mod_create``/``Py_mod_exec`` hold relocated function pointers, while
  ``Py_mod_gil`` and ``Py_mod_multiple_interpreters`` hold small unrelocated constants;
* no slot other than ``Py_mod_exec`` repeats (CPython rejects such duplicates) and a
  terminator ends the array.

Relocations are needed because a shared library is position-independent: the only static
trace of "this data structure points there" is the fix-up the loader applies.
"""

from __future__ import annotations

import bisect
import operator
import struct
from itertools import compress, repeat
from typing import Dict, FrozenSet, List, NamedTuple, Optional, Set, Tuple, Union

from nogil_toolkit.declaration import GilDeclaration
from nogil_toolkit.inspect.image import BinaryImage
from nogil_toolkit.inspect.initcode import code_refers_to

# Slot ids as Include/moduleobject.h defines them for 3.5-3.14, the ids in every
# PyModuleDef_Slot array that 3.13t/3.14t modules carry. 3.15 renumbers slots (PEP 820);
# arrays using new ids fail verification and so end in UNKNOWN, never in a guess.
PY_MOD_CREATE = 1
PY_MOD_EXEC = 2
PY_MOD_MULTIPLE_INTERPRETERS = 3
PY_MOD_GIL = 4
_FUNCTION_SLOTS = frozenset({PY_MOD_CREATE, PY_MOD_EXEC})
# Largest constant each constant-valued slot accepts.
_CONSTANT_SLOTS: Dict[int, int] = {PY_MOD_MULTIPLE_INTERPRETERS: 2, PY_MOD_GIL: 1}
_KNOWN_SLOTS = _FUNCTION_SLOTS | frozenset(_CONSTANT_SLOTS)
# Real arrays hold a few exec functions plus a few constants; a bound keeps a hostile
# file from making the walk long.
_MAX_ENTRIES = 64
# m_slots is four fields after m_name (m_name, m_doc, m_size, m_methods, m_slots).
_M_SLOTS_AFTER_M_NAME = 4


class SlotEntry(NamedTuple):
    """One ``{slot, value}`` pair; ``relocated`` tells a pointer from a constant."""

    slot: int
    value: int
    relocated: bool


class SlotArray(NamedTuple):
    """A verified module slot array."""

    address: int
    file_offset: int
    entry_size: int
    entries: Tuple[SlotEntry, ...]
    definition_address: int
    """Address of the ``m_slots`` pointer inside the ``PyModuleDef`` that refers to it."""
    module_name: str
    """The ``m_name`` of that ``PyModuleDef``, which ties the array to one module."""

    @property
    def gil(self) -> Optional[GilDeclaration]:
        """The ``Py_mod_gil`` value, or ``None`` if the array has no such entry."""
        for entry in self.entries:
            if entry.slot == PY_MOD_GIL:
                return GilDeclaration.NOT_USED if entry.value == 1 else GilDeclaration.USED
        return None

    def gil_entry_offset(self) -> Optional[int]:
        """File offset of the ``Py_mod_gil`` entry (for evidence)."""
        for index, entry in enumerate(self.entries):
            if entry.slot == PY_MOD_GIL:
                return self.file_offset + index * self.entry_size
        return None


def find_slot_arrays(image: BinaryImage) -> List[SlotArray]:
    """Every verified slot array in the image, in address order.

    Returns an empty list when the image has no relocation information (then nothing can be
    verified, and the rules must not conclude anything from slot data).
    """
    relocations = image.relocations
    if relocations is None:
        return []
    walked = {}
    for address in sorted(_candidates(image, relocations.targets)):
        entries = _walk(image, address, relocations.locations)
        if entries:
            walked[address] = entries
    if not walked:
        return []
    definitions = {}
    for address, sources in relocations.referrers(set(walked)).items():
        source = next((s for s in sorted(sources) if _shaped_like_module_def(image, s, relocations.locations)), None)
        if source is not None:
            definitions[address] = source
    name_offset = _M_SLOTS_AFTER_M_NAME * image.pointer_size
    names = relocations.targets_of({source - name_offset for source in definitions.values()})
    found = []
    for address, source in sorted(definitions.items()):
        name_pointer = names.get(source - name_offset)
        name = None if name_pointer is None else image.c_string(name_pointer)
        if name is None or not all(part.isidentifier() for part in name.split(".")):
            continue
        offset = image.file_offset(address, 1)
        assert offset is not None
        # An entry is an int padded to pointer alignment plus a pointer: two words.
        found.append(SlotArray(address, offset, 2 * image.pointer_size, tuple(walked[address]), source, name))
    return found


def _shaped_like_module_def(image: BinaryImage, m_slots: int, locations: FrozenSet[int]) -> bool:
    """Whether the words around ``m_slots`` have the shape of a statically built PyModuleDef."""
    word = image.pointer_size
    # m_init, m_index, m_copy, m_name, m_doc, m_size, m_methods, m_slots, m_traverse, m_clear, m_free
    first = m_slots - 7 * word
    raw = image.read(first, 11 * word)
    if raw is None:
        return False
    values = [int.from_bytes(raw[i * word:(i + 1) * word], image.byte_order, signed=True) for i in range(11)]
    relocated = [first + i * word in locations for i in range(11)]
    if any(values[i] or relocated[i] for i in (0, 1, 2)):  # PyModuleDef_HEAD_INIT's tail
        return False
    if not relocated[3]:  # m_name
        return False
    if relocated[5] or not -1 <= values[5] <= 1 << 24:  # m_size
        return False
    # m_doc, m_methods, m_traverse, m_clear, m_free: NULL or a relocated pointer.
    return all(relocated[i] or values[i] == 0 for i in (4, 6, 8, 9, 10))


def _candidates(image: BinaryImage, targets: List[int]) -> Set[int]:
    """Pointer targets that are aligned, in a data section, and start with a known slot id.

    Large modules have 10^5 fix-ups, so the targets are sorted once and each data section
    takes its slice by bisection; the byte test is a ``map``/``compress`` chain that
    iterates in C, and only the few survivors reach Python.
    """
    word = image.pointer_size
    # The byte that holds the slot id: first on little-endian, last of the int on big.
    id_byte = 0 if image.byte_order == "little" else 3
    ordered = sorted(set(targets))
    data = image.data
    result: Set[int] = set()
    for section in image.sections:
        if section.executable or not section.in_file or section.size < 2 * word:
            continue
        low = bisect.bisect_left(ordered, section.address)
        high = bisect.bisect_left(ordered, section.address + section.size - 2 * word + 1)
        inside = ordered[low:high]
        delta = section.offset - section.address + id_byte
        if not inside or inside[-1] + delta >= len(data) or inside[0] + delta < 0:
            continue
        heads = map(data.__getitem__, map(operator.add, inside, repeat(delta)))
        result.update(compress(inside, map(_KNOWN_SLOTS.__contains__, heads)))
    return {address for address in result if address % word == 0}


_ENTRY_LAYOUTS = {(8, "little"): struct.Struct("<iIQ"), (8, "big"): struct.Struct(">iIQ"),
                  (4, "little"): struct.Struct("<iI"), (4, "big"): struct.Struct(">iI")}


def _walk(image: BinaryImage, address: int, locations: FrozenSet[int]) -> Optional[List[SlotEntry]]:
    """Decode entries at ``address`` up to the terminator; ``None`` if anything is off."""
    section = image.section_at(address)
    if section is None:
        return None
    layout = _ENTRY_LAYOUTS[(image.pointer_size, image.byte_order)]
    word = image.pointer_size
    start = section.offset + (address - section.address)
    limit = min(section.offset + section.size, len(image.data))
    entries: List[SlotEntry] = []
    seen_slots = set()
    for index in range(_MAX_ENTRIES + 1):
        offset = start + index * layout.size
        if offset + layout.size > limit:
            return None
        fields = layout.unpack_from(image.data, offset)
        slot, padding, value = fields if word == 8 else (fields[0], 0, fields[1])
        relocated = address + index * layout.size + word in locations
        if padding:
            return None
        if slot == 0:
            return entries if value == 0 and not relocated and entries else None
        if slot not in _KNOWN_SLOTS or (slot in seen_slots and slot != PY_MOD_EXEC):
            return None
        if slot in _FUNCTION_SLOTS:
            if not relocated:
                return None
        elif relocated or value > _CONSTANT_SLOTS[slot]:
            return None
        seen_slots.add(slot)
        entries.append(SlotEntry(slot, value, relocated))
    return None


class ModuleDefinition(NamedTuple):
    """A statically built ``PyModuleDef`` whose ``m_name`` is this module's name.

    Found from the name rather than from a slot array, so that a definition without a
    readable slot array (``m_slots`` NULL, or pointing to memory filled at run time) is
    still seen.
    """

    m_name_location: int
    m_slots_location: int
    m_slots: Optional[int]
    """Where ``m_slots`` points after loading; ``None`` when the field is NULL."""
    module_name: str
    file_offset: Optional[int]
    """File offset of the ``m_slots`` field (for evidence)."""
    pointer_size: int

    @property
    def possible_addresses(self) -> Tuple[int, int]:
        """Where the ``PyModuleDef`` starts: before ``m_name`` come ``m_init``, ``m_index``,
        ``m_copy`` and a ``PyObject`` header of four words (free-threaded) or two (GIL build)."""
        word = self.pointer_size
        return (self.m_name_location - 7 * word, self.m_name_location - 5 * word)


# Occurrences of the module name looked at per section: a name is in a handful of strings.
_MAX_NAME_HITS = 64
# How far back the start of a dotted name (``package.module``) is looked for.
_MAX_NAME_LENGTH = 256


def find_module_definitions(image: BinaryImage, module_name: str) -> List[ModuleDefinition]:
    """The module definitions named ``module_name`` (or ``<package>.<module_name>``).

    A definition counts only with the same shape checks as for slot arrays: relocated
    ``m_name`` pointing to the name, ``PyModuleDef_HEAD_INIT`` tail zero, plausible
    ``m_size``, pointer fields NULL or relocated. ``m_slots`` is NULL only when it holds
    zero and no fix-up writes it; a relocated ``m_slots`` whose target is not statically
    known is left out (nothing can be said about it).
    """
    relocations = image.relocations
    if relocations is None or not module_name.isidentifier():
        return []
    names = _name_addresses(image, module_name.encode())
    if not names:
        return []
    word = image.pointer_size
    name_offset = _M_SLOTS_AFTER_M_NAME * word
    candidates: Dict[int, str] = {}
    for target, sources in relocations.referrers(set(names)).items():
        for source in sources:
            m_slots_location = source + name_offset
            if _shaped_like_module_def(image, m_slots_location, relocations.locations):
                candidates[m_slots_location] = names[target]
    targets = relocations.targets_of(set(candidates))
    found = []
    for location, name in sorted(candidates.items()):
        m_slots: Optional[int]
        if location in relocations.locations:
            m_slots = targets.get(location)
            if m_slots is None:
                continue
        else:
            raw = image.read(location, word)
            if raw is None or any(raw):
                continue
            m_slots = None
        found.append(ModuleDefinition(location - name_offset, location, m_slots, name,
                                      image.file_offset(location, word), word))
    return found


class EmptySlotArray(NamedTuple):
    """A module's slot array that holds only its terminator ``{0, NULL}``, for good."""

    address: int
    file_offset: Optional[int]
    """Where the terminator lies in the file; ``None`` in zero-filled memory (``.bss``)."""
    zero_filled: bool


def read_empty_slot_array(image: BinaryImage, definitions: List[ModuleDefinition]) -> Union[EmptySlotArray, str, None]:
    """The terminator-only slot array the module's definitions point to, or why it may not stay so.

    ``None`` when the definitions do not point to one array whose first entry is ``{0, NULL}``
    at load time (the other rules then apply). A string when they do, but the array may be
    filled before CPython reads it: another pointer to it exists, or, in writable memory,
    code addresses it (pybind11 3 fills a ``.bss`` array from ``PyInit`` this way), or that
    code cannot be read.
    """
    relocations = image.relocations
    arrays = {d.m_slots for d in definitions}
    if relocations is None or len(arrays) != 1 or None in arrays:
        return None
    address = arrays.pop()
    assert address is not None
    word = image.pointer_size
    entry = 2 * word
    section = image.section_at(address)
    if section is None or section.executable or address % word or address + entry > section.address + section.size:
        return None
    if section.in_file:
        raw = image.read(address, entry)
        if raw is None or any(raw):
            return None
    if any(address + i * word in relocations.locations for i in range(2)):
        return None
    # The loader would write the terminator's value: not a load-time NULL.
    pointers = set(relocations.referrers({address}).get(address, ())) - {d.m_slots_location for d in definitions}
    if pointers:
        return f"another pointer to the module's empty slot array exists (at {min(pointers):#x})"
    if section.writable:
        fields = [(d.m_slots_location, d.m_slots_location + word) for d in definitions]
        hits = [code_refers_to(image, low, high) for low, high in [(address, address + _MAX_ENTRIES * entry), *fields]]
        if None in hits:
            return (f"the module's slot array at {address:#x} is empty in the file but writable; code that "
                    f"could fill it is only read in x86-64 ELF files, not {image.machine} {image.format}")
        if any(hits):
            return (f"the module's slot array at {address:#x} is empty in the file, but code addresses it or "
                    "the definition's m_slots: it may be filled at run time")
    return EmptySlotArray(address, image.file_offset(address, entry), not section.in_file)


def _name_addresses(image: BinaryImage, name: bytes) -> Dict[int, str]:
    """Addresses of C strings equal to ``name`` or to a dotted path ending in ``.name``.

    Both the string's own start and, for a dotted path, the start of the whole path count:
    the linker may point a short string into the tail of a longer one.
    """
    found: Dict[int, str] = {}
    needle = name + b"\0"
    text = name.decode()
    data = image.data
    for section in image.read_only_data():
        start = section.offset
        end = min(section.offset + section.size, len(data))
        delta = section.address - section.offset
        hit = data.find(needle, start, end)
        for _ in range(_MAX_NAME_HITS):
            if hit < 0:
                break
            found[hit + delta] = text
            if hit > start and data[hit - 1] == ord("."):
                low = max(start, hit - _MAX_NAME_LENGTH)
                nul = data.rfind(b"\0", low, hit)
                if nul >= 0 or low == start:
                    begin = nul + 1 if nul >= 0 else start
                    full = bytes(data[begin:hit]).decode("utf-8", "replace") + text
                    if all(part.isidentifier() for part in full.split(".")):
                        found[begin + delta] = full
            hit = data.find(needle, hit + 1, end)
    return found


# Entries searched for with a plain find(); bounded so that a crafted file stays cheap.
_MAX_STRAY_HITS = 256


def has_stray_gil_entry(image: BinaryImage, verified: List[SlotArray]) -> bool:
    """Whether ``{Py_mod_gil, Py_MOD_GIL_NOT_USED}`` occurs in data outside ``verified`` arrays.

    Such an entry may belong to a slot array that code installs at run time (for example
    into a definition whose ``m_slots`` is NULL in the file), so its presence forbids
    concluding "no slot array". Only ``NOT_USED`` matters: a stray ``USED`` entry would
    leave the verdict as it is.
    """
    layout = _ENTRY_LAYOUTS[(image.pointer_size, image.byte_order)]
    entry = layout.pack(PY_MOD_GIL, 0, 1) if image.pointer_size == 8 else layout.pack(PY_MOD_GIL, 1)
    covered = [(a.address, a.address + len(a.entries) * a.entry_size) for a in verified]
    data = image.data
    for section in image.sections:
        if section.executable or not section.in_file:
            continue
        start, end = section.offset, min(section.offset + section.size, len(data))
        hit = data.find(entry, start, end)
        for _ in range(_MAX_STRAY_HITS):
            if hit < 0:
                break
            address = section.address + (hit - section.offset)
            if not any(low <= address < high for low, high in covered):
                return True
            hit = data.find(entry, hit + 1, end)
        else:
            return True
    return False
