"""Check a wheel's claims against its binaries.

A wheel claims things about free-threading in four places: its ABI tags (``cp313t``), its
declaration record, its ``Programming Language :: Python :: Free Threading`` classifier, and
the suffixes of its extension files. Each claim is checked against what the binaries declare,
read statically by the inspector.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Iterator, Optional

from nogil_toolkit.abi import ABI3T_FIRST_VERSION, abi_is_free_threaded, cpython_tag_version
from nogil_toolkit.declaration import GilDeclaration
from nogil_toolkit.inspect import Verdict
from nogil_toolkit.wheel.reading import WheelModule, WheelReport
from nogil_toolkit.wheel.record import RECORD_NAME


class Severity(enum.Enum):
    ERROR = "error"
    WARNING = "warning"


@dataclass(frozen=True)
class Finding:
    severity: Severity
    claim: str
    """Which claim is wrong: ``tag``, ``record``, ``classifier`` or ``suffix``."""
    message: str
    module: Optional[str] = None


def verify(report: WheelReport) -> list[Finding]:
    """Every disagreement between the wheel's claims and its binaries."""
    return [*_check_record(report), *_check_tags(report), *_check_classifier(report)]


def _declared(module: WheelModule) -> Optional[GilDeclaration]:
    return module.inspection.verdict.declaration


def _describe(module: WheelModule) -> str:
    inspection = module.inspection
    if inspection.verdict is Verdict.UNKNOWN:
        return f"cannot be read with certainty ({inspection.reason})"
    if inspection.verdict is Verdict.UNDECLARED:
        return "declares nothing (CPython then re-enables the GIL)"
    return f"declares {inspection.verdict.value}"


def _check_record(report: WheelReport) -> Iterator[Finding]:
    if report.record_error:
        yield Finding(Severity.ERROR, "record", report.record_error)
        return
    if report.record is None:
        return
    modules = {m.module: m for m in report.extension_modules}
    for name, recorded in sorted(report.record.modules.items()):
        module = modules.get(name)
        if module is None:
            yield Finding(Severity.ERROR, "record", f"{RECORD_NAME} lists {name}, but the wheel has no such "
                          "extension module", name)
        elif _declared(module) is not recorded:
            yield Finding(Severity.ERROR, "record", f"{RECORD_NAME} says {name} declares {recorded.value}, but "
                          f"its binary {_describe(module)}", name)
    for name in sorted(set(modules) - set(report.record.modules)):
        yield Finding(Severity.WARNING, "record", f"{name} is not in {RECORD_NAME} (its binary "
                      f"{_describe(modules[name])})", name)


def _check_tags(report: WheelReport) -> Iterator[Finding]:
    abis = {tag.abi for tag in report.tags}
    # abi3t (PEP 803, 3.15+) is the free-threaded stable ABI: a promise about free-threading too.
    free_threaded_abis = sorted(a for a in abis if abi_is_free_threaded(a))
    gil_abis = sorted(a for a in abis if abi_is_free_threaded(a) is False and a != "abi3")
    # CPython 3.15 adds ".abi3t.so" to every build's EXTENSION_SUFFIXES (gh-146636): PEP 803
    # makes abi3t extensions abi3-compatible, so GIL builds of 3.15+ load them too. GIL tags
    # that admit an older CPython are the ones an abi3t file does not serve.
    old_gil_tags = sorted({f"{t.interpreter}-{t.abi}" for t in report.tags
                           if abi_is_free_threaded(t.abi) is False and _before_abi3t(t.interpreter)})
    yield from _check_abi3t_tags(report)
    for module in report.extension_modules:
        if free_threaded_abis and module.inspection.verdict is Verdict.USED:
            # Declared, not hidden: the wheel keeps its word, but importing it re-enables the GIL.
            yield Finding(Severity.WARNING, "tag", f"the wheel is tagged {', '.join(free_threaded_abis)} "
                          f"(free-threaded); {module.module} declares it needs the GIL, so importing it "
                          "re-enables the GIL", module.module)
        elif free_threaded_abis and _declared(module) is not GilDeclaration.NOT_USED:
            yield Finding(Severity.ERROR, "tag", f"the wheel is tagged {', '.join(free_threaded_abis)} (free-threaded) "
                          f"but {module.module} {_describe(module)}", module.module)
        if module.suffix.abi3t and old_gil_tags:
            yield Finding(Severity.ERROR, "suffix", f"{module.member} uses the free-threaded stable ABI (abi3t), "
                          f"which CPython loads from 3.15 on, but the wheel is tagged {', '.join(old_gil_tags)}",
                          module.module)
        elif module.suffix.free_threaded and not module.suffix.abi3t and (gil_abis or "abi3" in abis):
            tagged = ", ".join([*gil_abis, *(["abi3"] if "abi3" in abis else [])])
            yield Finding(Severity.ERROR, "suffix", f"{module.member} is built for {module.suffix.built_for}, which "
                          f"only a free-threaded interpreter loads, but the wheel is tagged {tagged}", module.module)
        elif module.suffix.free_threaded is False and free_threaded_abis and not module.suffix.abi3:
            yield Finding(Severity.ERROR, "suffix", f"{module.member} is built for {module.suffix.built_for}, which a "
                          f"free-threaded interpreter never imports, but the wheel is tagged "
                          f"{', '.join(free_threaded_abis)}", module.module)
        elif module.suffix.abi3 and free_threaded_abis:
            yield Finding(Severity.ERROR, "suffix", f"{module.member} uses the stable ABI (abi3), which free-threaded "
                          f"CPython never loads (3.13t and 3.14t fail on it, 3.15t only imports abi3t), in a wheel "
                          f"tagged {', '.join(free_threaded_abis)}", module.module)


def _before_abi3t(interpreter: str) -> bool:
    """Whether a CPython interpreter tag (``cp314``) admits a version without ``.abi3t.so``."""
    version = cpython_tag_version(interpreter)
    return version is not None and version < ABI3T_FIRST_VERSION


def _check_abi3t_tags(report: WheelReport) -> Iterator[Finding]:
    """``abi3t`` with an interpreter tag before cp315: packaging lets free-threaded 3.13 and 3.14
    install such a wheel, but they have no ``.abi3t.so`` suffix and cannot load its modules."""
    early = sorted({str(t) for t in report.tags if t.abi == "abi3t" and _before_abi3t(t.interpreter)})
    if early:
        yield Finding(Severity.WARNING, "tag", f"the wheel is tagged {', '.join(early)}: abi3t modules load on "
                      "CPython 3.15 and later, but installers offer this tag to free-threaded 3.13 and 3.14 too "
                      "(tag it cp315 or later)")


def _check_classifier(report: WheelReport) -> Iterator[Finding]:
    classifier = report.free_threading_classifier
    if classifier is None:
        return
    level = classifier.rsplit("::", 1)[1].strip()
    severity = Severity.WARNING if level.startswith("1") else Severity.ERROR
    for module in report.extension_modules:
        if _declared(module) is not GilDeclaration.NOT_USED:
            yield Finding(severity, "classifier", f"the wheel claims '{classifier}' but {module.module} "
                          f"{_describe(module)}", module.module)
