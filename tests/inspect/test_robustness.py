"""Bad input of every kind becomes an UNKNOWN verdict with a reason, never an exception."""

from __future__ import annotations

import io
import os
import random
import shutil
import struct
import subprocess
import sys
import tempfile
import zipfile
from collections import Counter
from dataclasses import dataclass
from itertools import product
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import pytest
from elftools.elf.dynamic import DynamicSegment
from elftools.elf.elffile import ELFFile
from elftools.elf.relocation import RelocationSection, RelrRelocationSection, RelrRelocationTable

from inspect_support import download_wheel

from nogil_toolkit.inspect import ModuleInspection, Verdict, inspect_binary, inspect_bytes
from nogil_toolkit.marker import ELF_SECTION

SEED = 20240613


def _unknown(report: ModuleInspection, fragment: str) -> None:
    assert isinstance(report, ModuleInspection)
    assert report.verdict is Verdict.UNKNOWN
    assert report.reason and fragment in report.reason, report.reason


def test_missing_file(tmp_path):
    _unknown(inspect_binary(tmp_path / "nope.so"), "cannot read")


def test_empty_file(tmp_path):
    (tmp_path / "empty.so").write_bytes(b"")
    _unknown(inspect_binary(tmp_path / "empty.so"), "empty")


def test_directory(tmp_path):
    (tmp_path / "dir.so").mkdir()
    _unknown(inspect_binary(tmp_path / "dir.so"), "directory")


def test_fifo_does_not_block(tmp_path):
    fifo = tmp_path / "pipe.so"
    os.mkfifo(fifo)
    _unknown(inspect_binary(fifo), "not a regular file")


def test_permission_denied():
    """An unreadable file is UNKNOWN with "cannot read". Root reads anything, so under root
    the inspector runs as an unprivileged user (nobody), on a file in a folder it can enter."""
    folder = Path(tempfile.mkdtemp(prefix="nogil-permission-"))
    try:
        folder.chmod(0o755)
        path = folder / "secret.so"
        path.write_bytes(b"\x7fELF")
        path.chmod(0)
        script = ("import sys; from nogil_toolkit.inspect import inspect_binary; "
                  "report = inspect_binary(sys.argv[1]); print(report.verdict.value); print(report.reason)")
        command = [sys.executable, "-c", script, str(path)]
        if os.geteuid() == 0:
            command = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", *command]
        result = subprocess.run(command, capture_output=True, text=True, check=False, timeout=120)
        assert result.returncode == 0, result.stderr
        verdict, reason = result.stdout.splitlines()
        assert verdict == Verdict.UNKNOWN.value and "cannot read" in reason and "Permission denied" in reason, reason
    finally:
        shutil.rmtree(folder)


@pytest.mark.parametrize("data, fragment", [
    (b"hello world, this is text\n" * 10, "not an ELF, PE or Mach-O"),
    (b"\x7fELF", "not an ELF"),
    (b"\x7fELF\x02\x01\x01" + bytes(57), "neither section headers nor program headers"),
    (b"\x7fELF\x03\x01\x01" + bytes(57), "unsupported ELF class"),
    (b"MZ" + bytes(100), "PE header"),
    (b"\xca\xfe\xba\xbe\x00\x00\x00\x34" + bytes(40), "Java"),
    (b"\xcf\xfa\xed\xfe" + bytes(10), "malformed"),
])
def test_garbage_and_truncated_headers(data, fragment):
    _unknown(inspect_bytes(data, "x.so"), fragment)


def test_section_table_beyond_end_of_file(c_modules):
    data = bytearray(c_modules["multi_not_used"].path.read_bytes())
    struct.pack_into("<Q", data, 0x28, len(data) + 4096)  # e_shoff
    _unknown(inspect_bytes(bytes(data), "x.so"), "beyond end of file")


def test_huge_counts_are_bounded(c_modules):
    data = bytearray(c_modules["multi_not_used"].path.read_bytes())
    struct.pack_into("<H", data, 0x3C, 0)  # e_shnum = 0 -> real count read from section 0 ...
    shoff = struct.unpack_from("<Q", data, 0x28)[0]
    struct.pack_into("<Q", data, shoff + 32, 1 << 40)  # ... which claims 2**40 sections
    _unknown(inspect_bytes(bytes(data), "x.so"), "beyond end of file")


def test_memoryview_input(c_modules):
    data = c_modules["multi_not_used"].path.read_bytes()
    assert inspect_bytes(memoryview(data), "multi_not_used.so").verdict is Verdict.NOT_USED


# -- structure-aware fuzzing of real ELF modules ---------------------------------------------
#
# Random bytes almost never get past the file header, so most mutants here change one
# structure the rules read, located with pyelftools in the unmutated seed: the dynamic
# symbols, the dynamic relocations, the slot array, the PyModuleDef, the marker section, the
# program and section headers. The oracle is independent of the inspector: a mutant may be
# called NOT_USED only if its bytes still say so (see ``_still_declares_not_used``).

WORD = 8
SLOT_IDS = {1, 2, 3, 4}


@dataclass
class Seed:
    """One unmutated module and where its structures lie (file offsets, from pyelftools)."""

    name: str
    data: bytes
    regions: Dict[str, List[Tuple[int, int]]]
    """Structure kind -> (offset, size) of each entry of that kind."""
    evidence: List[Tuple[int, int]]
    """The bytes that carry a NOT_USED declaration (slot entry and what ties it, the SetGIL
    symbol, the marker), plus every header that locates them."""
    declares_not_used: bool
    """What the oracle says about the unmutated seed."""


def _sections(elf) -> List:
    """The sections pyelftools can build; one corrupt header does not hide the others."""
    sections = []
    for index in range(elf.num_sections()):
        try:
            sections.append(elf.get_section(index))
        except Exception:  # noqa: BLE001 - pyelftools raises many kinds on corrupt headers
            continue
    return sections


def _section_named(elf, name: str):
    return next((s for s in _sections(elf) if s.name == name), None)


def _offset_of(elf, address: int) -> Optional[int]:
    """File offset of ``address``: through the section headers where the file has them (a
    broken program header table does not change what the sections hold), else the segments."""
    if elf.num_sections():
        # Where a corrupt size makes sections overlap, the one starting nearest below wins.
        containing = [s for s in _sections(elf) if s["sh_flags"] & 2 and s["sh_type"] != "SHT_NOBITS"
                      and s["sh_addr"] <= address < s["sh_addr"] + s["sh_size"]]
        if not containing:
            return None
        section = max(containing, key=lambda s: s["sh_addr"])
        return section["sh_offset"] + address - section["sh_addr"]
    return next(elf.address_offsets(address), None)


def _tied_slot_arrays(elf) -> List[Tuple[int, List[Tuple[int, int]], int]]:
    """(array address, its (slot, value) entries, m_slots location) for every array that a
    dynamic relocation points to, ends in {0, NULL} and is pointed to from a relocated word
    (the m_slots field of a PyModuleDef): the declaration as pyelftools reads it."""
    stream = elf.stream
    tables = [s for s in _sections(elf) if isinstance(s, (RelocationSection, RelrRelocationSection))]
    if not tables:
        dynamic = next((g for g in elf.iter_segments() if isinstance(g, DynamicSegment)), None)
        tables = list(dynamic.get_relocation_tables().values()) if dynamic is not None else []
    pointers: Dict[int, List[int]] = {}
    for table in tables:
        for relocation in table.iter_relocations():
            if isinstance(table, RelrRelocationTable):  # base-relative, addend in the word itself
                offset = _offset_of(elf, relocation["r_offset"])
                if offset is None:
                    continue
                stream.seek(offset)
                raw = stream.read(8)
                if len(raw) < 8:
                    continue
                target = struct.unpack("<Q", raw)[0]
            elif relocation.is_RELA() and relocation["r_info_type"] == 8:  # R_X86_64_RELATIVE
                target = relocation["r_addend"]
            else:
                continue
            pointers.setdefault(target, []).append(relocation["r_offset"])
    found = []
    for address, sources in pointers.items():
        offset = _offset_of(elf, address)
        if offset is None:
            continue
        entries = []
        for index in range(64):
            stream.seek(offset + 16 * index)
            raw = stream.read(16)
            if len(raw) < 16:
                break
            slot, padding, value = struct.unpack("<iIQ", raw)
            if slot == 0 and value == 0:
                if entries:
                    found.append((address, entries, min(sources)))
                break
            if slot not in SLOT_IDS or padding:
                break
            entries.append((slot, value))
    return found


def _still_declares_not_used(data: bytes, module: str) -> bool:
    """Whether pyelftools, reading the mutant on its own, still finds a NOT_USED declaration:
    a marker for ``module`` in the marker section, an undefined PyUnstable_Module_SetGIL, or a
    relocation-tied slot array holding {Py_mod_gil, 1}. Each is looked for on its own, so a
    structure pyelftools cannot read hides only the evidence that depends on it, and both
    through the section headers and as the loader sees the file (program headers only)."""
    loader_view = bytearray(data)
    if len(loader_view) >= 64:
        loader_view[0x28:0x30] = bytes(8)  # e_shoff
        loader_view[0x3C:0x40] = bytes(4)  # e_shnum, e_shstrndx

    def marker(elf) -> bool:
        section = _section_named(elf, ELF_SECTION)
        return section is not None and f"module=pkg.{module};gil=not-used".encode() in section.data()

    def set_gil_import(elf) -> bool:
        symbols = next((s for s in _sections(elf) if s["sh_type"] == "SHT_DYNSYM"), None)
        if symbols is None:
            symbols = next(g for g in elf.iter_segments() if isinstance(g, DynamicSegment))
        return any(s.name == "PyUnstable_Module_SetGIL" and s["st_shndx"] == "SHN_UNDEF"
                   for s in symbols.iter_symbols())

    def slot(elf) -> bool:
        return any((4, 1) in entries for _, entries, _ in _tied_slot_arrays(elf))

    for view, check in product((data, bytes(loader_view)), (marker, set_gil_import, slot)):
        try:
            if check(ELFFile(io.BytesIO(view))):
                return True
        except Exception:  # pyelftools gives up on this structure: it cannot confirm it
            continue
    return False


def _seed(name: str, data: bytes) -> Seed:
    elf = ELFFile(io.BytesIO(data))
    header = elf.header
    regions: Dict[str, List[Tuple[int, int]]] = {
        "elf-header": [(0, 64)],
        "program-header": [(header["e_phoff"] + i * header["e_phentsize"], header["e_phentsize"])
                           for i in range(header["e_phnum"])],
        "section-header": [(header["e_shoff"] + i * header["e_shentsize"], header["e_shentsize"])
                           for i in range(header["e_shnum"])],
    }
    locating = [r for kind in ("elf-header", "program-header", "section-header") for r in regions[kind]]
    evidence: List[Tuple[int, int]] = []
    dynsym, dynstr = elf.get_section_by_name(".dynsym"), elf.get_section_by_name(".dynstr")
    regions["dynsym"] = [(dynsym["sh_offset"] + i * 24, 24) for i in range(dynsym.num_symbols())]
    regions["init-symbol"] = []
    for index, symbol in enumerate(dynsym.iter_symbols()):
        if symbol.name == "PyUnstable_Module_SetGIL" or symbol.name.startswith("PyInit_"):
            regions["init-symbol"].append(regions["dynsym"][index])
            evidence += [regions["dynsym"][index], (dynstr["sh_offset"] + symbol["st_name"], len(symbol.name) + 1)]
    regions["relocation"] = []
    for table in elf.iter_sections():
        if isinstance(table, RelocationSection) and table["sh_flags"] & 2:
            regions["relocation"] += [(table["sh_offset"] + i * 24, 24) for i in range(table.num_relocations())]
        elif isinstance(table, RelrRelocationSection):  # a packed table: any word may matter
            regions["relocation"] += [(table["sh_offset"] + i * WORD, WORD) for i in range(table["sh_size"] // WORD)]
            evidence += [(table["sh_offset"], table["sh_size"])]
    regions["slot-array"], regions["module-def"] = [], []
    for address, entries, m_slots in _tied_slot_arrays(elf):
        array = (_offset_of(elf, address), 16 * (len(entries) + 1))
        definition = (_offset_of(elf, m_slots - 7 * WORD), 11 * WORD)
        regions["slot-array"].append(array)
        regions["module-def"].append(definition)
        evidence += [array, definition]
        fields = set(range(m_slots - 7 * WORD, m_slots + 4 * WORD, WORD))
        tying = [r for r in regions["relocation"] if _relocation_in(data, r[0], fields | {address})]
        regions.setdefault("tying-relocation", []).extend(tying)
        evidence += tying
    marker = elf.get_section_by_name(ELF_SECTION)
    regions["marker"] = [(marker["sh_offset"], marker["sh_size"])] if marker is not None else []
    evidence += regions["marker"]
    return Seed(name, data, regions, evidence + locating, _still_declares_not_used(data, name))


def _relocation_in(data: bytes, offset: int, addresses: set) -> bool:
    """Whether the RELA entry at ``offset`` writes to, or points at, one of ``addresses``."""
    r_offset, _info, addend = struct.unpack_from("<QQq", data, offset)
    return r_offset in addresses or addend in addresses


STRUCTURES = ("dynsym", "relocation", "slot-array", "module-def", "marker", "program-header", "section-header",
              "elf-header")


def _mutate(seed: Seed, rng: random.Random, index: int) -> Tuple[str, bytes, Tuple[int, int]]:
    """(what was mutated, the mutant, the changed byte range)."""
    data = bytearray(seed.data)
    kind = (STRUCTURES + ("bit-flips", "truncation"))[index % (len(STRUCTURES) + 2)]
    if kind == "truncation":
        cut = rng.randrange(len(data))
        return kind, bytes(data[:cut]), (cut, len(data))
    regions = seed.regions.get(kind) or []
    if kind == "bit-flips" or not regions:
        kind = "bit-flips"
        start = rng.randrange(len(data) - 64)
        for _ in range(rng.randint(1, 8)):
            data[start + rng.randrange(64)] ^= 1 << rng.randrange(8)
        return kind, bytes(data), (start, start + 64)
    # Half of the symbol and relocation edits go to the entries the declaration depends on.
    focus = {"dynsym": "init-symbol", "relocation": "tying-relocation"}.get(kind)
    if focus and seed.regions.get(focus) and rng.random() < 0.5:
        regions = seed.regions[focus]
    offset, size = rng.choice(regions)
    if kind == "dynsym" and rng.random() < 0.5:
        # One field set to a value a linker writes: st_name, st_info, st_other, st_shndx, st_value, st_size.
        start, width = rng.choice([(0, 4), (4, 1), (5, 1), (6, 2), (8, 8), (16, 8)])
        current = int.from_bytes(data[offset + start:offset + start + width], "little")
        value = rng.choice([0, 1, 2, 0x12, 0x11, 0xFFF1, current + 1])
        data[offset + start:offset + start + width] = (value % (1 << 8 * width)).to_bytes(width, "little")
        return kind, bytes(data), (offset + start, offset + start + width)
    if kind in ("slot-array", "module-def", "relocation") and rng.random() < 0.5:
        # Word-sized edits with values a compiler emits: small ids and 0/1, or off by a word.
        word = offset + WORD * rng.randrange(max(1, size // WORD))
        current = struct.unpack_from("<q", data, word)[0]
        value = rng.choice([0, 1, 2, 3, 4, 5, -1, current + WORD, current - WORD, current + 16])
        struct.pack_into("<q", data, word, value)
        return kind, bytes(data), (word, word + WORD)
    for _ in range(rng.randint(1, 3)):
        position = offset + rng.randrange(max(1, size))
        data[position] = rng.choice([0, 1, 2, 4, 0xFF, rng.randrange(256), data[position] ^ 1])
    return kind, bytes(data), (offset, offset + size)


def _deciding_rule(report: ModuleInspection) -> str:
    """Which rule produced the verdict: the kind of its first evidence, or why it is UNKNOWN."""
    if report.evidence:
        return report.evidence[0].kind.value
    return "rejected: " + (report.reason or "").split(" (", 1)[0][:40]


def test_structure_mutants_never_claim_a_declaration_their_bytes_lack(c_modules):
    seeds = [_seed(module.name, module.path.read_bytes()) for label, module in sorted(c_modules.items())
             if label in FUZZ_SEEDS]
    rng = random.Random(SEED)
    reached: Counter = Counter()
    mutated: Counter = Counter()
    lost = 0
    for index in range(2000):
        seed = rng.choice(seeds)
        kind, data, (low, high) = _mutate(seed, rng, index)
        mutated[kind] += 1
        report = inspect_bytes(data, f"{seed.name}.cpython-313t-x86_64-linux-gnu.so")
        assert isinstance(report, ModuleInspection)
        assert report.verdict is not Verdict.UNKNOWN or report.reason
        reached[_deciding_rule(report)] += 1
        untouched = len(data) == len(seed.data) and not any(low < o + n and o < high for o, n in seed.evidence)
        if report.verdict is Verdict.NOT_USED:
            assert untouched or _still_declares_not_used(data, seed.name), (seed.name, kind, low, high, report)
        elif seed.declares_not_used and not untouched:
            lost += 1
    summary = f"mutated {dict(mutated)}; deciding rule {dict(reached)}; declarations lost {lost}"
    print(summary)
    # The mutants must get past the headers: most reach the rules that read slots and symbols.
    assert reached["slot"] + reached["slot-array"] >= 600, summary
    assert reached["set-gil-import"] >= 100 and reached["marker"] >= 50, summary
    assert lost >= 50, summary  # and some do destroy the evidence the NOT_USED seeds carry


# Seeds with every rule's evidence: slot arrays (declaring, USED, none), the SetGIL import,
# the marker, single-phase without declaration, m_slots NULL, a terminator-only array.
FUZZ_SEEDS = ("multi_not_used", "multi_used", "multi_none", "multi_not_used_relr", "const_slots", "single_setgil",
              "single_plain", "marker", "multi_null_slots", "empty_slots_const")


def test_fuzzed_pe_and_macho_never_raise():
    seeds = []
    for platform in ("win_amd64", "macosx_11_0_arm64", "macosx_10_13_x86_64"):
        wheel = download_wheel("markupsafe", platform)
        with zipfile.ZipFile(wheel) as archive:
            seeds += [archive.read(n) for n in archive.namelist() if n.endswith((".so", ".pyd"))]
    rng = random.Random(SEED)
    for _ in range(1500):
        data = bytearray(rng.choice(seeds))
        for _ in range(rng.randint(1, 32)):
            position = rng.randrange(min(len(data), 8192))  # headers, load commands, tables
            data[position] = rng.randrange(256)
        if rng.random() < 0.3:
            data = data[:rng.randrange(len(data))]
        report = inspect_bytes(bytes(data), "fuzz.so")
        assert report.verdict is not Verdict.UNKNOWN or report.reason


def test_random_bytes_never_declare(c_modules):
    rng = random.Random(SEED)
    headers = [b"\x7fELF\x02\x01\x01", b"MZ", b"\xcf\xfa\xed\xfe"]
    for index in range(2000):
        data = rng.choice(headers) + rng.randbytes(rng.randrange(0, 4096))
        # Splice in slot-shaped bytes too: {Py_mod_gil, 1} followed by a terminator.
        if index % 2:
            data += (4).to_bytes(8, "little") + (1).to_bytes(8, "little") + bytes(16)
        report = inspect_bytes(data, "random.so")
        assert report.verdict is not Verdict.NOT_USED, report


@pytest.mark.parametrize("bug", [TypeError, AttributeError, NameError, ValueError, KeyError])
def test_reader_bugs_surface_instead_of_passing_as_malformed_files(c_modules, monkeypatch, bug):
    """Only what hostile input can cause becomes "malformed"; a bug in a rule or reader raises."""
    from nogil_toolkit.inspect import core

    def broken(image):
        raise bug("a bug in the reader")

    monkeypatch.setattr(core, "find_slot_arrays", broken)
    with pytest.raises(bug):
        inspect_binary(c_modules["multi_not_used"].path)
