"""Reconstructing a run-time slot array from x86-64 stores, on hand-assembled code.

The real-binary checks (pybind11 3 at each optimisation level, PyPI wheels) are in
test_generators.py and test_wheels.py; these pin down each refusal on its own.
"""

from __future__ import annotations

import struct
from typing import List, Tuple

from nogil_toolkit.inspect.initcode import CodeSlotArray, read_code_slot_array

CODE = 0x1000
ARRAY = 0x9000


def _assemble(instructions: List[Tuple[bytes, int, bytes]]) -> bytes:
    """(opcode bytes, target address, immediate bytes) -> code with correct rel32s."""
    code = b""
    for opcode, target, immediate in instructions:
        end = CODE + len(code) + len(opcode) + 4 + len(immediate)
        code += opcode + struct.pack("<i", target - end) + immediate
    return code


def movl(offset: int, value: int) -> Tuple[bytes, int, bytes]:
    return b"\xc7\x05", ARRAY + offset, struct.pack("<i", value)


def movq(offset: int, value: int) -> Tuple[bytes, int, bytes]:
    return b"\x48\xc7\x05", ARRAY + offset, struct.pack("<i", value)


def mov_rax(offset: int) -> Tuple[bytes, int, bytes]:
    return b"\x48\x89\x05", ARRAY + offset, b""


# pybind11 3.0 with py::mod_gil_not_used(): {exec, f}, {multi-interp, 0}, {gil, 1}, {0, 0}.
DECLARED = [movl(0, 2), mov_rax(8), movl(16, 3), movq(24, 0), movl(32, 4), movq(40, 1), movl(48, 0), movq(56, 0)]


def test_complete_stores_are_read_back():
    result = read_code_slot_array(_assemble(DECLARED), CODE, ARRAY)
    assert isinstance(result, CodeSlotArray)
    assert result.entries == ((2, None), (3, 0), (4, 1)) and result.gil_value == 1


def test_without_gil_store_the_array_has_no_gil_slot():
    plain = DECLARED[:4] + [movl(32, 0), movq(40, 0)]
    result = read_code_slot_array(_assemble(plain), CODE, ARRAY)
    assert isinstance(result, CodeSlotArray) and not result.has_gil_slot


def test_order_of_stores_does_not_matter():
    result = read_code_slot_array(_assemble(list(reversed(DECLARED))), CODE, ARRAY)
    assert isinstance(result, CodeSlotArray) and result.gil_value == 1


def test_two_paths_storing_one_field_are_refused():
    # A run-time option compiles to two paths: one ends the array where the other has the gil slot.
    result = read_code_slot_array(_assemble(DECLARED + [movl(32, 0), movq(40, 0)]), CODE, ARRAY)
    assert isinstance(result, str) and "more than once" in result


def test_address_taken_is_refused():
    lea = (b"\x48\x8d\x0d", ARRAY, b"")  # lea slots(%rip), %rcx: filled elsewhere, e.g. at -O0
    result = read_code_slot_array(_assemble(DECLARED + [lea]), CODE, ARRAY)
    assert isinstance(result, str) and "not recognised" in result


def test_vector_store_is_refused():
    movaps = (b"\x0f\x29\x05", ARRAY + 32, b"")  # movaps %xmm0, slots+0x20(%rip)
    stores = [s for s in DECLARED if s[1] - ARRAY not in (32, 40)] + [movaps]
    assert isinstance(read_code_slot_array(_assemble(stores), CODE, ARRAY), str)


def test_register_value_for_gil_is_not_a_constant():
    stores = DECLARED[:5] + [mov_rax(40)] + DECLARED[6:]
    result = read_code_slot_array(_assemble(stores), CODE, ARRAY)
    assert isinstance(result, CodeSlotArray) and result.gil_value is None


def test_missing_terminator_is_refused():
    assert isinstance(read_code_slot_array(_assemble(DECLARED[:6]), CODE, ARRAY), str)


def test_operand_size_prefix_is_not_a_store_we_know():
    movw = (b"\x66\xc7\x05", ARRAY + 32, struct.pack("<h", 4))  # movw $4: a 16-bit store
    stores = [s for s in DECLARED if s[1] - ARRAY != 32] + [movw]
    assert isinstance(read_code_slot_array(_assemble(stores), CODE, ARRAY), str)
