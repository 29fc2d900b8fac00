"""The toolkit's own declaration marker, embedded in every module built by its plugins.

The build shim stores one NUL-terminated ASCII string per extension module in a read-only
section of its own (``.nogil_toolkit`` on ELF, ``__TEXT,__nogil_toolkit`` on Mach-O,
``.nogil`` on PE)::

    nogil-toolkit-declaration:1;module=pkg._speedups;gil=not-used;toolkit=0.1.0

It is the strongest static evidence a checker can find: it says what the build compiled
into the module's init, without disassembling anything. The version field after the prefix
lets later formats coexist with this one.
"""

from __future__ import annotations

import re
from typing import Iterator, NamedTuple, Optional

from nogil_toolkit.declaration import GilDeclaration

MARKER_PREFIX = b"nogil-toolkit-declaration:1;"
ELF_SECTION = ".nogil_toolkit"
MACHO_SEGMENT_SECTION = ("__TEXT", "__nogil_toolkit")
PE_SECTION = ".nogil"
# Bounded so that a corrupt or hostile binary cannot make the parser read megabytes.
_MARKER_RE = re.compile(rb"nogil-toolkit-declaration:1;([\x20-\x7e]{1,512}?)\x00")
_FIELDS = ("module", "gil", "toolkit")


class Marker(NamedTuple):
    """One decoded marker: which module, what was declared, by which toolkit version."""

    module: str
    declaration: GilDeclaration
    toolkit_version: str
    offset: int = 0
    """Offset of the marker in the scanned bytes (evidence for reports)."""


def format_marker(module: str, declaration: GilDeclaration, toolkit_version: str) -> str:
    """The marker text (without the trailing NUL, which C adds to a string literal)."""
    for name, value in (("module", module), ("toolkit", toolkit_version)):
        if not value or any(c in value for c in ';="\\') or not value.isascii() or not value.isprintable():
            raise ValueError(f"marker field {name}={value!r} must be printable ASCII without ; = \" or \\")
    return f"{MARKER_PREFIX.decode()}module={module};gil={declaration.value};toolkit={toolkit_version}"


def iter_markers(data: bytes) -> Iterator[Marker]:
    """Yield every well-formed marker in ``data``; malformed ones are skipped, never raised."""
    for match in _MARKER_RE.finditer(data):
        marker = _decode(match.group(1), match.start())
        if marker is not None:
            yield marker


def _decode(body: bytes, offset: int) -> Optional[Marker]:
    fields = dict(part.split("=", 1) for part in body.decode("ascii").split(";") if "=" in part)
    if not all(fields.get(name) for name in _FIELDS):
        return None
    try:
        declaration = GilDeclaration(fields["gil"])
    except ValueError:
        return None
    return Marker(fields["module"], declaration, fields["toolkit"], offset)
