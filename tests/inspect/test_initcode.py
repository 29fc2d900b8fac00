"""Reconstructing a run-time slot array from x86-64 stores, on hand-assembled code.

The real-binary checks (pybind11 3 at each optimisation level, PyPI wheels) are in
test_generators.py and test_wheels.py; these pin down each refusal on its own.
"""

from __future__ import annotations

import struct
from typing import List, Optional, Tuple

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


# -- PyO3 0.23-0.26: the constant gil_used passed to ModuleDef::make_module --------------------
# The real binaries (bcrypt 5.0.0 decided, pydantic-core 2.41.4 not, bcrypt patched to
# gil_used=true and confirmed by import) are in test_wheels.py; these pin down each refusal.

from nogil_toolkit.inspect.image import BinaryImage, NameLists, Relocations, Section  # noqa: E402
from nogil_toolkit.inspect.initcode import ModuleFactoryCall, read_module_factory_call  # noqa: E402

PYO3_DEF = 0x9000  # the ModuleDef; its PyModuleDef starts one word in, as in bcrypt
CALLEE, GOT_SLOT = 0x1800, 0x8800


def _lea_rsi(target: int) -> Tuple[bytes, int, bytes]:
    return b"\x48\x8d\x35", target, b""


def _image(code: bytes, relocated_got: bool = True, machine: str = "x86_64") -> BinaryImage:
    sections = [Section(".text", CODE, 0x1000, 0, writable=False, executable=True, in_file=True),
                Section(".got", GOT_SLOT, 8, 0x1000, writable=True, executable=False, in_file=True),
                Section(".data", PYO3_DEF, 0x100, 0x1008, writable=True, executable=False, in_file=True)]
    data = code.ljust(0x1000, b"\xcc") + bytes(8 + 0x100)
    relocations = Relocations(frozenset({GOT_SLOT}), [GOT_SLOT] if relocated_got else [],
                              [CALLEE] if relocated_got else [])
    return BinaryImage("elf", machine, 8, "little", data, _Symbols(len(code)), sections, lambda image: relocations)


class _Symbols(NameLists):
    """One exported function, ``PyInit_m``, of ``size`` bytes at ``CODE``."""

    def __init__(self, size: int) -> None:
        super().__init__(("PyInit_m",))
        self.size = size

    def function_extent(self, name: str) -> Optional[Tuple[int, int]]:
        return (CODE, self.size)


def _pyinit(middle: List[bytes], before: bytes = b"\x53",
            call: Tuple[bytes, int, bytes] = (b"\xff\x15", GOT_SLOT, b"")) -> bytes:
    """push %rbx; lea _PYO3_DEF(%rip),%rsi; <middle>; call; ret, with correct displacements."""
    head = before + b"\x48\x8d\x35"
    head += struct.pack("<i", PYO3_DEF - (CODE + len(head) + 4))
    body = head + b"".join(middle) + call[0]
    body += struct.pack("<i", call[1] - (CODE + len(body) + 4)) + call[2]
    return body + b"\xc3"


LEA_RDI = b"\x48\x8d\x7c\x24\x20"  # lea 0x20(%rsp), %rdi
XOR_EDX = b"\x31\xd2"
DEFINITION = [PYO3_DEF + 8]


def test_exact_call_gives_the_constant():
    result = read_module_factory_call(_image(_pyinit([LEA_RDI, XOR_EDX])), "PyInit_m", DEFINITION)
    assert isinstance(result, ModuleFactoryCall) and result.gil_used is False
    result = read_module_factory_call(_image(_pyinit([b"\xba\x01\x00\x00\x00", LEA_RDI])), "PyInit_m", DEFINITION)
    assert isinstance(result, ModuleFactoryCall) and result.gil_used is True


def test_direct_call_into_the_file_counts():
    code = _pyinit([LEA_RDI, XOR_EDX], call=(b"\xe8", CALLEE, b""))
    assert isinstance(read_module_factory_call(_image(code), "PyInit_m", DEFINITION), ModuleFactoryCall)


def test_flag_from_a_register_is_refused():
    code = _pyinit([LEA_RDI, b"\x89\xda"])  # mov %ebx, %edx
    assert "constant flag" in read_module_factory_call(_image(code), "PyInit_m", DEFINITION)


def test_extra_instruction_before_the_call_is_refused():
    code = _pyinit([LEA_RDI, XOR_EDX, b"\x48\x89\xc1"])  # mov %rax, %rcx
    assert isinstance(read_module_factory_call(_image(code), "PyInit_m", DEFINITION), str)


def test_unrelocated_got_slot_is_refused():
    code = _pyinit([LEA_RDI, XOR_EDX])
    assert isinstance(read_module_factory_call(_image(code, relocated_got=False), "PyInit_m", DEFINITION), str)


def test_jump_into_the_block_is_refused():
    # Another path reaching the call with its own %edx: a jmp (at offset 0) to the xor.
    code = _pyinit([LEA_RDI, XOR_EDX], before=b"\xeb\x00")
    code = b"\xeb" + struct.pack("<b", code.index(XOR_EDX) - 2) + code[2:]
    assert "jump" in read_module_factory_call(_image(code), "PyInit_m", DEFINITION)


def test_second_reference_to_the_definition_is_refused():
    code = _pyinit([LEA_RDI, XOR_EDX])
    extra = b"\x48\x8d\x05" + struct.pack("<i", PYO3_DEF + 0x10 - (CODE + len(code) + 7))  # lea def+16(%rip),%rax
    assert "2 times" in read_module_factory_call(_image(code + extra), "PyInit_m", DEFINITION)


def test_other_machines_are_not_read():
    assert "x86-64" in read_module_factory_call(_image(_pyinit([LEA_RDI, XOR_EDX]), machine="aarch64"),
                                                "PyInit_m", DEFINITION)
