"""Recognise the tool that generated a module's init code from strings it always embeds.

The fingerprint matters because generators differ in *how* they declare, and so in what
static evidence can mean:

* Cython (multi-phase by default) writes a static slot array, readable directly; in
  single-phase mode it calls ``PyUnstable_Module_SetGIL`` with ``Py_MOD_GIL_USED`` or
  ``NOT_USED``, so the import alone says nothing.
* pybind11 2.x (single-phase) imports ``PyUnstable_Module_SetGIL`` on every free-threaded
  build and calls it only if a run-time flag is set; pybind11 3.x (multi-phase) fills its
  slot array at run time. Neither leaves static data with the value; for pybind11 3 on
  x86-64 the stores in ``PyInit`` can be read back (see ``initcode``).
* PyO3 up to at least 0.26 (single-phase) always calls ``PyUnstable_Module_SetGIL`` with
  a value from a run-time field; newer PyO3 (0.28 here) writes a static slot array.
* nanobind 2.x calls ``PyUnstable_Module_SetGIL`` only when built ``FREE_THREADED``;
  nanobind 3.x allocates its slot array at run time.

Each probe is a plain substring search (memchr speed) over read-only data sections.
"""

from __future__ import annotations

import enum
import re
from typing import Iterator, List, NamedTuple, Optional, Tuple

from nogil_toolkit.inspect.image import BinaryImage


class Generator(enum.Enum):
    """Code generators whose module init the rules know about."""

    CYTHON = "cython"
    PYBIND11 = "pybind11"
    PYO3 = "pyo3"
    NANOBIND = "nanobind"


class Fingerprint(NamedTuple):
    generator: Generator
    version: Optional[str]
    """Version as embedded (for pybind11 the internals ABI number, e.g. ``"v5"``)."""
    evidence: str
    """The string that identified it, for the report."""
    offset: Optional[int]

    @property
    def major(self) -> Optional[int]:
        """The leading number of ``version`` (pybind11: its internals ABI number)."""
        if self.version is None:
            return None
        match = re.match(r"v?(\d+)", self.version)
        return int(match.group(1)) if match else None


# (generator, literal searched with find(), regex applied at the hit to extract a version)
_PROBES = (
    (Generator.PYBIND11, b"__pybind11_internals_v", re.compile(rb"__pybind11_internals_(v\d+)")),
    (Generator.NANOBIND, b"nanobind::", None),
    (Generator.PYO3, b"pyo3_runtime.PanicException", None),
    (Generator.CYTHON, b"_cython_", re.compile(rb"_cython_(\d+)_(\d+)_(\d+)")),
)
_PYO3_VERSION = re.compile(rb"pyo3-(\d+\.\d+\.\d+)")
# Present in every Cython module (the CyFunction type name) even when the ABI module
# name, which carries the version, is not.
_CYTHON_FALLBACK = b"cython_function_or_method"
# pybind11 internals ABI versions: 2.x used 1..6 (2.13 uses 4-6); 3.0 started at 7+.
PYBIND11_FIRST_MULTI_PHASE_INTERNALS = 7
_MAX_HITS_PER_REGION = 64


def fingerprint(image: BinaryImage) -> Optional[Fingerprint]:
    """The first generator whose signature occurs in the image's read-only data."""
    regions = [(start, start + s.size) for s in image.read_only_data()
               for start in (image.file_offset(s.address, s.size),) if start is not None]
    for generator, literal, pattern in _PROBES:
        for hit, match in _hits(image, regions, literal, pattern):
            if generator is Generator.PYO3:
                version = _find_pyo3_version(image, regions)
            else:
                version = ".".join(g.decode() for g in match.groups()) if match else None
            text = bytes(image.data[hit:hit + 96]).split(b"\0", 1)[0].decode("latin-1")
            return Fingerprint(generator, version, text, hit)
    for hit, _ in _hits(image, regions, _CYTHON_FALLBACK, None):
        return Fingerprint(Generator.CYTHON, None, _CYTHON_FALLBACK.decode(), hit)
    return None


def _hits(image: BinaryImage, regions: List[Tuple[int, int]], literal: bytes,
          pattern: Optional["re.Pattern[bytes]"]) -> Iterator[Tuple[int, Optional["re.Match[bytes]"]]]:
    """Offsets of ``literal`` in ``regions`` where ``pattern`` (if any) also matches.

    Bounded per region: a signature that is there shows up among the first few hits, and a
    crafted file must not turn the search quadratic.
    """
    for start, end in regions:
        hit = image.data.find(literal, start, end)
        for _ in range(_MAX_HITS_PER_REGION):
            if hit < 0:
                break
            match = pattern.match(bytes(image.data[hit:hit + 96])) if pattern is not None else None
            if pattern is None or match is not None:
                yield hit, match
            hit = image.data.find(literal, hit + 1, end)


def _find_pyo3_version(image: BinaryImage, regions: List[Tuple[int, int]]) -> Optional[str]:
    """PyO3's version from a panic-location path (``.../pyo3-0.23.4/src/...``)."""
    for _hit, match in _hits(image, regions, b"pyo3-", _PYO3_VERSION):
        assert match is not None
        return match.group(1).decode()
    return None
