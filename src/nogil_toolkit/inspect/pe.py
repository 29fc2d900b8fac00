"""A focused PE/COFF reader for Windows extension modules (``.pyd``).

It reads the section table, the export directory (``PyInit_*``), the import directory
(``PyUnstable_Module_SetGIL``, ``PyModuleDef_Init``) and the base-relocation table. Base
relocations list every absolute pointer in the image and the file stores each pointer's
preferred value, so pointer targets are known statically, just as ELF's RELATIVE
relocations give them: the same slot-array verification works on Windows.
"""

from __future__ import annotations

import struct
from typing import List, Tuple

from nogil_toolkit.inspect.image import BinaryImage, Buffer, MalformedBinary, NameLists, Relocations, Section
from nogil_toolkit.marker import PE_SECTION

_MACHINES = {0x8664: "x86_64", 0x14C: "i386", 0xAA64: "aarch64", 0x1C4: "arm"}
_SCN_UNINITIALIZED = 0x80
_SCN_EXECUTE = 0x20000000
_SCN_WRITE = 0x80000000
_DIR_EXPORT, _DIR_IMPORT, _DIR_BASERELOC = 0, 1, 5
_REL_HIGHLOW, _REL_DIR64 = 3, 10
_MAX_NAMES = 1 << 16
_MAX_IMPORTS = 1 << 16


def is_pe(head: bytes) -> bool:
    return head[:2] == b"MZ"


class _PeReader:
    def __init__(self, data: Buffer) -> None:
        self.data = data
        if len(data) < 0x40:
            raise MalformedBinary("PE file shorter than its DOS header")
        (pe_offset,) = struct.unpack_from("<I", data, 0x3C)
        if bytes(data[pe_offset:pe_offset + 4]) != b"PE\0\0":
            raise MalformedBinary("MZ file without a PE header (DOS executable?)")
        machine, nsections, _ts, _sym, _nsym, opt_size, _chars = struct.unpack_from("<HHIIIHH", data, pe_offset + 4)
        self.machine = _MACHINES.get(machine, f"pe-{machine:#x}")
        opt = pe_offset + 24
        (magic,) = struct.unpack_from("<H", data, opt)
        if magic == 0x20B:
            self.pointer_size = 8
            (self.image_base,) = struct.unpack_from("<Q", data, opt + 24)
            dirs_at, count_at = opt + 112, opt + 108
        elif magic == 0x10B:
            self.pointer_size = 4
            (self.image_base,) = struct.unpack_from("<I", data, opt + 28)
            dirs_at, count_at = opt + 96, opt + 92
        else:
            raise MalformedBinary(f"unknown PE optional header magic {magic:#x}")
        (ndirs,) = struct.unpack_from("<I", data, count_at)
        self.directories = [struct.unpack_from("<II", data, dirs_at + 8 * i) for i in range(min(ndirs, 16))]
        table = opt + opt_size
        self.raw_sections = []
        for index in range(nsections):
            (name, vsize, rva, raw_size, raw_ptr, _r, _l, _nr, _nl,
             flags) = struct.unpack_from("<8sIIIIIIHHI", data, table + 40 * index)
            self.raw_sections.append((name.rstrip(b"\0").decode("latin-1"), vsize, rva, raw_size, raw_ptr, flags))

    def sections(self) -> List[Section]:
        result = []
        for name, vsize, rva, raw_size, raw_ptr, flags in self.raw_sections:
            in_file = raw_size > 0 and not flags & _SCN_UNINITIALIZED
            size = min(vsize, raw_size) if in_file and vsize else (raw_size if in_file else vsize)
            result.append(Section(name, rva, size, raw_ptr, bool(flags & _SCN_WRITE),
                                  bool(flags & _SCN_EXECUTE), in_file))
        return result

    def directory(self, index: int) -> Tuple[int, int]:
        return self.directories[index] if index < len(self.directories) else (0, 0)


def _c_string(image: BinaryImage, rva: int) -> str:
    offset = image.file_offset(rva, 1)
    if offset is None:
        raise MalformedBinary(f"PE string at RVA {rva:#x} is outside the file")
    end = image.data.find(b"\0", offset, offset + 4096)
    if end < 0:
        raise MalformedBinary(f"PE string at RVA {rva:#x} is not terminated")
    return bytes(image.data[offset:end]).decode("latin-1")


def _exports(reader: _PeReader, image: BinaryImage) -> Tuple[str, ...]:
    rva, size = reader.directory(_DIR_EXPORT)
    if not rva or not size:
        return ()
    raw = image.read(rva, 40)
    if raw is None:
        raise MalformedBinary("PE export directory outside the file")
    count, names_rva = struct.unpack_from("<I", raw, 24)[0], struct.unpack_from("<I", raw, 32)[0]
    if count > _MAX_NAMES:
        raise MalformedBinary(f"PE export directory claims {count} names")
    table = image.read(names_rva, 4 * count) if count else b""
    if table is None:
        raise MalformedBinary("PE export name table outside the file")
    return tuple(_c_string(image, r) for (r,) in struct.iter_unpack("<I", table))


def _imports(reader: _PeReader, image: BinaryImage) -> frozenset:
    rva, _size = reader.directory(_DIR_IMPORT)
    names: List[str] = []
    if not rva:
        return frozenset()
    word = reader.pointer_size
    ordinal_flag = 1 << (8 * word - 1)
    for index in range(_MAX_IMPORTS):
        raw = image.read(rva + 20 * index, 20)
        if raw is None:
            raise MalformedBinary("PE import directory outside the file")
        lookup, _ts, _chain, dll, first = struct.unpack("<IIIII", raw)
        if not (lookup or dll or first):
            return frozenset(names)
        thunk = lookup or first
        for slot in range(_MAX_IMPORTS):
            entry = image.read(thunk + word * slot, word)
            if entry is None:
                raise MalformedBinary("PE import lookup table outside the file")
            value = int.from_bytes(entry, "little")
            if value == 0:
                break
            if not value & ordinal_flag:
                names.append(_c_string(image, (value & 0x7FFFFFFF) + 2))
    raise MalformedBinary("PE import directory is not terminated")


def _relocations(reader: _PeReader, image: BinaryImage) -> Relocations:
    rva, size = reader.directory(_DIR_BASERELOC)
    if not rva or not size:
        # A DLL linked /FIXED has no fix-ups; with no pointer evidence no array verifies.
        return Relocations(frozenset(), [], [])
    table = image.read(rva, size)
    if table is None:
        raise MalformedBinary("PE base relocation table outside the file")
    locations: List[int] = []
    sources: List[int] = []
    targets: List[int] = []
    word = reader.pointer_size
    wanted = _REL_DIR64 if word == 8 else _REL_HIGHLOW
    position = 0
    while position + 8 <= len(table):
        page, block = struct.unpack_from("<II", table, position)
        if block < 8 or position + block > len(table):
            break
        for (entry,) in struct.iter_unpack("<H", table[position + 8:position + block - (block - 8) % 2]):
            if entry >> 12 != wanted:
                continue
            location = page + (entry & 0xFFF)
            locations.append(location)
            stored = image.read(location, word)
            if stored is not None:
                sources.append(location)
                targets.append((int.from_bytes(stored, "little") - reader.image_base) % (1 << (8 * word)))
        position += block
    return Relocations(frozenset(locations), sources, targets)


def load(data: Buffer) -> BinaryImage:
    """Read a PE file into the format-neutral image."""
    reader = _PeReader(data)
    sections = reader.sections()
    image = BinaryImage(format="pe", machine=reader.machine, pointer_size=reader.pointer_size,
                        byte_order="little", data=data, symbols=NameLists(), sections=sections,
                        relocation_reader=None)
    image.symbols = NameLists(_exports(reader, image), _imports(reader, image))
    image.relocation_reader = lambda image: _relocations(reader, image)
    marker = next((s for s in sections if s.name == PE_SECTION and s.in_file), None)
    if marker is not None:
        image.marker_region = (marker.offset, marker.size)
    return image
