"""Which interpreter an extension file was built for, read from its file name.

CPython names extension modules ``<name><suffix>``, the suffix saying the ABI:
``.cpython-313t-x86_64-linux-gnu.so`` (3.13, free-threaded), ``.cpython-313-darwin.so``,
``.abi3.so`` (stable ABI of GIL builds), ``.abi3t.so`` (PEP 803, 3.15+),
``.cp313t-win_amd64.pyd``, or a bare ``.so``/``.pyd``. A module whose suffix the target does
not accept is never imported under that name; an ``abi3`` module on free-threaded 3.13/3.14
is found by the importer but fails at init (its ``PyModuleDef`` has the GIL build's layout).
"""

from __future__ import annotations

import enum
import re
from typing import TYPE_CHECKING, Iterable, NamedTuple, Optional, Sequence

from nogil_toolkit.target import TargetInterpreter

if TYPE_CHECKING:  # packaging.tags imports subprocess: a cached check must not pay for it
    from packaging.tags import Tag

_TAGGED = re.compile(
    r"\.(?:"
    r"(?P<cpython>cpython-(?P<ver>\d)(?P<minor>\d+)(?P<flags>[a-z]*)-[A-Za-z0-9_.-]+?)"
    r"|(?P<abi3t>abi3t)|(?P<abi3>abi3)"
    r"|(?P<pyd>cp(?P<pver>\d)(?P<pminor>\d+)(?P<pflags>[a-z]*)-[A-Za-z0-9_]+)"
    r"|(?P<other>(?:pypy|graalpy)[A-Za-z0-9_.-]*)"
    r")\.(?:so|pyd)$"
)
_CPYTHON_ABI = re.compile(r"cp(\d)(\d+)([a-z]*)")
EXTENSION_ENDINGS = (".so", ".pyd")


class AbiStatus(enum.Enum):
    """Whether the target can load a file as an extension module, judged by its name."""

    LOADABLE = "loadable"
    WRONG_ABI = "wrong-abi"
    """Built for another interpreter: the target never imports it, or fails if it does."""


class SuffixTag(NamedTuple):
    """What an extension file's suffix says, independent of any interpreter."""

    basename: str
    suffix: str
    built_for: Optional[str]
    """A human description of the tagged ABI (``CPython 3.13``, ``abi3``), None when untagged."""
    free_threaded: Optional[bool]
    """True for ``...t`` and ``abi3t`` suffixes, False for other CPython tags, None if untagged."""
    abi3: bool = False
    """The GIL builds' stable ABI (``abi3``)."""
    abi3t: bool = False
    """The free-threaded stable ABI (``abi3t``, PEP 803): loaded by every CPython 3.15+ build."""


class ExtensionName(NamedTuple):
    """What a file name says about an extension module, judged for one interpreter."""

    module_basename: str
    suffix: str
    built_for: Optional[str]
    free_threaded: Optional[bool]
    status: AbiStatus
    reason: Optional[str] = None


def is_extension_file(name: str) -> bool:
    return name.endswith(EXTENSION_ENDINGS)


def abi_is_free_threaded(abi: str) -> Optional[bool]:
    """Whether a CPython ABI, as a wheel tag spells it (``cp313t``, ``cp313``, ``abi3t``,
    ``abi3``), is free-threaded: the ``t`` flag (PEP 703) and ``abi3t`` (PEP 803) say so.
    None for ABIs that are not CPython's (``none``, ``pypy310_pp73``)."""
    if abi in ("abi3", "abi3t"):
        return abi == "abi3t"
    match = _CPYTHON_ABI.fullmatch(abi)
    return None if match is None else "t" in match.group(3)


# The first CPython whose import system looks for PEP 793 export hooks: the inspection rules
# differ on either side of it (``nogil_toolkit.inspect.exporthook``, kept in step by a test).
_HOOKS_FROM = (3, 15)
ABI3T_FIRST_VERSION = (3, 15)
"""PEP 803: the first CPython with the ``abi3t`` ABI and the ``.abi3t.so`` suffix."""


def cpython_tag_version(interpreter: str) -> Optional[tuple[int, int]]:
    """``(3, 14)`` for the interpreter tag ``cp314``; None for other interpreters (``py3``, ``pp310``)."""
    match = _CPYTHON_ABI.fullmatch(interpreter) if interpreter.startswith("cp") else None
    return None if match is None or match.group(3) else (int(match.group(1)), int(match.group(2)))
_OPEN_ENDED_ABIS = ("abi3", "abi3t", "none")


def inspection_versions(tags: Iterable[Tag]) -> list[tuple[int, int]]:
    """One CPython version per set of inspection rules that some interpreter admitted by
    ``tags`` applies: ``[(3, 13)]`` for a ``cp313-cp313t`` wheel, ``[(3, 15)]`` for
    ``cp315-abi3t``, ``[(3, 14), (3, 15)]`` for ``cp312-abi3`` (3.12 up to 3.15 and later).

    A version-specific ABI (``cp314t``) means that version only; ``abi3``, ``abi3t`` and
    ``none`` mean the interpreter tag's version and every later one. Tags without a CPython
    version (``py3``, ``pp310``) could reach either side, as could no tags at all.
    """
    before, after = False, False
    for tag in tags:
        version = cpython_tag_version(tag.interpreter)
        if version is None:
            before = after = True
            continue
        open_ended = tag.abi in _OPEN_ENDED_ABIS
        before = before or version < _HOOKS_FROM
        after = after or version >= _HOOKS_FROM or open_ended
    if not (before or after):
        before = after = True
    return [v for v, wanted in (((_HOOKS_FROM[0], _HOOKS_FROM[1] - 1), before), (_HOOKS_FROM, after)) if wanted]


def is_identifier(name: str) -> bool:
    """Only identifiers can be package or module names an import reaches; non-ASCII ones too
    (PEP 3131: ``café``, whose extension exports ``PyInitU_``)."""
    return name.isidentifier()


def dotted_module_name(parts: Sequence[str]) -> Optional[str]:
    """``["pkg", "sub", "_x"]`` → ``"pkg.sub._x"``; None when no import can reach that path
    (``numpy.libs/libfoo``, ``data-files/_y``): the same rule for installed files and wheel members."""
    return ".".join(parts) if parts and all(is_identifier(p) for p in parts) else None


def parse_suffix(filename: str, known_suffixes: tuple[str, ...] = ()) -> SuffixTag:
    """Split ``filename`` into module basename and suffix; untagged names fall back to the
    longest of ``known_suffixes`` that matches, then to everything after the first dot."""
    match = _TAGGED.search(filename)
    if match:
        suffix = filename[match.start():]
        built_for, free_threaded = _describe(match)
        return SuffixTag(filename[: match.start()], suffix, built_for, free_threaded, bool(match.group("abi3")),
                         bool(match.group("abi3t")))
    accepted = sorted((s for s in known_suffixes if filename.endswith(s)), key=len, reverse=True)
    suffix = accepted[0] if accepted else filename[filename.find("."):]
    return SuffixTag(filename[: len(filename) - len(suffix)], suffix, None, None)


def classify(filename: str, target: TargetInterpreter) -> ExtensionName:
    """Split ``filename`` into module name and ABI suffix, and judge it for ``target``."""
    tag = parse_suffix(filename, target.extension_suffixes)
    if tag.abi3 and not target.loads_abi3:
        return ExtensionName(tag.basename, tag.suffix, tag.built_for, tag.free_threaded, AbiStatus.WRONG_ABI,
                             f"abi3 modules cannot load on free-threaded CPython "
                             f"{target.version[0]}.{target.version[1]} (their module def has the GIL "
                             f"build's layout); a cp{target.version[0]}{target.version[1]}t build is needed"
                             + (" or an abi3t one (PEP 803)" if target.version[:2] >= ABI3T_FIRST_VERSION else ""))
    if tag.suffix in target.extension_suffixes:
        return ExtensionName(tag.basename, tag.suffix, tag.built_for, tag.free_threaded, AbiStatus.LOADABLE)
    expected = ", ".join(repr(s) for s in target.extension_suffixes if target.loads_abi3 or ".abi3." not in s)
    return ExtensionName(tag.basename, tag.suffix, tag.built_for, tag.free_threaded, AbiStatus.WRONG_ABI,
                         f"built for {tag.built_for or 'another interpreter'}; {target.name} only imports "
                         f"extension files ending in {expected}")


def _describe(match: re.Match[str]) -> tuple[str, Optional[bool]]:
    if match.group("cpython") or match.group("pyd"):
        major, minor, flags = (match.group("ver"), match.group("minor"), match.group("flags")) if match.group(
            "cpython") else (match.group("pver"), match.group("pminor"), match.group("pflags"))
        free_threaded = bool(abi_is_free_threaded(f"cp{major}{minor}{flags}"))
        return f"CPython {major}.{minor}{' (free-threaded)' if free_threaded else ''}", free_threaded
    if match.group("abi3t"):
        return "the free-threaded stable ABI (abi3t)", bool(abi_is_free_threaded("abi3t"))
    if match.group("abi3"):
        return "the stable ABI (abi3)", bool(abi_is_free_threaded("abi3"))
    return match.group("other").split("-")[0], None
