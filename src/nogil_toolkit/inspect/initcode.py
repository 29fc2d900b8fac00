"""Read declarations that only ``PyInit_*``'s machine code holds: stores into a run-time slot
array (pybind11 3), and the constant ``gil_used`` argument PyO3 0.23-0.26 passes on.

pybind11 3 keeps its ``PyModuleDef_Slot`` array in a function-local static (``.bss``) and
fills it the first time ``PyInit_<name>`` runs, so the file holds no slot data. With
optimisation on, GCC and Clang inline the filling into ``PyInit_<name>`` as one store per
field, each addressing the array relative to the instruction pointer (x86-64)::

    c7 05 <rel32> 04 00 00 00        movl $4, slots+0x20(%rip)    # Py_mod_gil
    48 c7 05 <rel32> 01 00 00 00     movq $1, slots+0x28(%rip)    # Py_MOD_GIL_NOT_USED
    c7 05 <rel32> 00 00 00 00        movl $0, slots+0x30(%rip)    # terminator
    48 c7 05 <rel32> 00 00 00 00     movq $0, slots+0x38(%rip)

This module reconstructs the array from such stores, and only when the reconstruction is
complete: every reference from the function's code into the array (up to and including
its terminator) must be one of the recognised stores, no field may be stored twice (two
stores mean two paths, as a run-time option would compile to), every entry must be there
from the first to the terminator, and the array must live in zero-initialised memory so
that fields nobody stores are known to be zero. Anything else (the array's address taken
with ``lea`` for an out-of-line fill at ``-O0``, a vector store, an indexed store) leaves a
reference that is not recognised, and the answer is "cannot tell".
"""

from __future__ import annotations

import operator
import struct
import sys
from array import array
from typing import Dict, List, NamedTuple, Optional, Sequence, Tuple, Union

from nogil_toolkit.inspect.image import BinaryImage

# PyInit functions of real modules are a few hundred bytes; a bound keeps the scan cheap.
MAX_FUNCTION_SIZE = 16384
_ENTRY = 16  # PyModuleDef_Slot on 64-bit: int slot, 4 bytes padding, void *value
_MAX_ENTRIES = 16
# Legacy prefixes that change what a following c7/89 instruction does (operand or address
# size, segment, lock/rep): a store behind one of them is not one we recognise.
_PREFIXES = frozenset({0x66, 0x67, 0x64, 0x65, 0x2E, 0x3E, 0x26, 0x36, 0xF0, 0xF2, 0xF3})
_REL32 = struct.Struct("<i")
# A rel32 displacement is followed by nothing, an imm8 or an imm32 before the instruction ends.
_TAILS = (0, 1, 4)


class Store(NamedTuple):
    """One recognised store into the array."""

    offset: int
    """Byte offset of the stored field from the start of the array."""
    width: int
    value: Optional[int]
    """The stored immediate; ``None`` when a register is stored."""
    code_offset: int
    """Offset of the instruction's displacement inside the function."""


class CodeSlotArray(NamedTuple):
    """A slot array reconstructed from the stores of ``PyInit_*``."""

    address: int
    entries: Tuple[Tuple[int, Optional[int]], ...]
    """(slot id, value) up to, not including, the terminator; value ``None``: a register."""
    gil_store_offset: Optional[int]
    """File offset of the instruction that stores the ``Py_mod_gil`` value, if any."""

    @property
    def gil_value(self) -> Optional[int]:
        return next((value for slot, value in self.entries if slot == 4), None)

    @property
    def has_gil_slot(self) -> bool:
        return any(slot == 4 for slot, _ in self.entries)


def references(code: bytes, address: int, low: int, high: int) -> List[Tuple[int, Tuple[int, ...]]]:
    """Positions ``p`` whose rel32 may address ``[low, high)``, with the possible targets.

    The instruction's end is not known without decoding, so each plausible immediate size
    after the displacement is tried; a false hit can only make the caller more careful.
    """
    found = []
    for position in range(len(code) - 3):
        (displacement,) = _REL32.unpack_from(code, position)
        base = address + position + 4 + displacement
        if low <= base + 4 and base < high:
            targets = tuple(base + tail for tail in _TAILS if low <= base + tail < high)
            if targets:
                found.append((position, targets))
    return found


def _decode_store(code: bytes, position: int, address: int) -> Optional[Tuple[int, int, Optional[int]]]:
    """(target, width, immediate or None) if a RIP-relative mov store has its rel32 at ``position``."""
    if position < 2 or code[position - 1] & 0xC7 != 0x05:
        return None
    opcode = code[position - 2]
    before = code[position - 3] if position >= 3 else None
    if before in _PREFIXES:
        return None
    rex_w = before is not None and 0x48 <= before <= 0x4F
    (displacement,) = _REL32.unpack_from(code, position)
    if opcode == 0xC7 and code[position - 1] == 0x05:  # mov imm32 (sign-extended with REX.W)
        if position + 8 > len(code):
            return None
        (immediate,) = _REL32.unpack_from(code, position + 4)
        target = address + position + 8 + displacement
        return target, 8 if rex_w else 4, immediate
    if opcode == 0x89:  # mov reg, mem
        return address + position + 4 + displacement, 8 if rex_w else 4, None
    return None


def read_code_slot_array(code: bytes, address: int, array: int, file_offset: int = 0) -> Union[CodeSlotArray, str]:
    """Reconstruct the slot array at ``array`` from ``code`` (at ``address``, read from
    ``file_offset``), or say why not."""
    window = references(code, address, array, array + _MAX_ENTRIES * _ENTRY)
    stores: Dict[int, List[Store]] = {}
    unexplained: List[int] = []
    for position, targets in window:
        decoded = _decode_store(code, position, address)
        if decoded is None or decoded[0] not in targets:
            unexplained.append(min(targets))
            continue
        target, width, value = decoded
        stores.setdefault(target - array, []).append(Store(target - array, width, value, position))
    entries: List[Tuple[int, Optional[int]]] = []
    gil_store = None
    for index in range(_MAX_ENTRIES):
        fields = (stores.get(index * _ENTRY, []), stores.get(index * _ENTRY + 8, []))
        if any(len(field) > 1 for field in fields):
            return f"entry {index} of the slot array is stored more than once (a run-time choice)"
        if not all(fields) or fields[0][0].value is None:
            return f"entry {index} of the slot array is not stored as constants"
        slot_store, value_store = fields[0][0], fields[1][0]
        if value_store.width != 8 or not 0 <= slot_store.value < 1 << 31:
            return f"entry {index} of the slot array has an unexpected layout"
        end = (index + 1) * _ENTRY
        if slot_store.value == 0:
            if value_store.value != 0:
                return "the slot array's terminator is not {0, NULL}"
            break
        if slot_store.value == 4:
            gil_store = file_offset + value_store.code_offset - (3 if value_store.width == 8 else 2)
        entries.append((slot_store.value, value_store.value))
    else:
        return "no terminator found among the stores to the slot array"
    stray = [t for t in unexplained if t < array + end]
    stray += [array + offset for offset in stores if offset < end and offset % 8]
    if stray:
        return f"the slot array is also accessed in a way not recognised (at {min(stray):#x})"
    return CodeSlotArray(array, tuple(entries), gil_store)


def read_pyinit_slot_array(image: BinaryImage, function: str, array: int,
                           definition_addresses: Sequence[int]) -> Union[CodeSlotArray, str]:
    """The slot array at ``array`` as ``function`` fills it, for an x86-64 ELF image.

    Also checks that the function refers to the module definition (one of
    ``definition_addresses``), so that the array belongs to the definition it returns.
    """
    if image.format != "elf" or image.machine != "x86_64":
        return f"run-time slot stores are only read in x86-64 ELF code, not {image.machine} {image.format}"
    section = image.section_at(array)
    if section is None or section.in_file or not section.writable:
        return "the slot array is not in zero-initialised writable memory"
    found = image.function_code(function, MAX_FUNCTION_SIZE)
    if found is None:
        return f"the extent of {function} is not known"
    address, code = found
    file_offset = image.file_offset(address, len(code))
    assert file_offset is not None
    low, high = min(definition_addresses), max(definition_addresses) + 1
    if not any(set(targets) & set(definition_addresses) for _, targets in references(code, address, low, high)):
        return f"{function} does not refer to the module definition"
    return read_code_slot_array(code, address, array, file_offset)


def refers_to(image: BinaryImage, function: str, address: int, size: int) -> bool:
    """Whether ``function``'s x86-64 code may address ``[address, address + size)``.

    ``False`` also when the code cannot be read (other machines and formats): the callers
    use it as an extra objection, never as evidence by itself.
    """
    if image.format != "elf" or image.machine != "x86_64":
        return False
    found = image.function_code(function, MAX_FUNCTION_SIZE)
    if found is None:
        return False
    code_address, code = found
    return bool(references(code, code_address, address, address + size))


def code_refers_to(image: BinaryImage, low: int, high: int) -> Optional[bool]:
    """Whether any x86-64 code in the image may address ``[low, high)`` RIP-relatively.

    Every byte position of every executable section is read as a rel32 displacement, in
    four passes of C-speed ``map`` (one per position modulo 4), so that a whole library's
    code is searched in about the time of one copy. A false hit only makes the caller more
    careful. ``None`` when the code cannot be read this way (another machine or format).
    """
    if image.format != "elf" or image.machine != "x86_64":
        return None
    for section in image.sections:
        if not section.executable or not section.in_file:
            continue
        code = image.read(section.address, section.size)
        if code is None:
            return None
        # A displacement at position p addresses next_instruction + disp, where the next
        # instruction starts 0, 1 or 4 bytes after the displacement (see ``_TAILS``).
        window = range(low - max(_TAILS), high)
        for phase in range(4):
            words = array("i")
            words.frombytes(code[phase:phase + (len(code) - phase) // 4 * 4])
            if sys.byteorder != "little":
                words.byteswap()
            first = section.address + phase + 4
            ends = range(first, first + 4 * len(words), 4)
            if any(map(window.__contains__, map(operator.add, words, ends))):
                return True
    return False


# -- PyO3 0.23-0.26: the constant passed to ModuleDef::make_module ---------------------------

# How far PyO3's ``ModuleDef`` may extend around the ``PyModuleDef`` it contains (it adds an
# initializer pointer, the interpreter id and the module cell to it).
_PYO3_DEF_SPAN = 128
_LEA_RSI = b"\x48\x8d\x35"  # lea rel32(%rip), %rsi
# The instructions that may set the bool argument (%edx, or its low byte %dl), with the value
# each sets: the xor zeroing idiom and moves of the constants 0 and 1, nothing else.
_GIL_USED_SETTERS = {b"\x31\xd2": False, b"\x33\xd2": False, b"\x30\xd2": False, b"\x32\xd2": False,
                     b"\xba\x00\x00\x00\x00": False, b"\xba\x01\x00\x00\x00": True,
                     b"\xb2\x00": False, b"\xb2\x01": True}


class ModuleFactoryCall(NamedTuple):
    """``PyInit_*`` calls a function with ``(&return slot, &module definition, constant bool)``."""

    gil_used: bool
    setter_offset: int
    """File offset of the instruction that sets the bool."""
    call_address: int


def _setup_instruction(code: bytes, position: int) -> Optional[Tuple[str, int, Optional[bool]]]:
    """("rdi"|"edx", length, bool) for a recognised argument set-up at ``position``."""
    if code[position:position + 4] == b"\x48\x8d\x7c\x24":  # lea disp8(%rsp), %rdi
        return "rdi", 5, None
    if code[position:position + 4] == b"\x48\x8d\xbc\x24":  # lea disp32(%rsp), %rdi
        return "rdi", 8, None
    for pattern, value in _GIL_USED_SETTERS.items():
        if code[position:position + len(pattern)] == pattern:
            return "edx", len(pattern), value
    return None


def _call_target(image: BinaryImage, code: bytes, position: int, address: int) -> Optional[Tuple[int, int]]:
    """(length, callee) of ``call rel32`` or ``call *rel32(%rip)`` through a relocated slot."""
    if code[position:position + 1] == b"\xe8" and position + 5 <= len(code):
        return 5, address + position + 5 + _REL32.unpack_from(code, position + 1)[0]
    if code[position:position + 2] == b"\xff\x15" and position + 6 <= len(code):
        slot = address + position + 6 + _REL32.unpack_from(code, position + 2)[0]
        relocations = image.relocations
        callee = None if relocations is None else relocations.targets_of({slot}).get(slot)
        return None if callee is None else (6, callee)
    return None


def _branch_targets(code: bytes, address: int, decoded: range) -> List[int]:
    """Targets of every byte sequence outside ``decoded`` (positions whose instructions are
    known) that decodes as a relative jump: a superset of the real jumps."""
    targets = []
    for position, byte in enumerate(code):
        if position in decoded:
            continue
        if (byte == 0xEB or 0x70 <= byte <= 0x7F) and position + 2 <= len(code):
            targets.append(address + position + 2 + struct.unpack_from("<b", code, position + 1)[0])
        elif byte == 0xE9 and position + 5 <= len(code):
            targets.append(address + position + 5 + _REL32.unpack_from(code, position + 1)[0])
        elif byte == 0x0F and position + 6 <= len(code) and 0x80 <= code[position + 1] <= 0x8F:
            targets.append(address + position + 6 + _REL32.unpack_from(code, position + 2)[0])
    return targets


def read_module_factory_call(image: BinaryImage, function: str,
                             definition_addresses: Sequence[int]) -> Union[ModuleFactoryCall, str]:
    """The constant ``gil_used`` that ``function`` passes with the module definition, or why not.

    PyO3 0.23-0.26 generate ``PyInit_<name>`` as ``_PYO3_DEF.make_module(py, gil_used)``
    with a literal; where the trampoline is inlined, the code is exactly::

        lea  _PYO3_DEF(%rip), %rsi      # the ModuleDef holding the module's PyModuleDef
        lea  N(%rsp), %rdi              # where the PyResult goes  } in either order
        xor  %edx, %edx  |  mov $1, %edx                           }
        call make_module  |  call *make_module@GOT(%rip)

    Accepted only when that block is the sole reference the function makes to the definition,
    is followed directly by the call, the callee is code in this file, and no jump lands inside
    the block (another path could reach the call with another ``%edx``).
    """
    if image.format != "elf" or image.machine != "x86_64":
        return f"init code is only read in x86-64 ELF files, not {image.machine} {image.format}"
    found = image.function_code(function, MAX_FUNCTION_SIZE)
    if found is None:
        return f"the extent of {function} is not known"
    address, code = found
    low, high = min(definition_addresses) - _PYO3_DEF_SPAN, max(definition_addresses) + _PYO3_DEF_SPAN
    hits = references(code, address, low, high)
    if len(hits) != 1:
        return f"{function} refers to the module definition {len(hits)} times, not once"
    position = hits[0][0]
    if position < 3 or code[position - 3:position] != _LEA_RSI:
        return f"{function} does not pass the module definition as the second argument of a call"
    target = address + position + 4 + _REL32.unpack_from(code, position)[0]
    if not any(target <= d < target + _PYO3_DEF_SPAN for d in definition_addresses):
        return f"{function} passes an address that does not hold the module definition"
    start, cursor = position - 3, position + 4
    seen: Dict[str, Tuple[int, Optional[bool]]] = {}
    while True:
        decoded = _setup_instruction(code, cursor)
        if decoded is None or decoded[0] in seen:
            break
        seen[decoded[0]] = (cursor, decoded[2])
        cursor += decoded[1]
    if set(seen) != {"rdi", "edx"}:
        return f"{function} does not set up (return slot, module definition, constant flag) before a call"
    call = _call_target(image, code, cursor, address)
    if call is None:
        return f"{function} does not call a function of this file right after passing the module definition"
    callee = image.section_at(call[1])
    if callee is None or not callee.executable:
        return f"{function}'s call after passing the module definition does not go to code in this file"
    jumps = _branch_targets(code, address, range(start, cursor + call[0]))
    if any(address + start < target <= address + cursor for target in jumps):
        return f"a jump in {function} lands between passing the module definition and the call"
    setter, value = seen["edx"]
    file_offset = image.file_offset(address, len(code))
    assert file_offset is not None and value is not None
    return ModuleFactoryCall(value, file_offset + setter, address + cursor)
