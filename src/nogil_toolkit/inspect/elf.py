"""A focused ELF reader: headers, section headers, ``.dynsym``, dynamic relocations, sections.

Why not pyelftools: it is a complete, general parser and costs tens of milliseconds per
module, while an environment scan needs about one millisecond per module. This reader
decodes only the structures the GIL evidence needs, straight from a buffer (usually an
``mmap``), with precompiled ``struct`` layouts and ``array`` views for the large tables.
pyelftools stays the reference: the test suite compares this reader's symbols and
relocations with it.

Every bound is checked against the buffer; anything inconsistent raises
:class:`~nogil_toolkit.inspect.image.MalformedBinary`.
"""

from __future__ import annotations

import operator
import struct
import sys
from array import array
from itertools import compress, repeat
from dataclasses import dataclass
from typing import Dict, Iterator, List, Optional, Tuple

from nogil_toolkit.inspect.image import BinaryImage, Buffer, MalformedBinary, Relocations, Section
from nogil_toolkit.marker import ELF_SECTION

MAGIC = b"\x7fELF"

_CLASS_32, _CLASS_64 = 1, 2
_DATA_LSB, _DATA_MSB = 1, 2

SHT_NOBITS = 8
SHT_RELA = 4
SHT_REL = 9
SHT_DYNSYM = 11
SHT_RELR = 19
SHF_WRITE = 0x1
SHF_ALLOC = 0x2
SHF_EXECINSTR = 0x4
SHN_UNDEF = 0
SHN_XINDEX = 0xFFFF
_STB_LOCAL = 0
_STT_FUNC = 2

# e_machine -> (name, base-relative relocation types, symbol+addend word-sized types).
# Only these two families let the reader recover where a pointer points; everything else
# (PLT slots, TLS, copies) is a "relocated location" without a static target.
_MACHINES: Dict[int, Tuple[str, frozenset, frozenset]] = {
    62: ("x86_64", frozenset({8, 38}), frozenset({1, 6})),  # RELATIVE, RELATIVE64 / 64, GLOB_DAT
    183: ("aarch64", frozenset({1027}), frozenset({257, 1025})),  # RELATIVE / ABS64, GLOB_DAT
    3: ("i386", frozenset({8}), frozenset({1, 6})),  # RELATIVE / 32, GLOB_DAT
    40: ("arm", frozenset({23}), frozenset({2, 21})),  # RELATIVE / ABS32, GLOB_DAT
    21: ("ppc64", frozenset({22}), frozenset({38, 20})),  # RELATIVE / ADDR64, GLOB_DAT
    22: ("s390x", frozenset({12}), frozenset({22, 10})),  # RELATIVE / 64, GLOB_DAT
    243: ("riscv", frozenset({3}), frozenset({2})),  # RELATIVE / 64 (or 32)
    258: ("loongarch", frozenset({3}), frozenset({2})),  # RELATIVE / 64
}

# A corrupt count must not make the reader allocate or loop without bound.
_MAX_SECTIONS = 65536


@dataclass(frozen=True)
class ElfSymbol:
    """One ``.dynsym`` entry."""

    name: str
    value: int
    size: int
    bind: int
    type: int
    section_index: int

    @property
    def defined(self) -> bool:
        return self.section_index != SHN_UNDEF


@dataclass(frozen=True)
class SymbolTable:
    """``.dynsym`` as parallel columns (index = symbol index)."""

    names: List[str]
    values: List[int]
    sizes: List[int]
    infos: List[int]
    section_indexes: List[int]

    def exported(self) -> List[str]:
        """Names of defined, non-local symbols."""
        keep = map(operator.and_, map(operator.ne, self.section_indexes, repeat(SHN_UNDEF)),
                   map(operator.ne, map(operator.rshift, self.infos, repeat(4)), repeat(_STB_LOCAL)))
        return [n for n in compress(self.names, keep) if n]

    def imported(self) -> List[str]:
        """Names of undefined symbols (what the library expects the interpreter to provide)."""
        return [n for n in compress(self.names, map(operator.eq, self.section_indexes, repeat(SHN_UNDEF))) if n]

    def function_extent(self, name: str) -> Optional[Tuple[int, int]]:
        """(address, size) of the defined, exported function ``name``, if there is one."""
        try:
            index = self.names.index(name)
        except ValueError:
            return None
        info = self.infos[index]
        if (self.section_indexes[index] == SHN_UNDEF or info >> 4 == _STB_LOCAL
                or info & 0xF != _STT_FUNC):
            return None
        return self.values[index], self.sizes[index]

    def defined_value(self, index: int) -> Optional[int]:
        """Value of symbol ``index`` if it is defined in this file, else ``None``."""
        if 0 < index < len(self.values) and self.section_indexes[index] != SHN_UNDEF:
            return self.values[index]
        return None


@dataclass(frozen=True)
class ElfRelocation:
    """One dynamic relocation; ``addend`` is ``None`` for REL and RELR entries (implicit addend)."""

    offset: int
    type: int
    symbol_index: int
    addend: Optional[int]
    packed: bool = False
    """From a RELR table: a base-relative fix-up stored as a bitmap, not as an entry."""


@dataclass(frozen=True)
class _SectionHeader:
    name: str
    type: int
    flags: int
    address: int
    offset: int
    size: int
    link: int
    entsize: int


class ElfReader:
    """Decodes the parts of one ELF file that matter for module inspection."""

    def __init__(self, data: Buffer) -> None:
        if len(data) < 52 or bytes(data[:4]) != MAGIC:
            raise MalformedBinary("not an ELF file")
        ident_class, ident_data = data[4], data[5]
        if ident_class not in (_CLASS_32, _CLASS_64) or ident_data not in (_DATA_LSB, _DATA_MSB):
            raise MalformedBinary(f"unsupported ELF class {ident_class} / data encoding {ident_data}")
        self.data = data
        self.is64 = ident_class == _CLASS_64
        self.byte_order = "little" if ident_data == _DATA_LSB else "big"
        self.pointer_size = 8 if self.is64 else 4
        end = "<" if ident_data == _DATA_LSB else ">"
        self._end = end
        header = struct.Struct(end + ("HHIQQQIHHHHHH" if self.is64 else "HHIIIIIHHHHHH"))
        if len(data) < 16 + header.size:
            raise MalformedBinary("ELF header truncated")
        (_e_type, self.machine_id, _version, _entry, _phoff, shoff, _flags, _ehsize, _phentsize,
         _phnum, shentsize, shnum, shstrndx) = header.unpack_from(data, 16)
        self.machine, self._relative_types, self._absolute_types = _MACHINES.get(
            self.machine_id, (f"em-{self.machine_id}", frozenset(), frozenset())
        )
        self.sections = self._read_section_headers(shoff, shentsize, shnum, shstrndx)

    # -- section headers -------------------------------------------------------------------

    def _read_section_headers(self, shoff: int, shentsize: int, shnum: int,
                              shstrndx: int) -> List[_SectionHeader]:
        layout = struct.Struct(self._end + ("IIQQQQIIQQ" if self.is64 else "IIIIIIIIII"))
        if shoff == 0:
            raise MalformedBinary("ELF file has no section headers")
        if shentsize < layout.size:
            raise MalformedBinary(f"ELF section header size {shentsize} too small")
        if shoff + layout.size > len(self.data):
            raise MalformedBinary("ELF section header table beyond end of file")
        first = layout.unpack_from(self.data, shoff)
        if shnum == 0:  # more than 0xff00 sections: the real count is in section 0
            shnum = first[5]
        if shstrndx == SHN_XINDEX:
            shstrndx = first[6]
        if shnum > _MAX_SECTIONS or shoff + shnum * shentsize > len(self.data):
            raise MalformedBinary(f"ELF section header table ({shnum} entries) beyond end of file")
        raw = [layout.unpack_from(self.data, shoff + i * shentsize) for i in range(shnum)]
        names = b""
        if 0 < shstrndx < shnum:
            names = self._slice(raw[shstrndx][4], raw[shstrndx][5], "section name table")
        headers = []
        for name_off, sh_type, flags, addr, offset, size, link, _info, _align, entsize in raw:
            end = names.find(b"\0", name_off) if name_off < len(names) else -1
            name = names[name_off:end].decode("latin-1") if end >= 0 else ""
            headers.append(_SectionHeader(name, sh_type, flags, addr, offset, size, link, entsize))
        return headers

    def _slice(self, offset: int, size: int, what: str) -> bytes:
        if offset < 0 or size < 0 or offset + size > len(self.data):
            raise MalformedBinary(f"ELF {what} beyond end of file")
        return bytes(self.data[offset:offset + size])

    def section_data(self, header: _SectionHeader) -> bytes:
        """The file bytes of a section (empty for ``SHT_NOBITS``)."""
        if header.type == SHT_NOBITS:
            return b""
        return self._slice(header.offset, header.size, f"section {header.name!r}")

    def _dynsym_header(self) -> Optional[_SectionHeader]:
        return next((h for h in self.sections if h.type == SHT_DYNSYM), None)

    # -- symbols ---------------------------------------------------------------------------

    def may_export(self, prefix: bytes) -> bool:
        """Whether ``prefix`` occurs in the dynamic string table at all (a cheap pre-check)."""
        header = self._dynsym_header()
        if header is None or not 0 < header.link < len(self.sections):
            return False
        strings = self.sections[header.link]
        return self.data.find(prefix, strings.offset, strings.offset + strings.size) >= 0

    def symbol_table(self) -> SymbolTable:
        """The ``.dynsym`` table as columns, decoded with C-level ``map``/``zip`` passes.

        Wheels bundle libraries with tens of thousands of symbols; building one Python
        object per symbol would dominate the time of an environment scan.
        """
        header = self._dynsym_header()
        if header is None:
            return SymbolTable([], [], [], [], [])
        if not 0 < header.link < len(self.sections):
            raise MalformedBinary("ELF .dynsym has no string table")
        strings = self.section_data(self.sections[header.link])
        table = self.section_data(header)
        layout = struct.Struct(self._end + ("IBBHQQ" if self.is64 else "IIIBBH"))
        if header.entsize in (0, layout.size):
            rows = list(layout.iter_unpack(table[:len(table) - len(table) % layout.size]))
        elif header.entsize > layout.size:
            rows = [layout.unpack_from(table, o) for o in range(0, len(table) - layout.size + 1, header.entsize)]
        else:
            raise MalformedBinary(f"ELF .dynsym entry size {header.entsize} too small")
        if not rows:
            return SymbolTable([], [], [], [], [])
        columns = list(zip(*rows))
        if self.is64:
            name_offsets, infos, _other, shndx, values, sizes = columns
        else:
            name_offsets, values, sizes, infos, _other, shndx = columns
        ends = list(map(strings.find, repeat(b"\0"), name_offsets))
        # An offset past the table (find() == -1) yields an empty name, like a corrupt entry.
        raw_names = map(strings.__getitem__, map(slice, name_offsets, map(max, ends, name_offsets)))
        names = list(map(operator.methodcaller("decode", "utf-8", "replace"), raw_names))
        return SymbolTable(names, list(values), list(sizes), list(infos), list(shndx))

    def dynamic_symbols(self) -> List[ElfSymbol]:
        """All ``.dynsym`` entries in table order (index 0, the null symbol, included)."""
        table = self.symbol_table()
        return [ElfSymbol(n, v, s, i >> 4, i & 0xF, x)
                for n, v, s, i, x in zip(table.names, table.values, table.sizes, table.infos, table.section_indexes)]

    # -- relocations -----------------------------------------------------------------------

    def _relocation_sections(self) -> Iterator[_SectionHeader]:
        """Relocation sections the dynamic loader applies (allocated, against ``.dynsym``)."""
        for header in self.sections:
            if header.type in (SHT_RELA, SHT_REL, SHT_RELR) and header.flags & SHF_ALLOC:
                yield header

    def relocations(self) -> List[ElfRelocation]:
        """Every dynamic relocation, RELR entries expanded to base-relative ones."""
        relative_type = min(self._relative_types) if self._relative_types else 0
        result: List[ElfRelocation] = []
        for header in self._relocation_sections():
            if header.type == SHT_RELR:
                result.extend(ElfRelocation(o, relative_type, 0, None, packed=True) for o in self._relr_offsets(header))
                continue
            offsets, infos, addends = self._table_columns(header)
            for index, (offset, info) in enumerate(zip(offsets, infos)):
                symbol, rtype = (info >> 32, info & 0xFFFFFFFF) if self.is64 else (info >> 8, info & 0xFF)
                result.append(ElfRelocation(offset, rtype, symbol, addends[index] if addends is not None else None))
        return result

    def _table_columns(self, header: _SectionHeader) -> Tuple[list, list, Optional[list]]:
        """Columns (offsets, infos, addends) of a REL/RELA table, decoded at C speed."""
        word = 8 if self.is64 else 4
        fields = 3 if header.type == SHT_RELA else 2
        if header.entsize not in (0, word * fields):
            raise MalformedBinary(f"ELF {header.name} has entry size {header.entsize}")
        raw = self.section_data(header)
        raw = raw[:len(raw) - len(raw) % (word * fields)]
        words = _word_array(raw, word, self.byte_order)
        offsets = words[0::fields].tolist()
        infos = words[1::fields].tolist()
        addends = words[2::fields].tolist() if fields == 3 else None
        return offsets, infos, addends

    def _relr_offsets(self, header: _SectionHeader) -> Iterator[int]:
        """Expand a RELR table: an address entry, then bitmaps of the following words."""
        word = 8 if self.is64 else 4
        bits = word * 8 - 1
        raw = self.section_data(header)
        base = 0
        for entry in _word_array(raw[:len(raw) - len(raw) % word], word, self.byte_order).tolist():
            if entry & 1 == 0:
                yield entry
                base = entry + word
            else:
                bitmap, slot = entry >> 1, base
                while bitmap:
                    if bitmap & 1:
                        yield slot
                    bitmap >>= 1
                    slot += word
                base += bits * word

    @property
    def knows_relocation_types(self) -> bool:
        """Whether this machine's pointer relocation types are known to the reader."""
        return bool(self._relative_types)

    def resolved_relocations(self, symbols: SymbolTable, image: BinaryImage) -> Relocations:
        """Reduce the dynamic relocations to relocated locations and known pointer targets.

        Tables can hold 100k entries, so the common case (RELA, base-relative) is filtered
        with ``map``/``compress`` at C speed; only symbolic entries, which are few, and the
        implicit-addend formats (REL, RELR) are decoded one by one.
        """
        mask = (1 << (8 * self.pointer_size)) - 1
        locations: List[int] = []
        sources: List[int] = []
        targets: List[int] = []
        for header in self._relocation_sections():
            if header.type == SHT_RELR:
                offsets = list(self._relr_offsets(header))
                locations.extend(offsets)
                self._add_implicit(image, offsets, None, sources, targets)
                continue
            offsets, infos, addends = self._table_columns(header)
            locations.extend(offsets)
            type_mask = 0xFFFFFFFF if self.is64 else 0xFF
            types = list(map(operator.and_, infos, repeat(type_mask)))
            relative = list(map(self._relative_types.__contains__, types))
            if addends is not None:
                sources.extend(compress(offsets, relative))
                targets.extend(compress(addends, relative))
            else:
                self._add_implicit(image, list(compress(offsets, relative)), None, sources, targets)
            shift = 32 if self.is64 else 8
            for index in compress(range(len(types)), map(self._absolute_types.__contains__, types)):
                base = symbols.defined_value(infos[index] >> shift)
                if base is None:
                    continue
                if addends is not None:
                    sources.append(offsets[index])
                    targets.append((base + addends[index]) & mask)
                else:
                    self._add_implicit(image, [offsets[index]], base, sources, targets)
        return Relocations(frozenset(locations), sources, targets)

    @staticmethod
    def _add_implicit(image: BinaryImage, offsets: List[int], base: Optional[int],
                      sources: List[int], targets: List[int]) -> None:
        """REL/RELR fix-ups keep their addend in the relocated word itself."""
        mask = (1 << (8 * image.pointer_size)) - 1
        for offset in offsets:
            stored = _read_word(image, offset)
            if stored is not None:
                sources.append(offset)
                targets.append((stored + (base or 0)) & mask)


def _word_array(raw: bytes, word: int, byte_order: str) -> array:
    """``raw`` as unsigned words of the file's size and byte order."""
    codes = [c for c in "IL" if array(c).itemsize == 4] if word == 4 else [c for c in "LQ" if array(c).itemsize == 8]
    words = array(codes[0])
    words.frombytes(raw)
    if byte_order != sys.byteorder:
        words.byteswap()
    return words


def _read_word(image: BinaryImage, address: int) -> Optional[int]:
    raw = image.read(address, image.pointer_size)
    return None if raw is None else int.from_bytes(raw, image.byte_order)


def load(data: Buffer) -> BinaryImage:
    """Read an ELF file into the format-neutral image the evidence rules work on."""
    reader = ElfReader(data)
    sections = [
        Section(
            name=h.name,
            address=h.address,
            size=h.size,
            offset=h.offset,
            writable=bool(h.flags & SHF_WRITE),
            executable=bool(h.flags & SHF_EXECINSTR),
            in_file=h.type != SHT_NOBITS,
        )
        for h in reader.sections
        if h.flags & SHF_ALLOC
    ]
    # Plain libraries (BLAS, libstdc++ copies in wheels) can export thousands of symbols;
    # when no PyInit_ name occurs in the string table there is nothing to decode.
    symbols = reader.symbol_table() if reader.may_export(b"PyInit_") else SymbolTable([], [], [], [], [])
    exports = tuple(symbols.exported())
    imports = frozenset(symbols.imported())
    marker = next((h for h in reader.sections if h.name == ELF_SECTION), None)
    image = BinaryImage(
        format="elf",
        machine=reader.machine,
        pointer_size=reader.pointer_size,
        byte_order=reader.byte_order,
        data=data,
        exports=exports,
        imports=imports,
        sections=sections,
        relocation_reader=None,
        marker_region=(marker.offset, len(reader.section_data(marker))) if marker is not None else None,
        function_reader=symbols.function_extent,
    )
    if reader.knows_relocation_types:
        image.relocation_reader = lambda: reader.resolved_relocations(symbols, image)
    return image
