"""Recognise the tool that generated a module's init code from strings it always embeds.

The fingerprint matters because generators differ in *how* they declare, and so in what
static evidence can mean:

* Cython (multi-phase by default) writes a static slot array, readable directly; in
  single-phase mode it calls ``PyUnstable_Module_SetGIL`` with ``Py_MOD_GIL_USED`` or
  ``NOT_USED``, so the import alone says nothing.
* pybind11 2.x (single-phase) imports ``PyUnstable_Module_SetGIL`` on every free-threaded
  build and calls it only if a run-time flag is set; pybind11 3.x (multi-phase) fills its
  slot array at run time. Neither leaves static evidence of the value.
* PyO3 before 0.26 (single-phase) always calls ``PyUnstable_Module_SetGIL`` with a value
  from a run-time field; newer PyO3 writes a static slot array.
* nanobind 2.x calls ``PyUnstable_Module_SetGIL`` only when built ``FREE_THREADED``;
  nanobind 3.x allocates its slot array at run time.

Each probe is a plain substring search (memchr speed) over read-only data sections.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from typing import Optional

from nogil_toolkit.inspect.image import BinaryImage


class Generator(enum.Enum):
    """Code generators whose module init the rules know about."""

    CYTHON = "cython"
    PYBIND11 = "pybind11"
    PYO3 = "pyo3"
    NANOBIND = "nanobind"


@dataclass(frozen=True)
class Fingerprint:
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
# PyO3 switched #[pymodule] to a static multi-phase slot array in 0.26.
PYO3_FIRST_MULTI_PHASE = (0, 26)


def fingerprint(image: BinaryImage) -> Optional[Fingerprint]:
    """The first generator whose signature occurs in the image's read-only data."""
    regions = [(s, image.file_offset(s.address, s.size)) for s in image.read_only_data()]
    for generator, literal, pattern in _PROBES:
        for section, start in regions:
            if start is None:
                continue
            hit = image.data.find(literal, start, start + section.size)
            if hit < 0:
                if generator is Generator.CYTHON:
                    hit = image.data.find(_CYTHON_FALLBACK, start, start + section.size)
                    if hit >= 0:
                        return Fingerprint(generator, None, _CYTHON_FALLBACK.decode(), hit)
                continue
            window = bytes(image.data[hit:hit + 96])
            version = None
            if pattern is not None:
                match = pattern.match(window)
                if match is None:
                    continue
                version = ".".join(g.decode() for g in match.groups())
            elif generator is Generator.PYO3:
                version = _find_pyo3_version(image, regions)
            text = window.split(b"\0", 1)[0].decode("latin-1")
            return Fingerprint(generator, version, text, hit)
    return None


def _find_pyo3_version(image: BinaryImage, regions: list) -> Optional[str]:
    """PyO3's version from a panic-location path (``.../pyo3-0.23.4/src/...``)."""
    for section, start in regions:
        if start is None:
            continue
        hit = image.data.find(b"pyo3-", start, start + section.size)
        while hit >= 0:
            match = _PYO3_VERSION.match(bytes(image.data[hit:hit + 24]))
            if match:
                return match.group(1).decode()
            hit = image.data.find(b"pyo3-", hit + 5, start + section.size)
    return None
