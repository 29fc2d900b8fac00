"""Judge an environment's extension modules under a mode and a policy.

The inspector says what each binary declares, and an import probe (when one was run) what
loading it did; this module says what that means for the application: which modules keep
the GIL off, which would turn it back on when imported, which the policy accepts, which
could not be decided, which cannot load at all, and the exit code that sums it up.

Modes:

- ``nogil``: strict. A module that needs the GIL (declared ``used`` or undeclared) fails the
  check, and so does one the target cannot load; a module that could not be decided makes
  the result undecided.
- ``unsafe-nogil``: the same findings are warnings; the check passes.
- ``gil``: a report, nothing fails.

A module static reading could not decide is decided by a conclusive import probe; otherwise
a probe only confirms, and a contradiction fails the check whatever the mode.
"""

from __future__ import annotations

import enum
from typing import TYPE_CHECKING, Iterable, NamedTuple, Optional, Sequence

from nogil_toolkit.abi import AbiStatus
from nogil_toolkit.declaration import GilDeclaration
from nogil_toolkit.inspect.verdict import ModuleInspection, Verdict
from nogil_toolkit.modes import ExitCode, Mode
from nogil_toolkit.probe import ProbeResult

if TYPE_CHECKING:
    from nogil_toolkit.config import AllowRule
    from nogil_toolkit.environment import ExtensionFile

__all__ = ["CheckResult", "ExitCode", "Mode", "ModuleResult", "Severity", "Status", "check", "judge"]


class Status(enum.Enum):
    """What a module means for the GIL of the process that imports it."""

    KEEPS_GIL_OFF = "keeps-gil-off"
    NEEDS_GIL = "needs-gil"
    """Declared ``used`` or undeclared: importing it re-enables the GIL."""
    ALLOWED = "allowed"
    """Needs the GIL (or is undecided) but the policy accepts it, with a reason."""
    UNDECIDED = "undecided"
    WRONG_ABI = "wrong-abi"
    """Built for another interpreter: the target cannot load it."""
    NOT_A_MODULE = "not-a-module"
    SHADOWED = "shadowed"
    """Another file of the same module name is imported instead."""


class Severity(enum.Enum):
    ERROR = "error"
    WARNING = "warning"
    INFO = "info"
    NONE = "none"


_SEVERITY = {
    Mode.NOGIL: {Status.NEEDS_GIL: Severity.ERROR, Status.WRONG_ABI: Severity.ERROR, Status.UNDECIDED: Severity.ERROR},
    Mode.UNSAFE_NOGIL: {Status.NEEDS_GIL: Severity.WARNING, Status.WRONG_ABI: Severity.WARNING,
                        Status.UNDECIDED: Severity.WARNING},
    Mode.GIL: {Status.NEEDS_GIL: Severity.INFO, Status.WRONG_ABI: Severity.WARNING, Status.UNDECIDED: Severity.INFO},
}


class ModuleResult(NamedTuple):
    """One extension file, what it declares, and what that means under the mode."""

    file: ExtensionFile
    inspection: Optional[ModuleInspection]
    """None for files not inspected: shadowed or wrong-ABI files are never loaded."""
    status: Status
    severity: Severity
    allowed_because: Optional[AllowRule] = None
    probe: Optional[ProbeResult] = None

    @property
    def name(self) -> str:
        return self.file.module or self.file.path

    @property
    def decided_by_probe(self) -> bool:
        """Static reading could not decide; a conclusive import probe did."""
        return (self.status in (Status.KEEPS_GIL_OFF, Status.NEEDS_GIL, Status.ALLOWED)
                and (self.inspection is None or self.inspection.verdict is Verdict.UNKNOWN)
                and self.probe is not None and self.probe.needs_gil is not None)

    @property
    def probe_disagrees(self) -> bool:
        """The import probe contradicts the static verdict (only conclusive probes count)."""
        if self.probe is None or self.inspection is None or self.probe.needs_gil is None:
            return False
        declaration = self.inspection.verdict.declaration
        return declaration is not None and (declaration is GilDeclaration.USED) != self.probe.needs_gil


class CheckResult(NamedTuple):
    mode: Mode
    modules: tuple[ModuleResult, ...]
    policy_source: Optional[str] = None
    allow: tuple[AllowRule, ...] = ()

    def count(self, status: Status) -> int:
        return sum(1 for m in self.modules if m.status is status)

    @property
    def exit_code(self) -> ExitCode:
        errors = [m for m in self.modules if m.severity is Severity.ERROR]
        if any(m.status is not Status.UNDECIDED for m in errors) or any(m.probe_disagrees for m in self.modules):
            return ExitCode.VIOLATED
        return ExitCode.UNDECIDED if errors else ExitCode.OK

    @property
    def gil_stays_disabled(self) -> Optional[bool]:
        """Whether importing every importable module keeps the GIL off: None when undecided."""
        statuses = {m.status for m in self.modules}
        if Status.NEEDS_GIL in statuses:
            return False
        return None if Status.UNDECIDED in statuses else True


def judge(file: ExtensionFile, inspection: Optional[ModuleInspection], mode: Mode,
          allow: Sequence[AllowRule], probe: Optional[ProbeResult] = None) -> ModuleResult:
    """The status and severity of one file: from its static inspection, or where that is
    undecided, from a conclusive ``probe``."""
    status = _status(file, inspection, probe)
    rule = None
    if status in (Status.NEEDS_GIL, Status.UNDECIDED) and file.module:
        rule = next((r for r in allow if r.matches(file.module)), None)
        if rule is not None:
            status = Status.ALLOWED
    severity = _SEVERITY[mode].get(status, Severity.NONE)
    return ModuleResult(file, inspection, status, severity, rule, probe)


def _status(file: ExtensionFile, inspection: Optional[ModuleInspection], probe: Optional[ProbeResult]) -> Status:
    if file.shadowed_by is not None:
        return Status.SHADOWED
    if inspection is not None and inspection.verdict is Verdict.NOT_A_MODULE:
        return Status.NOT_A_MODULE
    if file.module is None:
        return Status.NOT_A_MODULE
    if file.abi.status is AbiStatus.WRONG_ABI:
        return Status.WRONG_ABI
    if inspection is None or inspection.verdict is Verdict.UNKNOWN:
        if probe is not None and probe.needs_gil is not None:
            return Status.NEEDS_GIL if probe.needs_gil else Status.KEEPS_GIL_OFF
        return Status.UNDECIDED
    return Status.KEEPS_GIL_OFF if inspection.verdict is Verdict.NOT_USED else Status.NEEDS_GIL


def check(files: Iterable[tuple[ExtensionFile, Optional[ModuleInspection]]], mode: Mode,
          allow: Sequence[AllowRule] = (), probes: Optional[dict[str, ProbeResult]] = None,
          policy_source: Optional[str] = None) -> CheckResult:
    probes = probes or {}
    results = tuple(judge(f, i, mode, allow, probes.get(f.path)) for f, i in files)
    return CheckResult(mode, results, policy_source, tuple(allow))
