"""A focused Mach-O reader for macOS extension modules (thin or universal).

It reads segments and sections, the symbol table for exported ``_PyInit_*`` and imported
``_PyUnstable_Module_SetGIL``/``_PyModuleDef_Init``, and the rebase opcodes of
``LC_DYLD_INFO``: each rebase names a pointer slot, and the file holds the pointer's
unslid target, which is what slot-array verification needs. Binaries that use chained
fixups instead (``LC_DYLD_CHAINED_FIXUPS``, newer deployment targets) get no relocation
reader, so the rules never trust slot-shaped data there.

A universal binary is judged by its first slice: wheels build every slice from the same
sources with the same flags, so the declaration does not differ between them.
"""

from __future__ import annotations

import struct
from typing import List, Optional, Tuple

from nogil_toolkit.inspect.image import BinaryImage, Buffer, MalformedBinary, NameLists, Relocations, Section
from nogil_toolkit.marker import MACHO_SEGMENT_SECTION

_THIN = {b"\xcf\xfa\xed\xfe": ("<", True), b"\xce\xfa\xed\xfe": ("<", False),
         b"\xfe\xed\xfa\xcf": (">", True), b"\xfe\xed\xfa\xce": (">", False)}
_FAT = (b"\xca\xfe\xba\xbe", b"\xca\xfe\xba\xbf")
_CPU = {0x01000007: "x86_64", 0x0100000C: "arm64", 7: "i386", 12: "arm", 0x0200000C: "arm64_32"}
_LC_SEGMENT, _LC_SYMTAB, _LC_SEGMENT_64 = 0x1, 0x2, 0x19
_LC_DYLD_INFO, _LC_DYLD_INFO_ONLY = 0x22, 0x80000022
_N_STAB, _N_TYPE, _N_EXT, _N_UNDF, _N_SECT = 0xE0, 0x0E, 0x01, 0x0, 0x0E
_ZEROFILL_TYPES = {0x1, 0xC, 0x12}
_S_ATTR_INSTRUCTIONS = 0x80000000 | 0x400
_VM_PROT_WRITE = 0x2
# Java class files share the fat magic; a real universal binary has a handful of slices.
_MAX_FAT_ARCHS = 32
_MAX_COMMANDS = 1 << 16


def is_macho(head: bytes) -> bool:
    return head[:4] in _THIN or head[:4] in _FAT


def _thin_slice(data: Buffer) -> Buffer:
    """The first architecture of a universal binary (or the data itself when thin)."""
    if bytes(data[:4]) not in _FAT:
        return data
    wide = data[3] == 0xBF
    (count,) = struct.unpack_from(">I", data, 4)
    if not 0 < count <= _MAX_FAT_ARCHS:
        raise MalformedBinary("not a universal Mach-O binary (Java class file?)")
    if wide:
        _cpu, _sub, offset, size, _align, _res = struct.unpack_from(">iiQQII", data, 8)
    else:
        _cpu, _sub, offset, size, _align = struct.unpack_from(">iiIII", data, 8)
    if offset + size > len(data) or size < 32:
        raise MalformedBinary("universal Mach-O slice beyond end of file")
    return bytes(data[offset:offset + size])


def load(data: Buffer) -> BinaryImage:
    """Read a Mach-O file into the format-neutral image (without relocations)."""
    data = _thin_slice(data)
    magic = bytes(data[:4])
    if magic not in _THIN:
        raise MalformedBinary("universal Mach-O slice is not a Mach-O file")
    end, is64 = _THIN[magic]
    cputype, _sub, _filetype, ncmds, _size, _flags = struct.unpack_from(end + "iIIIII", data, 4)
    if ncmds > _MAX_COMMANDS:
        raise MalformedBinary(f"Mach-O header claims {ncmds} load commands")
    position = 32 if is64 else 28
    sections: List[Section] = []
    segments: List[Tuple[int, int]] = []
    exports: Tuple[str, ...] = ()
    imports: frozenset = frozenset()
    marker = None
    rebase: Optional[Tuple[int, int]] = None
    for _ in range(ncmds):
        command, size = struct.unpack_from(end + "II", data, position)
        if size < 8:
            raise MalformedBinary("Mach-O load command with size < 8")
        if command in (_LC_DYLD_INFO, _LC_DYLD_INFO_ONLY):
            rebase = struct.unpack_from(end + "II", data, position + 8)
        if command in (_LC_SEGMENT, _LC_SEGMENT_64):
            segments.append(_segment_range(data, position, end, command == _LC_SEGMENT_64))
            for section in _segment_sections(data, position, end, command == _LC_SEGMENT_64):
                sections.append(section[0])
                if section[1] == MACHO_SEGMENT_SECTION and section[0].in_file:
                    marker = section[0]
        elif command == _LC_SYMTAB:
            exports, imports = _symbols(data, position, end, is64)
        position += size
    image = BinaryImage(format="macho", machine=_CPU.get(cputype, f"cpu-{cputype:#x}"),
                        pointer_size=8 if is64 else 4, byte_order="little" if end == "<" else "big",
                        data=data, symbols=NameLists(exports, imports), sections=sections,
                        relocation_reader=None)
    if rebase is not None and rebase[1]:
        opcodes = bytes(data[rebase[0]:rebase[0] + rebase[1]])
        if len(opcodes) != rebase[1]:
            raise MalformedBinary("Mach-O rebase opcodes beyond end of file")
        image.relocation_reader = lambda image: _rebases(image, opcodes, segments)
    if marker is not None:
        image.marker_region = (marker.offset, marker.size)
    return image


def _segment_range(data: Buffer, position: int, end: str, is64: bool) -> Tuple[int, int]:
    """(vmaddr, vmsize) of a segment command."""
    return struct.unpack_from(end + ("QQ" if is64 else "II"), data, position + 24)


def _uleb(opcodes: bytes, position: int) -> Tuple[int, int]:
    value = shift = 0
    while True:
        if position >= len(opcodes) or shift > 63:
            raise MalformedBinary("Mach-O rebase opcodes: bad ULEB128")
        byte = opcodes[position]
        position += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return value, position


def _rebases(image: BinaryImage, opcodes: bytes, segments: List[Tuple[int, int]]) -> Relocations:
    """Run the ``LC_DYLD_INFO`` rebase program: every pointer slot the loader slides."""
    word = image.pointer_size
    locations: List[int] = []
    segment = offset = position = 0
    # A corrupt program could ask for 2**64 rebases; real ones stay inside their segment.
    budget = sum(size for _, size in segments) // word + 1

    def emit(count: int, step: int) -> None:
        nonlocal offset, budget
        if not 0 <= segment < len(segments) or count > budget:
            raise MalformedBinary("Mach-O rebase outside any segment")
        budget -= count
        for _ in range(count):
            locations.append(segments[segment][0] + offset)
            offset += step

    while position < len(opcodes):
        opcode, immediate = opcodes[position] & 0xF0, opcodes[position] & 0x0F
        position += 1
        if opcode == 0x00:  # REBASE_OPCODE_DONE
            break
        if opcode == 0x10:  # SET_TYPE_IMM (only pointer rebases exist in practice)
            continue
        if opcode == 0x20:  # SET_SEGMENT_AND_OFFSET_ULEB
            segment = immediate
            offset, position = _uleb(opcodes, position)
        elif opcode == 0x30:  # ADD_ADDR_ULEB
            delta, position = _uleb(opcodes, position)
            offset += delta
        elif opcode == 0x40:  # ADD_ADDR_IMM_SCALED
            offset += immediate * word
        elif opcode == 0x50:  # DO_REBASE_IMM_TIMES
            emit(immediate, word)
        elif opcode == 0x60:  # DO_REBASE_ULEB_TIMES
            count, position = _uleb(opcodes, position)
            emit(count, word)
        elif opcode == 0x70:  # DO_REBASE_ADD_ADDR_ULEB
            delta, position = _uleb(opcodes, position)
            emit(1, word + delta)
        elif opcode == 0x80:  # DO_REBASE_ULEB_TIMES_SKIPPING_ULEB
            count, position = _uleb(opcodes, position)
            skip, position = _uleb(opcodes, position)
            emit(count, word + skip)
        else:
            raise MalformedBinary(f"Mach-O rebase opcode {opcode:#x} unknown")
    sources: List[int] = []
    targets: List[int] = []
    for location in locations:
        stored = image.read(location, word)
        if stored is not None:
            sources.append(location)
            targets.append(int.from_bytes(stored, image.byte_order))
    return Relocations(frozenset(locations), sources, targets)


def _segment_sections(data: Buffer, position: int, end: str, is64: bool) -> List[Tuple[Section, Tuple[str, str]]]:
    if is64:
        _segname, _vmaddr, _vmsize, _fileoff, _filesize, _maxprot, initprot, nsects, _flags = struct.unpack_from(
            end + "16sQQQQiiII", data, position + 8)
        layout, first = struct.Struct(end + "16s16sQQIIIIIIII"), position + 72
    else:
        _segname, _vmaddr, _vmsize, _fileoff, _filesize, _maxprot, initprot, nsects, _flags = struct.unpack_from(
            end + "16sIIIIiiII", data, position + 8)
        layout, first = struct.Struct(end + "16s16sIIIIIIIII"), position + 56
    result = []
    for index in range(nsects):
        fields = layout.unpack_from(data, first + index * layout.size)
        sectname, segname, addr, size, offset, flags = fields[0], fields[1], fields[2], fields[3], fields[4], fields[8]
        names = (segname.rstrip(b"\0").decode("latin-1"), sectname.rstrip(b"\0").decode("latin-1"))
        in_file = (flags & 0xFF) not in _ZEROFILL_TYPES
        result.append((Section(f"{names[0]},{names[1]}", addr, size, offset, bool(initprot & _VM_PROT_WRITE),
                               bool(flags & _S_ATTR_INSTRUCTIONS), in_file), names))
    return result


def _symbols(data: Buffer, position: int, end: str, is64: bool) -> Tuple[Tuple[str, ...], frozenset]:
    symoff, nsyms, stroff, strsize = struct.unpack_from(end + "IIII", data, position + 8)
    entry = struct.Struct(end + ("IBBHQ" if is64 else "IBBHI"))
    if symoff + nsyms * entry.size > len(data) or stroff + strsize > len(data):
        raise MalformedBinary("Mach-O symbol table beyond end of file")
    strings = bytes(data[stroff:stroff + strsize])
    exports, imports = [], []
    for strx, ntype, _sect, _desc, _value in entry.iter_unpack(bytes(data[symoff:symoff + nsyms * entry.size])):
        if ntype & _N_STAB or not ntype & _N_EXT:
            continue
        stop = strings.find(b"\0", strx)
        name = strings[strx:stop].decode("utf-8", "replace") if stop >= 0 else ""
        if name.startswith("_"):
            name = name[1:]
        if ntype & _N_TYPE == _N_SECT:
            exports.append(name)
        elif ntype & _N_TYPE == _N_UNDF:
            imports.append(name)
    return tuple(exports), frozenset(imports)
