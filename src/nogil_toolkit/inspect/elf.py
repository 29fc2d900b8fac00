"""A focused ELF reader: headers, section headers, ``.dynsym``, dynamic relocations, sections.

Files whose section headers were removed (``sstrip``, or ``e_shoff``/``e_shnum`` zeroed)
still load: the dynamic loader never reads section headers, so everything the evidence
needs is also reachable from the program headers. The reader then takes the mapped
regions from ``PT_LOAD`` and the symbol and relocation tables from ``PT_DYNAMIC``
(``DT_SYMTAB``/``DT_STRTAB``, the symbol count from ``DT_HASH`` or ``DT_GNU_HASH``,
``DT_RELA``/``DT_REL``/``DT_RELR``/``DT_JMPREL``), and describes them as the section
headers a linker would have written, so the rest of the reader works unchanged.

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
from itertools import chain, compress, count, repeat
from typing import Callable, Dict, FrozenSet, Iterable, Iterator, List, NamedTuple, Optional, Sequence, Set, Tuple

from nogil_toolkit.inspect.image import BinaryImage, Buffer, MalformedBinary, Relocations, Section
from nogil_toolkit.marker import ELF_SECTION

MAGIC = b"\x7fELF"

_CLASS_32, _CLASS_64 = 1, 2
_DATA_LSB, _DATA_MSB = 1, 2

SHT_PROGBITS = 1
SHT_STRTAB = 3
SHT_NOBITS = 8
SHT_RELA = 4
SHT_REL = 9
SHT_DYNSYM = 11
SHT_RELR = 19
# Section types holding only the dynamic loader's or the unwinder's tables: hash tables,
# notes, symbol versions, x86-64 unwind tables (beside the types above).
_TABLE_TYPES = frozenset({SHT_RELA, SHT_REL, SHT_RELR, SHT_DYNSYM, 5, 7, 0x6FFFFFF6, 0x6FFFFFFD, 0x6FFFFFFE, 0x6FFFFFFF,
                          0x70000001})
# Unwind tables of type SHT_PROGBITS, known by their names (a file that misnames its data
# as one of them only hides strings from the generator fingerprint, like a file without them).
_TABLE_NAMES = frozenset({".eh_frame", ".eh_frame_hdr", ".gcc_except_table"})
SHF_WRITE = 0x1
SHF_ALLOC = 0x2
SHF_EXECINSTR = 0x4
SHN_UNDEF = 0
SHN_XINDEX = 0xFFFF
_STB_LOCAL = 0
_STT_FUNC = 2

PT_LOAD = 1
PT_DYNAMIC = 2
_PF_X, _PF_W = 1, 2
# Dynamic tags the reader needs when there are no section headers.
DT_NULL, DT_HASH, DT_STRTAB, DT_SYMTAB, DT_RELA, DT_RELASZ, DT_RELAENT = 0, 4, 5, 6, 7, 8, 9
DT_STRSZ, DT_SYMENT, DT_REL, DT_RELSZ, DT_RELENT, DT_PLTREL, DT_JMPREL = 10, 11, 17, 18, 19, 20, 23
DT_PLTRELSZ = 2
DT_RELRSZ, DT_RELR, DT_RELRENT = 35, 36, 37
DT_GNU_HASH = 0x6FFFFEF5
# A corrupt dynamic segment must not make the walk long: real ones have a few dozen entries.
_MAX_DYNAMIC_ENTRIES = 4096

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


class ElfSymbol(NamedTuple):
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


class SymbolTable:
    """``.dynsym`` as columns sliced straight from the table's bytes; names decoded on demand.

    A module imports hundreds of symbols, a bundled library exports thousands, and the rules
    ask about one prefix and a dozen names. So the columns are ``array`` slices of the raw
    table (no Python object per symbol, and only built when a question needs them), and a
    question about names first searches the string table: only the entries whose name
    offset is a hit are looked at and decoded.
    """

    def __init__(self, strings: bytes = b"", table: bytes = b"", is64: bool = True, byte_order: str = "little") -> None:
        self._strings = strings
        self._table = table
        self._is64 = is64
        self._byte_order = byte_order
        self._columns: Optional[Tuple[array, bytes, array, array, array]] = None
        self._names: Optional[List[str]] = None

    def _decoded(self) -> Tuple[array, bytes, array, array, array]:
        """(name offsets, infos, section indexes, values, sizes), index = symbol index."""
        if self._columns is None:
            table, order = self._table, self._byte_order
            halves = _word_array(table, 2, order)
            if self._is64:  # st_name, st_info, st_other, st_shndx, st_value, st_size
                words, wide = _word_array(table, 4, order), _word_array(table, 8, order)
                self._columns = (words[0::6], table[4::24], halves[3::12], wide[1::3], wide[2::3])
            else:  # st_name, st_value, st_size, st_info, st_other, st_shndx
                words = _word_array(table, 4, order)
                self._columns = (words[0::4], table[12::16], halves[7::8], words[1::4], words[2::4])
        return self._columns

    @property
    def names(self) -> List[str]:
        """Every entry's name (the null symbol's is empty)."""
        if self._names is None:
            self._names = _names_at(self._strings, self._decoded()[0]) if self._table else []
        return self._names

    def __len__(self) -> int:
        return len(self._decoded()[0]) if self._table else 0

    def _exported_mask(self) -> Iterator[int]:
        _, infos, section_indexes, _, _ = self._decoded()
        return map(operator.and_, map(operator.ne, section_indexes, repeat(SHN_UNDEF)),
                   map(operator.ne, map(operator.rshift, infos, repeat(4)), repeat(_STB_LOCAL)))

    def exports(self) -> Tuple[str, ...]:
        """Names of defined, non-local symbols."""
        if not self._table:
            return ()
        return tuple(n for n in compress(self.names, self._exported_mask()) if n)

    def imports(self) -> FrozenSet[str]:
        """Names of undefined symbols (what the library expects the interpreter to provide)."""
        if not self._table:
            return frozenset()
        undefined = map(operator.eq, self._decoded()[2], repeat(SHN_UNDEF))
        return frozenset(n for n in compress(self.names, undefined) if n)

    def exported_with(self, prefixes: Tuple[str, ...]) -> Tuple[str, ...]:
        """Defined, non-local symbols whose name starts with one of ``prefixes``, in table order."""
        hits = self._hits(prefix.encode() for prefix in prefixes)
        return tuple(self._decode(offset) for index, offset in self._entries_at(hits) if self._is_export(index))

    def imported_among(self, names: FrozenSet[str]) -> FrozenSet[str]:
        """Those of ``names`` some undefined symbol is called."""
        hits = self._hits(name.encode() + b"\0" for name in names)
        return frozenset(self._decode(offset) for index, offset in self._entries_at(hits)
                         if self._decoded()[2][index] == SHN_UNDEF)

    def function_extent(self, name: str) -> Optional[Tuple[int, int]]:
        """(address, size) of the defined, exported function ``name``, if there is one (the
        first entry of that name decides, as the loader's lookup would find it)."""
        entry = next(self._entries_at(self._hits([name.encode() + b"\0"])), None)
        if entry is None:
            return None
        index = entry[0]
        _, infos, section_indexes, values, sizes = self._decoded()
        if not self._is_export(index) or infos[index] & 0xF != _STT_FUNC:
            return None
        return values[index], sizes[index]

    def defined_values(self, indexes: List[int]) -> List[Optional[int]]:
        """The value of each symbol of ``indexes`` that is defined in this file, else ``None``
        (symbolic relocations name their symbol by index; most name an import)."""
        if not self._table or not indexes:
            return [None] * len(indexes)
        _, _, section_indexes, values, _ = self._decoded()
        count = len(values)
        return [values[i] if 0 < i < count and section_indexes[i] != SHN_UNDEF else None for i in indexes]

    def _is_export(self, index: int) -> bool:
        _, infos, section_indexes, _, _ = self._decoded()
        return section_indexes[index] != SHN_UNDEF and infos[index] >> 4 != _STB_LOCAL

    def _hits(self, needles: Iterable[bytes]) -> Set[int]:
        """Offsets in the string table where a name starting with one of ``needles`` would begin."""
        found: Set[int] = set()
        if not self._table:
            return found
        strings = self._strings
        for needle in needles:
            hit = strings.find(needle)
            while hit >= 0:
                found.add(hit)
                hit = strings.find(needle, hit + 1)
        return found

    def _entries_at(self, offsets: Set[int]) -> Iterator[Tuple[int, int]]:
        """(index, name offset) of the entries whose name starts at one of ``offsets``, in
        table order; names without their terminating NUL are empty, so never match."""
        if not offsets:
            return iter(())
        name_offsets = self._decoded()[0]
        return ((index, name_offsets[index])
                for index in compress(range(len(name_offsets)), map(offsets.__contains__, name_offsets))
                if self._strings.find(b"\0", name_offsets[index]) >= 0)

    def _decode(self, offset: int) -> str:
        end = self._strings.find(b"\0", offset)
        return self._strings[offset:end].decode("utf-8", "replace")


class ElfRelocation(NamedTuple):
    """One dynamic relocation; ``addend`` is ``None`` for REL and RELR entries (implicit addend)."""

    offset: int
    type: int
    symbol_index: int
    addend: Optional[int]
    packed: bool = False
    """From a RELR table: a base-relative fix-up stored as a bitmap, not as an entry."""


class _SectionHeader(NamedTuple):
    """One section header (a tuple: files have dozens, built on every read of a module)."""

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
        (_e_type, self.machine_id, _version, _entry, phoff, shoff, _flags, _ehsize, phentsize,
         phnum, shentsize, shnum, shstrndx) = header.unpack_from(data, 16)
        self.machine, self._relative_types, self._absolute_types = _MACHINES.get(
            self.machine_id, (f"em-{self.machine_id}", frozenset(), frozenset())
        )
        self.from_program_headers = not self._has_section_headers(shoff, shnum)
        if self.from_program_headers:
            self.sections = self._sections_from_program_headers(phoff, phentsize, phnum)
        else:
            self.sections = self._read_section_headers(shoff, shentsize, shnum, shstrndx)

    # -- section headers -------------------------------------------------------------------

    def _section_layout(self) -> struct.Struct:
        return struct.Struct(self._end + ("IIQQQQIIQQ" if self.is64 else "IIIIIIIIII"))

    def _has_section_headers(self, shoff: int, shnum: int) -> bool:
        """False when the file has no section header table (``sstrip``, or its fields zeroed).

        ``e_shnum`` 0 with a table present means "more than 0xff00 sections, the count is in
        section 0"; a zero count there too means there are none.
        """
        if shoff == 0:
            return False
        if shnum:
            return True
        layout = self._section_layout()
        if shoff + layout.size > len(self.data):
            raise MalformedBinary("ELF section header table beyond end of file")
        return layout.unpack_from(self.data, shoff)[5] != 0

    def _read_section_headers(self, shoff: int, shentsize: int, shnum: int,
                              shstrndx: int) -> List[_SectionHeader]:
        layout = self._section_layout()
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
        if shentsize == layout.size:
            raw = list(layout.iter_unpack(self.data[shoff:shoff + shnum * shentsize]))
        else:
            raw = [layout.unpack_from(self.data, shoff + i * shentsize) for i in range(shnum)]
        names = ""
        if 0 < shstrndx < shnum:
            # Latin-1 maps each byte to one character, so byte offsets index the text as is.
            names = self._slice(raw[shstrndx][4], raw[shstrndx][5], "section name table").decode("latin-1")
        name_offsets, types, flags, addresses, offsets, sizes, links, _info, _align, entsizes = zip(*raw)
        # A name without its NUL (find gives -1), or past the table, is empty.
        ends = map(max, map(names.find, repeat("\0"), name_offsets), name_offsets)
        return list(map(_SectionHeader, map(names.__getitem__, map(slice, name_offsets, ends)), types, flags,
                        addresses, offsets, sizes, links, entsizes))

    # -- program headers (files without section headers) -------------------------------------

    def _sections_from_program_headers(self, phoff: int, phentsize: int, phnum: int) -> List[_SectionHeader]:
        """Section headers reconstructed from ``PT_LOAD`` and ``PT_DYNAMIC``, as the loader sees the file.

        Each loaded segment becomes one file-backed region (plus a ``NOBITS`` one for the part
        beyond its file size, ``.bss``); the dynamic tables become ``.dynsym``, ``.dynstr`` and
        relocation sections at the places the dynamic entries name.
        """
        layout = struct.Struct(self._end + ("IIQQQQQQ" if self.is64 else "IIIIIIII"))
        if phoff == 0 or phnum == 0:
            raise MalformedBinary("ELF file has neither section headers nor program headers")
        if phentsize < layout.size or phoff + phnum * phentsize > len(self.data):
            raise MalformedBinary("ELF program header table beyond end of file")
        loads: List[Tuple[int, int, int, int, int]] = []  # (address, file size, memory size, offset, flags)
        dynamic: Optional[Tuple[int, int]] = None
        for index in range(phnum):
            fields = layout.unpack_from(self.data, phoff + index * phentsize)
            if self.is64:
                p_type, p_flags, p_offset, p_vaddr, _paddr, p_filesz, p_memsz, _align = fields
            else:
                p_type, p_offset, p_vaddr, _paddr, p_filesz, p_memsz, p_flags, _align = fields
            if p_type == PT_LOAD:
                if p_filesz > p_memsz or p_offset + p_filesz > len(self.data):
                    raise MalformedBinary("ELF loadable segment beyond end of file")
                loads.append((p_vaddr, p_filesz, p_memsz, p_offset, p_flags))
            elif p_type == PT_DYNAMIC:
                dynamic = (p_offset, p_filesz)
        if dynamic is None:
            raise MalformedBinary("ELF file has neither section headers nor a dynamic segment")
        headers = []
        for index, (address, file_size, memory_size, offset, p_flags) in enumerate(sorted(loads)):
            flags = SHF_ALLOC | (SHF_WRITE if p_flags & _PF_W else 0) | (SHF_EXECINSTR if p_flags & _PF_X else 0)
            headers.append(_SectionHeader(f"<segment {index}>", SHT_PROGBITS, flags, address, offset,
                                          file_size, 0, 0))
            if memory_size > file_size:
                headers.append(_SectionHeader(f"<segment {index} zero fill>", SHT_NOBITS, flags, address + file_size,
                                              offset + file_size, memory_size - file_size, 0, 0))
        tags = self._dynamic_entries(*dynamic)
        headers += self._dynamic_tables(tags, loads, len(headers))
        return headers

    def _dynamic_entries(self, offset: int, size: int) -> Dict[int, int]:
        """The ``PT_DYNAMIC`` entries up to ``DT_NULL`` (first occurrence of each tag)."""
        entry = struct.Struct(self._end + ("qQ" if self.is64 else "iI"))
        if offset + size > len(self.data):
            raise MalformedBinary("ELF dynamic segment beyond end of file")
        tags: Dict[int, int] = {}
        for index in range(min(size // entry.size, _MAX_DYNAMIC_ENTRIES)):
            tag, value = entry.unpack_from(self.data, offset + index * entry.size)
            if tag == DT_NULL:
                break
            tags.setdefault(tag, value)
        return tags

    def _dynamic_tables(self, tags: Dict[int, int], loads: List[Tuple[int, int, int, int, int]],
                        first_index: int) -> List[_SectionHeader]:
        """``.dynstr``, ``.dynsym`` and the relocation tables that the dynamic entries locate."""

        def offset_of(address: int, size: int, what: str) -> int:
            for base, file_size, _memory, offset, _flags in loads:
                if base <= address and address + size <= base + file_size:
                    return offset + (address - base)
            raise MalformedBinary(f"ELF {what} is not in a loaded segment")

        headers: List[_SectionHeader] = []
        if DT_SYMTAB in tags and DT_STRTAB in tags:
            strings = tags[DT_STRTAB]
            strings_size = tags.get(DT_STRSZ, 0)
            headers.append(_SectionHeader(".dynstr", SHT_STRTAB, SHF_ALLOC, strings,
                                          offset_of(strings, strings_size, "DT_STRTAB"), strings_size, 0, 0))
            entry_size = tags.get(DT_SYMENT, 24 if self.is64 else 16)
            count = self._symbol_count(tags, offset_of)
            headers.append(_SectionHeader(".dynsym", SHT_DYNSYM, SHF_ALLOC, tags[DT_SYMTAB],
                                          offset_of(tags[DT_SYMTAB], count * entry_size, "DT_SYMTAB"),
                                          count * entry_size, first_index, entry_size))
        word = 8 if self.is64 else 4
        tables = [(".rela.dyn", SHT_RELA, DT_RELA, DT_RELASZ, tags.get(DT_RELAENT, 3 * word)),
                  (".rel.dyn", SHT_REL, DT_REL, DT_RELSZ, tags.get(DT_RELENT, 2 * word)),
                  (".relr.dyn", SHT_RELR, DT_RELR, DT_RELRSZ, tags.get(DT_RELRENT, word))]
        ranges = []
        for name, sh_type, address_tag, size_tag, entry_size in tables:
            if address_tag in tags and tags.get(size_tag):
                ranges.append((tags[address_tag], tags[size_tag]))
                headers.append(_SectionHeader(name, sh_type, SHF_ALLOC, tags[address_tag],
                                              offset_of(tags[address_tag], tags[size_tag], name),
                                              tags[size_tag], 0, entry_size))
        if DT_JMPREL in tags and tags.get(DT_PLTRELSZ):
            address, size = tags[DT_JMPREL], tags[DT_PLTRELSZ]
            # Some linkers count the PLT relocations in DT_RELASZ as well: read them once.
            if not any(low <= address and address + size <= low + length for low, length in ranges):
                rela = tags.get(DT_PLTREL, DT_RELA) == DT_RELA
                entry_size = tags.get(DT_RELAENT, 3 * word) if rela else tags.get(DT_RELENT, 2 * word)
                headers.append(_SectionHeader(".rela.plt" if rela else ".rel.plt", SHT_RELA if rela else SHT_REL,
                                              SHF_ALLOC, address, offset_of(address, size, "DT_JMPREL"), size, 0,
                                              entry_size))
        return headers

    def _symbol_count(self, tags: Dict[int, int], offset_of: Callable[[int, int, str], int]) -> int:
        """Number of ``.dynsym`` entries: ``DT_HASH``'s chain count, or the end of ``DT_GNU_HASH``'s chains."""
        if DT_HASH in tags:
            table = offset_of(tags[DT_HASH], 8, "DT_HASH")
            return struct.unpack_from(self._end + "I", self.data, table + 4)[0]
        if DT_GNU_HASH not in tags:
            raise MalformedBinary("ELF dynamic segment has neither DT_HASH nor DT_GNU_HASH")
        table = offset_of(tags[DT_GNU_HASH], 16, "DT_GNU_HASH")
        buckets, symbol_offset, bloom_size, _shift = struct.unpack_from(self._end + "4I", self.data, table)
        bucket_start = table + 16 + bloom_size * (8 if self.is64 else 4)
        chain_start = bucket_start + 4 * buckets
        if chain_start > len(self.data):
            raise MalformedBinary("ELF DT_GNU_HASH table beyond end of file")
        last = max(struct.unpack_from(f"{self._end}{buckets}I", self.data, bucket_start), default=0)
        if last < symbol_offset:
            return symbol_offset
        # Follow the chain of the highest bucket to its end marker (low bit set), at C speed.
        start = chain_start + 4 * (last - symbol_offset)
        chain = _word_array(bytes(self.data[start:len(self.data) - (len(self.data) - start) % 4]), 4, self.byte_order)
        end = next(compress(count(), map(operator.and_, chain, repeat(1))), None)
        if end is None:
            raise MalformedBinary("ELF DT_GNU_HASH chain has no end")
        return last + end + 1

    def _slice(self, offset: int, size: int, what: str) -> bytes:
        if offset < 0 or size < 0 or offset + size > len(self.data):
            raise MalformedBinary(f"ELF {what} beyond end of file")
        return bytes(self.data[offset:offset + size])

    def section_data(self, header: _SectionHeader) -> bytes:
        """The file bytes of a section (empty for ``SHT_NOBITS``)."""
        if header.type == SHT_NOBITS:
            return b""
        return self._slice(header.offset, header.size, f"section {header.name!r}")

    def mapped_sections(self) -> List[_SectionHeader]:
        """The regions of the loaded image: allocated sections, or the segments they came from."""
        if self.from_program_headers:
            return [h for h in self.sections if h.type in (SHT_PROGBITS, SHT_NOBITS)]
        return [h for h in self.sections if h.flags & SHF_ALLOC]

    def _dynsym_header(self) -> Optional[_SectionHeader]:
        return next((h for h in self.sections if h.type == SHT_DYNSYM), None)

    # -- symbols ---------------------------------------------------------------------------

    def symbol_table(self) -> SymbolTable:
        """The ``.dynsym`` table, its entries brought to the standard size (a larger
        ``sh_entsize`` is allowed; the extra bytes of each entry are dropped)."""
        header = self._dynsym_header()
        if header is None:
            return SymbolTable()
        if not 0 < header.link < len(self.sections):
            raise MalformedBinary("ELF .dynsym has no string table")
        strings = self.section_data(self.sections[header.link])
        table = self.section_data(header)
        size = 24 if self.is64 else 16
        if header.entsize > size:
            table = b"".join(table[o:o + size] for o in range(0, len(table) - size + 1, header.entsize))
        elif header.entsize not in (0, size):
            raise MalformedBinary(f"ELF .dynsym entry size {header.entsize} too small")
        return SymbolTable(strings, table[:len(table) - len(table) % size], self.is64, self.byte_order)

    def dynamic_symbols(self) -> List[ElfSymbol]:
        """All ``.dynsym`` entries in table order (index 0, the null symbol, included)."""
        table = self.symbol_table()
        if not len(table):
            return []
        _, infos, section_indexes, values, sizes = table._decoded()
        return [ElfSymbol(n, v, s, i >> 4, i & 0xF, x)
                for n, v, s, i, x in zip(table.names, values, sizes, infos, section_indexes)]

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

    def _table_columns(self, header: _SectionHeader) -> Tuple[array, array, Optional[array]]:
        """Columns (offsets, infos, addends) of a REL/RELA table, as ``array`` slices.

        Arrays, not lists: most entries are only filtered (``compress``) or copied into a
        set, which iterate the array in C; a list would first build every integer object.
        """
        word = 8 if self.is64 else 4
        fields = 3 if header.type == SHT_RELA else 2
        if header.entsize not in (0, word * fields):
            raise MalformedBinary(f"ELF {header.name} has entry size {header.entsize}")
        raw = self.section_data(header)
        raw = raw[:len(raw) - len(raw) % (word * fields)]
        words = _word_array(raw, word, self.byte_order)
        return words[0::fields], words[1::fields], words[2::fields] if fields == 3 else None

    def _relocation_types(self, infos: array) -> array:
        """The type field of each ``r_info`` (low 32 bits on 64-bit files, low 8 on 32-bit).

        Taken by reinterpreting the words as narrower ones and keeping the low part of each,
        so no integer object is built per entry; the words are already in host byte order.
        """
        narrow = _word_array(infos.tobytes(), 4, sys.byteorder) if self.is64 else array("B", infos.tobytes())
        step = len(narrow) // len(infos) if len(infos) else 1
        return narrow[0 if sys.byteorder == "little" else step - 1::step]

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
        locations: List[Iterable[int]] = []  # one column per table, joined into a set once
        sources: List[int] = []
        targets: List[int] = []
        for header in self._relocation_sections():
            if header.type == SHT_RELR:
                offsets = list(self._relr_offsets(header))
                locations.append(offsets)
                self._add_implicit(image, offsets, None, sources, targets)
                continue
            offsets, infos, addends = self._table_columns(header)
            locations.append(offsets)
            types = self._relocation_types(infos)
            # The types present decide which passes a table needs: a PLT table holds no pointer
            # whose target is known, and many tables hold base-relative entries only.
            kinds = set(types)
            if kinds & self._relative_types:
                keep = None if kinds <= self._relative_types else list(map(self._relative_types.__contains__, types))
                chosen = offsets if keep is None else list(compress(offsets, keep))
                if addends is not None:
                    sources.extend(chosen)
                    targets.extend(addends if keep is None else compress(addends, keep))
                else:
                    self._add_implicit(image, chosen, None, sources, targets)
            if not kinds & self._absolute_types:
                continue
            shift = 32 if self.is64 else 8
            symbolic = list(compress(range(len(types)), map(self._absolute_types.__contains__, types)))
            bases = symbols.defined_values([infos[index] >> shift for index in symbolic])
            for index, base in zip(symbolic, bases):
                if base is None:
                    continue
                if addends is not None:
                    sources.append(offsets[index])
                    targets.append((base + addends[index]) & mask)
                else:
                    self._add_implicit(image, [offsets[index]], base, sources, targets)
        return Relocations(frozenset(chain.from_iterable(locations)), sources, targets)

    @staticmethod
    def _add_implicit(image: BinaryImage, offsets: Iterable[int], base: Optional[int],
                      sources: List[int], targets: List[int]) -> None:
        """REL/RELR fix-ups keep their addend in the relocated word itself."""
        mask = (1 << (8 * image.pointer_size)) - 1
        for offset in offsets:
            stored = _read_word(image, offset)
            if stored is not None:
                sources.append(offset)
                targets.append((stored + (base or 0)) & mask)


def _names_at(strings: bytes, offsets: Sequence[int]) -> List[str]:
    """The NUL-terminated names at ``offsets`` in a string table, decoded as UTF-8.

    Symbol names are almost always ASCII: then the table is decoded once and sliced as text,
    instead of slicing and decoding one ``bytes`` object per symbol (a third of the time of
    reading a large ``.dynsym``). Byte and character offsets agree only for ASCII, so other
    tables take the per-name path. An offset past the table (``find`` gives -1) yields an
    empty name, like a corrupt entry.
    """
    if strings.isascii():
        text = strings.decode("ascii")
        ends = map(text.find, repeat("\0"), offsets)
        return list(map(text.__getitem__, map(slice, offsets, map(max, ends, offsets))))
    ends = map(strings.find, repeat(b"\0"), offsets)
    raw_names = map(strings.__getitem__, map(slice, offsets, map(max, ends, offsets)))
    return list(map(operator.methodcaller("decode", "utf-8", "replace"), raw_names))


# The ``array`` type code of each unsigned word size on this host.
_WORD_CODES = {size: next(c for c in "HILQ" if array(c).itemsize == size) for size in (2, 4, 8)}


def _word_array(raw: bytes, word: int, byte_order: str) -> array:
    """``raw`` as unsigned words of the file's size and byte order."""
    words = array(_WORD_CODES[word])
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
    sections = [Section(h.name, h.address, h.size, h.offset, bool(h.flags & SHF_WRITE), bool(h.flags & SHF_EXECINSTR),
                        h.type != SHT_NOBITS, h.type in _TABLE_TYPES or h.name in _TABLE_NAMES)
                for h in reader.mapped_sections()]
    symbols = reader.symbol_table()
    marker = next((h for h in reader.sections if h.name == ELF_SECTION), None)
    return BinaryImage(
        format="elf",
        machine=reader.machine,
        pointer_size=reader.pointer_size,
        byte_order=reader.byte_order,
        data=data,
        symbols=symbols,
        sections=sections,
        relocation_reader=(lambda image: reader.resolved_relocations(symbols, image))
        if reader.knows_relocation_types else None,
        marker_region=(marker.offset, len(reader.section_data(marker))) if marker is not None else None,
    )
