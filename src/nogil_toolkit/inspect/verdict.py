"""The values the inspector answers with: a verdict, the evidence behind it, the whole report.

Every consumer (environment check, wheel tools, :mod:`nogil_toolkit.guard`) branches on these
values, so they live in one place and are never spelled as loose strings elsewhere.
"""

from __future__ import annotations

import enum
from typing import Any, Dict, NamedTuple, Optional, Tuple

from nogil_toolkit.declaration import GilDeclaration


class Verdict(enum.Enum):
    """What a shared library declares about the GIL, as far as static reading can tell."""

    NOT_USED = "not-used"
    """The module declares ``Py_MOD_GIL_NOT_USED``: a free-threaded interpreter keeps the GIL off."""

    USED = "used"
    """The module explicitly declares ``Py_MOD_GIL_USED``."""

    UNDECLARED = "undeclared"
    """The module's init is recognisable and declares nothing, which CPython treats as ``USED``."""

    NOT_A_MODULE = "not-a-module"
    """No ``PyInit_*`` entry point is exported: a plain shared library, nothing to declare."""

    UNKNOWN = "unknown"
    """The binary could not be read, or its evidence is ambiguous; ``reason`` says which."""

    @property
    def declaration(self) -> Optional[GilDeclaration]:
        """The declaration CPython will act on, or ``None`` when the verdict does not fix one.

        ``UNDECLARED`` maps to ``USED`` because that is what the interpreter does with a module
        that says nothing; ``UNKNOWN`` and ``NOT_A_MODULE`` have no declaration.
        """
        if self is Verdict.NOT_USED:
            return GilDeclaration.NOT_USED
        if self in (Verdict.USED, Verdict.UNDECLARED):
            return GilDeclaration.USED
        return None

    @classmethod
    def from_declaration(cls, declaration: GilDeclaration) -> Verdict:
        """The verdict for a module whose declaration was read directly (marker or slot)."""
        return cls.NOT_USED if declaration is GilDeclaration.NOT_USED else cls.USED


class EvidenceKind(enum.Enum):
    """Where a piece of evidence came from, strongest kinds first."""

    MARKER = "marker"
    """The toolkit's own build marker (section ``.nogil_toolkit`` or its PE/Mach-O twin)."""

    SLOT = "slot"
    """A ``{Py_mod_gil, value}`` entry in a relocation-referenced, terminated slot array, or
    stored by ``PyInit``'s code into a run-time slot array that is fully reconstructed."""

    SLOT_ARRAY = "slot-array"
    """A module's slot array that was found (in data, or reconstructed from ``PyInit``'s
    stores) and has no ``Py_mod_gil`` entry, or a multi-phase module definition whose
    ``m_slots`` is NULL (no slot array at all)."""

    SET_GIL_IMPORT = "set-gil-import"
    """The library imports ``PyUnstable_Module_SetGIL`` (single-phase declaration)."""

    INIT_CODE = "init-code"
    """A constant that ``PyInit``'s own machine code passes to the generator's module factory
    (PyO3 0.23-0.26: ``gil_used`` of ``ModuleDef::make_module``)."""

    GENERATOR = "generator"
    """A fingerprint of the tool that generated the module's init code."""

    EXPORT_HOOK = "export-hook"
    """The library exports a PEP 793 ``PyModExport_*`` hook, which CPython 3.15+ calls."""

    INIT_STYLE = "init-style"
    """Which module-creation API the library imports (single- or multi-phase init)."""

    NO_INIT_EXPORT = "no-init-export"
    """No exported ``PyInit_*`` symbol."""


class Evidence(NamedTuple):
    """One observation in the binary that supports (or qualifies) a verdict."""

    kind: EvidenceKind
    detail: str
    """A sentence a person can act on, e.g. which slot at which offset."""
    offset: Optional[int] = None
    """File offset of the observation, when it has one (for hex-dump follow-up)."""


class ModuleInspection(NamedTuple):
    """The inspector's full answer about one binary."""

    path: str
    format: Optional[str]
    """``"elf"``, ``"pe"``, ``"macho"``, or ``None`` when the file is none of them."""
    machine: Optional[str]
    """Architecture name such as ``"x86_64"`` or ``"aarch64"``."""
    init_symbols: Tuple[str, ...]
    """The exported entry points (without Mach-O's leading underscore): ``PyInit_*`` names, led by
    the ``PyModExport_*`` hook when the target CPython (3.15+) calls that instead."""
    verdict: Verdict
    evidence: Tuple[Evidence, ...]
    """Deciding evidence first, then supporting or qualifying observations."""
    reason: Optional[str] = None
    """Why the verdict is ``UNKNOWN`` (or another caveat worth showing); ``None`` otherwise."""
    generator: Optional[str] = None
    """The code generator recognised in the binary (``"cython"``, ``"pybind11"``, ...)."""
    generator_version: Optional[str] = None
    """The generator's version when the binary reveals it (for pybind11: its internals ABI)."""


def inspection_to_json(inspection: ModuleInspection) -> Dict[str, Any]:
    """The plain form of an inspection (without its path): what the verdict cache and the JSON
    reports hold, and what inspection workers send, in :mod:`marshal`, to the process that
    forked them."""
    return {
        "verdict": inspection.verdict.value,
        "format": inspection.format,
        "machine": inspection.machine,
        "init_symbols": list(inspection.init_symbols),
        "evidence": [{"kind": e.kind.value, "detail": e.detail, "offset": e.offset} for e in inspection.evidence],
        "reason": inspection.reason,
        "generator": inspection.generator,
        "generator_version": inspection.generator_version,
    }


# A cached check turns every stored inspection back into values: dict lookups are several
# times cheaper than calling the enums.
_VERDICTS = {v.value: v for v in Verdict}
_EVIDENCE_KINDS = {k.value: k for k in EvidenceKind}


def inspection_from_json(path: str, data: Dict[str, Any]) -> ModuleInspection:
    """Raises KeyError or ValueError on data of another shape (a cache of an older version)."""
    return ModuleInspection(
        path=path,
        format=data["format"],
        machine=data["machine"],
        init_symbols=tuple(data["init_symbols"]),
        verdict=_VERDICTS[data["verdict"]],
        evidence=tuple(Evidence(_EVIDENCE_KINDS[e["kind"]], e["detail"], e["offset"]) for e in data["evidence"]),
        reason=data["reason"],
        generator=data["generator"],
        generator_version=data["generator_version"],
    )
