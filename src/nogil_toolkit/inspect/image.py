"""A format-neutral view of a shared library: the few facts the evidence rules need.

ELF, PE and Mach-O readers each turn their file into a :class:`BinaryImage`; the slot-array
search, the generator fingerprints and the rules only ever see this view, so one rule set
serves every platform and a new format is one new reader.
"""

from __future__ import annotations

import bisect
import mmap
import operator
from itertools import compress
from typing import Callable, Dict, FrozenSet, List, NamedTuple, Optional, Protocol, Sequence, Set, Tuple, Union

Buffer = Union[bytes, bytearray, mmap.mmap]


class MalformedBinary(Exception):
    """The file claims a format but its structures are inconsistent or out of bounds.

    Readers raise it with a short reason; the public entry points turn it into an
    ``UNKNOWN`` verdict so that scanning a whole environment never stops on one bad file.
    """


class Section(NamedTuple):
    """A mapped region: where it lives in memory and in the file, and how it is mapped.

    A tuple: every file read builds dozens, and on a free-threaded interpreter a frozen
    dataclass costs several microseconds each to construct (and importing ``dataclasses``
    costs a cold check more than reading twenty binaries).
    """

    name: str
    address: int
    size: int
    offset: int
    writable: bool
    executable: bool
    in_file: bool
    """False for zero-filled regions (``.bss``): their content is only known at run time."""
    tables: bool = False
    """True for the loader's and the unwinder's own tables (relocations, symbols, hashes,
    versions, notes, unwind information): read-only, but never where a compiler puts the
    program's constants, so searches for string literals skip them."""


class Relocations:
    """The load-time pointer fix-ups of an image, reduced to what slot detection needs.

    ``locations`` holds every address the loader writes a pointer to; ``sources`` and
    ``targets`` are parallel lists of the fix-ups whose pointed-to address is known
    statically (base-relative ones, and symbolic ones against a symbol defined here).
    Lookups take a set of addresses and answer in one pass: the rules ask about a handful
    of addresses, so indexing tens of thousands of fix-ups would cost more than it saves.
    """

    def __init__(self, locations: FrozenSet[int], sources: List[int], targets: List[int]) -> None:
        self.locations = locations
        self.sources = sources
        self.targets = targets

    def referrers(self, targets: Set[int]) -> Dict[int, List[int]]:
        """For each of ``targets``, the addresses of the pointers the loader sets to it.

        One pass over the fix-ups for all queried addresses: the scan iterates in C, and
        only matching entries reach Python.
        """
        result: Dict[int, List[int]] = {}
        for index in compress(range(len(self.targets)), map(targets.__contains__, self.targets)):
            result.setdefault(self.targets[index], []).append(self.sources[index])
        return result

    def targets_of(self, locations: Set[int]) -> Dict[int, int]:
        """Where the pointers at ``locations`` point after loading, where statically known."""
        return {self.sources[i]: self.targets[i]
                for i in compress(range(len(self.sources)), map(locations.__contains__, self.sources))}


class Symbols(Protocol):
    """The questions the rules ask about a library's dynamic symbols.

    Readers answer them in whatever way is cheapest for their format: the rules ask about a
    prefix and a dozen names, while a module imports hundreds of symbols, so a reader may
    answer without decoding every name. ``exports``/``imports`` give the whole lists.
    """

    def exports(self) -> Tuple[str, ...]:
        """Names of defined, exported functions and data (Mach-O's leading ``_`` removed)."""

    def imports(self) -> FrozenSet[str]:
        """Names of symbols the library expects the interpreter to provide."""

    def exported_with(self, prefixes: Tuple[str, ...]) -> Tuple[str, ...]:
        """The exports starting with one of ``prefixes``, in table order."""

    def imported_among(self, names: FrozenSet[str]) -> FrozenSet[str]:
        """Those of ``names`` the library imports."""

    def function_extent(self, name: str) -> Optional[Tuple[int, int]]:
        """(address, size) of the exported function ``name``, where the format records sizes
        (ELF); ``None`` for formats that do not."""


class NameLists:
    """:class:`Symbols` of a reader that decodes every name anyway (PE, Mach-O)."""

    def __init__(self, exports: Tuple[str, ...] = (), imports: FrozenSet[str] = frozenset()) -> None:
        self._exports = exports
        self._imports = imports

    def exports(self) -> Tuple[str, ...]:
        return self._exports

    def imports(self) -> FrozenSet[str]:
        return self._imports

    def exported_with(self, prefixes: Tuple[str, ...]) -> Tuple[str, ...]:
        return tuple(name for name in self._exports if name.startswith(prefixes))

    def imported_among(self, names: FrozenSet[str]) -> FrozenSet[str]:
        return self._imports & names

    def function_extent(self, name: str) -> Optional[Tuple[int, int]]:
        return None


_ADDRESS = operator.attrgetter("address")


class BinaryImage:
    """What one reader extracted from one file.

    ``symbols`` answers the questions about dynamic symbols; ``relocation_reader`` decodes
    the fix-ups on first use (modules only need them, and they are the costly part), and is
    ``None`` when the reader cannot recover them for this format or machine. It is given the
    image rather than holding it: a closure over the image would make each one a reference
    cycle, left for the cyclic collector, whose passes over the whole heap cost a scan of an
    environment more than any other part of reading a small module;
    ``marker_region`` is the (file offset, size) of the toolkit's marker section, if any.
    """

    def __init__(self, format: str, machine: str, pointer_size: int, byte_order: str, data: Buffer,
                 symbols: Symbols, sections: Sequence[Section],
                 relocation_reader: Optional[Callable[[BinaryImage], Relocations]],
                 marker_region: Optional[Tuple[int, int]] = None) -> None:
        self.format = format
        self.machine = machine
        self.pointer_size = pointer_size
        self.byte_order = byte_order  # "little" or "big"
        self.data = data
        self.symbols = symbols
        self.sections = sections
        self.relocation_reader = relocation_reader
        self.marker_region = marker_region
        self._relocations: Optional[Relocations] = None
        self._mapped = sorted((s for s in sections if s.size > 0), key=_ADDRESS)
        self._starts = [s.address for s in self._mapped]

    @property
    def relocations(self) -> Optional[Relocations]:
        if self._relocations is None and self.relocation_reader is not None:
            self._relocations = self.relocation_reader(self)
        return self._relocations

    def section_at(self, address: int) -> Optional[Section]:
        """The mapped section containing ``address``."""
        index = bisect.bisect_right(self._starts, address) - 1
        if index < 0:
            return None
        section = self._mapped[index]
        return section if address < section.address + section.size else None

    def file_offset(self, address: int, size: int) -> Optional[int]:
        """File offset of ``size`` bytes at ``address``, if they lie in one file-backed section."""
        section = self.section_at(address)
        if section is None or not section.in_file or address + size > section.address + section.size:
            return None
        offset = section.offset + (address - section.address)
        return offset if offset + size <= len(self.data) else None

    def read(self, address: int, size: int) -> Optional[bytes]:
        """``size`` bytes at virtual ``address``, or ``None`` if they are not in the file."""
        offset = self.file_offset(address, size)
        return None if offset is None else bytes(self.data[offset:offset + size])

    def c_string(self, address: int, limit: int = 256) -> Optional[str]:
        """The NUL-terminated string at ``address`` (at most ``limit`` bytes), if in the file."""
        section = self.section_at(address)
        offset = self.file_offset(address, 1)
        if section is None or offset is None:
            return None
        stop = min(offset + limit, section.offset + section.size, len(self.data))
        end = self.data.find(b"\0", offset, stop)
        return None if end < 0 else bytes(self.data[offset:end]).decode("utf-8", "replace")

    @property
    def exports(self) -> Tuple[str, ...]:
        """Every exported name (see :meth:`Symbols.exports`)."""
        return self.symbols.exports()

    @property
    def imports(self) -> FrozenSet[str]:
        """Every imported name (see :meth:`Symbols.imports`)."""
        return self.symbols.imports()

    def function_code(self, name: str, limit: int) -> Optional[Tuple[int, bytes]]:
        """(address, machine code) of the exported function ``name``, if its extent is known,
        lies in one executable file-backed section, and is at most ``limit`` bytes."""
        extent = self.symbols.function_extent(name)
        if extent is None:
            return None
        address, size = extent
        section = self.section_at(address)
        if not 0 < size <= limit or section is None or not section.executable:
            return None
        code = self.read(address, size)
        return None if code is None else (address, code)

    def read_only_data(self) -> List[Section]:
        """Non-executable, non-writable, file-backed sections but the loader's tables: where
        string literals live. (The tables are two thirds of the read-only bytes of a typical
        module, so leaving them out halves the cost of searching for a literal.)"""
        return [s for s in self._mapped if s.in_file and not s.writable and not s.executable and not s.tables]
