"""How fast is the inspector compared with reading the same structures through pyelftools?

    python benchmarks/inspect_speed.py [FILE_OR_DIR ...]

Without arguments it scans the running interpreter's ``lib-dynload`` and ``site-packages``.
For each ELF file both sides do the work a verdict needs: the inspector runs the complete
``inspect_binary`` (headers, ``.dynsym``, dynamic relocations, slot-array search,
fingerprints, rules); the pyelftools side only *reads* the dynamic symbols, the dynamic
relocations and the marker section, without any analysis, so the ratio is a lower bound
of what the focused reader saves. Needs ``pyelftools`` (a test-only dependency).
"""

from __future__ import annotations

import argparse
import os
import sys
import sysconfig
import time
from pathlib import Path
from typing import Iterable, List

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from nogil_toolkit.inspect import inspect_binary  # noqa: E402


def _elf_files(roots: Iterable[str]) -> List[Path]:
    files = []
    for root in roots:
        path = Path(root)
        candidates = [path] if path.is_file() else path.rglob("*.so*")
        for candidate in candidates:
            if candidate.is_file():
                with candidate.open("rb") as handle:
                    if handle.read(4) == b"\x7fELF":
                        files.append(candidate)
    return sorted(set(files))


def _read_with_pyelftools(path: Path) -> int:
    from elftools.elf.elffile import ELFFile
    from elftools.elf.relocation import RelocationSection, RelrRelocationSection
    from elftools.elf.sections import SymbolTableSection

    count = 0
    with path.open("rb") as handle:
        elf = ELFFile(handle)
        for section in elf.iter_sections():
            if isinstance(section, SymbolTableSection) and section.name == ".dynsym":
                count += sum(1 for symbol in section.iter_symbols() if symbol.name)
            elif isinstance(section, (RelocationSection, RelrRelocationSection)) and section["sh_flags"] & 2:
                count += sum(1 for _ in section.iter_relocations())
            elif section.name == ".nogil_toolkit":
                count += len(section.data())
    return count


def _time(function, files: List[Path], repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        for path in files:
            function(path)
        best = min(best, time.perf_counter() - start)
    return best


def main(argv: List[str] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument("paths", nargs="*", help="files or directories (default: this interpreter's modules)")
    parser.add_argument("--repeat", type=int, default=3, help="best of N runs (default 3)")
    args = parser.parse_args(argv)
    roots = args.paths or [os.path.join(sysconfig.get_path("platstdlib"), "lib-dynload"),
                           sysconfig.get_path("platlib")]
    files = _elf_files(roots)
    if not files:
        print("error: no ELF files found", file=sys.stderr)
        return 2
    try:
        import elftools  # noqa: F401
    except ImportError:
        print("error: pyelftools is not installed (pip install pyelftools)", file=sys.stderr)
        return 2
    size = sum(f.stat().st_size for f in files) / 1e6
    ours = _time(inspect_binary, files, args.repeat)
    theirs = _time(_read_with_pyelftools, files, max(1, args.repeat // 3))
    print(f"{len(files)} ELF files, {size:.1f} MB")
    print(f"nogil_toolkit.inspect: {ours * 1e3:8.1f} ms total, {ours / len(files) * 1e3:6.2f} ms per file")
    print(f"pyelftools (read only): {theirs * 1e3:8.1f} ms total, {theirs / len(files) * 1e3:6.2f} ms per file")
    print(f"ratio: pyelftools / inspect = {theirs / ours:.1f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
