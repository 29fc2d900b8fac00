"""The focused ELF reader against pyelftools, the reference parser, on the same files."""

from __future__ import annotations

import glob
import sysconfig
from pathlib import Path
from typing import List

import elftools.elf.elffile as elftools  # pyelftools, the reference parser (a test dependency)
import pytest
from elftools.elf.relocation import RelocationSection, RelrRelocationSection
from elftools.elf.sections import SymbolTableSection

from nogil_toolkit.inspect.elf import SHT_RELR, ElfReader


def _stdlib_modules() -> List[Path]:
    dynload = sysconfig.get_path("platstdlib") + "/lib-dynload"
    return [Path(p) for p in sorted(glob.glob(dynload + "/*.so"))[:8]]


@pytest.fixture(scope="module")
def elf_files(c_modules, fake32_modules) -> List[Path]:
    # Files without section headers are compared with their originals in the last test.
    return ([m.path for label, m in c_modules.items() if not label.endswith("_no_sections")]
            + list(fake32_modules.values()) + _stdlib_modules())


def _reference_symbols(path: Path):
    with path.open("rb") as handle:
        elf = elftools.ELFFile(handle)
        table = elf.get_section_by_name(".dynsym")
        assert isinstance(table, SymbolTableSection)
        return [(s.name, s["st_value"], s["st_size"], s["st_shndx"] if isinstance(s["st_shndx"], int) else 0)
                for s in table.iter_symbols()]


def _reference_relocations(path: Path):
    with path.open("rb") as handle:
        elf = elftools.ELFFile(handle)
        result = []
        for section in elf.iter_sections():
            if isinstance(section, RelrRelocationSection):
                result += [(r["r_offset"], "RELR", 0, None) for r in section.iter_relocations()]
            elif isinstance(section, RelocationSection) and section["sh_flags"] & 2:
                result += [(r["r_offset"], r["r_info_type"], r["r_info_sym"], r["r_addend"] if r.is_RELA() else None)
                           for r in section.iter_relocations()]
        return result


def test_dynamic_symbols_match_pyelftools(elf_files):
    for path in elf_files:
        ours = [(s.name, s.value, s.size, s.section_index if isinstance(s.section_index, int) else 0)
                for s in ElfReader(path.read_bytes()).dynamic_symbols()]
        reference = _reference_symbols(path)
        # pyelftools reports special section indexes by name (SHN_UNDEF -> 0 above, SHN_ABS...).
        assert [o[:3] for o in ours] == [r[:3] for r in reference], path
        assert [o[3] == 0 for o in ours] == [r[3] == 0 or r[3] == "SHN_UNDEF" for r in reference], path


def test_relocations_match_pyelftools(elf_files):
    checked_relr = False
    for path in elf_files:
        reader = ElfReader(path.read_bytes())
        ours = [(r.offset, "RELR" if r.packed else r.type, r.symbol_index, r.addend) for r in reader.relocations()]
        reference = _reference_relocations(path)
        assert sorted(ours, key=repr) == sorted(reference, key=repr), path
        checked_relr |= any(h.type == SHT_RELR for h in reader.sections)
    assert checked_relr, "no fixture exercised DT_RELR"



def test_program_headers_give_what_section_headers_give(c_modules):
    """Without section headers, .dynsym and the relocations come from PT_DYNAMIC: the same
    entries as through the original file's section headers, and as pyelftools reads the
    dynamic segment."""
    from elftools.elf.dynamic import DynamicSegment

    pairs = [(c_modules[label[:-len("_no_sections")]].path, c_modules[label].path)
             for label in c_modules if label.endswith("_no_sections")]
    assert pairs
    for original, bare in pairs:
        reader = ElfReader(bare.read_bytes())
        assert reader.from_program_headers
        reference = ElfReader(original.read_bytes())
        assert reader.dynamic_symbols() == reference.dynamic_symbols(), bare
        assert sorted(reader.relocations(), key=repr) == sorted(reference.relocations(), key=repr), bare
        with bare.open("rb") as handle:
            elf = elftools.ELFFile(handle)
            dynamic = next(s for s in elf.iter_segments() if isinstance(s, DynamicSegment))
            names = [s.name for s in dynamic.iter_symbols()]
        assert [s.name for s in reader.dynamic_symbols()] == names, bare
