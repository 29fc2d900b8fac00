"""What the wheel commands print about a wheel, in text and JSON, shared by inspect and verify;
for verify also GitHub workflow commands and SARIF, each finding at the wheel member it is about."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Optional, Sequence, TextIO

from nogil_toolkit.console import plural, printable, style
from nogil_toolkit.serialize import inspection_to_json
from nogil_toolkit.wheel.reading import WheelReport
from nogil_toolkit.wheel.record import RECORD_NAME
from nogil_toolkit.wheel.verify import Finding, Severity

if TYPE_CHECKING:
    from nogil_toolkit.sarif import Rule


@dataclass(frozen=True)
class Verified:
    """What verify learnt of one wheel: its report and findings, or why it cannot be read."""

    path: str
    report: Optional[WheelReport] = None
    findings: Sequence[Finding] = ()
    unreadable: Optional[str] = None


def wheel_json(report: WheelReport, findings: Sequence[Finding] | None = None) -> dict[str, Any]:
    data: dict[str, Any] = {
        "path": report.path,
        "name": report.name,
        "version": report.version,
        "tags": sorted(str(t) for t in report.tags),
        "root_is_purelib": report.root_is_purelib,
        "free_threading_classifier": report.free_threading_classifier,
        "record": None if report.record is None else {
            "thread_safe": report.record.thread_safe,
            "generator": report.record.generator,
            "modules": {k: v.value for k, v in sorted(report.record.modules.items())},
        },
        "record_error": report.record_error,
        "modules": [
            {"member": m.member, "module": m.module, "built_for": m.suffix.built_for,
             "inspection": inspection_to_json(m.inspection)}
            for m in report.modules
        ],
    }
    if findings is not None:
        data["findings"] = [{"severity": f.severity.value, "claim": f.claim, "module": f.module,
                             "message": f.message} for f in findings]
    return data


def write_wheel_text(report: WheelReport, stream: TextIO) -> None:
    def out(line: str = "") -> None:
        print(printable(line), file=stream)

    print(style(printable(report.path), "bold", stream), file=stream)
    out(f"  project {report.name} {report.version}; tags {', '.join(sorted(str(t) for t in report.tags))}")
    out(f"  classifier: {report.free_threading_classifier or 'no Free Threading classifier'}")
    if report.record_error:
        out(f"  record: unreadable ({report.record_error})")
    elif report.record is None:
        out("  record: none (annotate the wheel to add one)")
    else:
        default = {True: "thread-safe = true", False: "thread-safe = false", None: "no package default"}
        out(f"  record: {len(report.record.modules)} modules, {default[report.record.thread_safe]}, "
            f"by {report.record.generator}")
    modules = report.extension_modules
    helpers = len(report.modules) - len(modules)
    out(f"  {plural(len(modules), 'extension module')}" +
        (f", {plural(helpers, 'other shared library', 'other shared libraries')}" if helpers else "") +
        (":" if modules else ""))
    for module in sorted(modules, key=lambda m: m.module or ""):
        inspection = module.inspection
        detail = inspection.reason if inspection.reason else (inspection.evidence[0].detail if inspection.evidence
                                                              else "")
        generator = f" [{inspection.generator}]" if inspection.generator else ""
        out(f"    {module.module}  {inspection.verdict.value}{generator}  ({detail})")


def write_findings(findings: Sequence[Finding], stream: TextIO) -> None:
    for finding in findings:
        label = style("error", "red", stream) if finding.severity is Severity.ERROR else style("warning", "yellow",
                                                                                                 stream)
        print(f"  {label} [{finding.claim}] {printable(finding.message)}", file=stream)


def finding_member(report: WheelReport, finding: Finding) -> Optional[str]:
    """The member a finding is about: the module's binary, else the declaration record for a
    record claim; None when it is about the wheel as a whole."""
    member = next((m.member for m in report.modules if finding.module and m.module == finding.module), None)
    if member is None and finding.claim == "record":
        member = f"{report.dist_info}/{RECORD_NAME}"
    return member


def write_verify_github(verified: Verified, stream: TextIO) -> None:
    """One ``::error`` or ``::warning`` per finding, at the wheel file (GitHub annotates files,
    not archive members: the member is in the title)."""
    from nogil_toolkit.workflow_commands import annotation, workspace_path

    report = verified.report
    if report is None:
        print(annotation("error", f"{verified.path}: {verified.unreadable}", file=workspace_path(verified.path),
                         title="nogil-toolkit wheel verify: unreadable wheel"), file=stream)
        return
    for finding in verified.findings:
        about = finding_member(report, finding) or os.path.basename(report.path)
        print(annotation("error" if finding.severity is Severity.ERROR else "warning", finding.message,
                         file=workspace_path(report.path),
                         title=f"nogil-toolkit wheel verify [{finding.claim}]: {about}"), file=stream)


def _verify_rules() -> list[Rule]:
    from nogil_toolkit.sarif import Rule

    return [
        Rule("record", "The wheel's nogil-declaration.json disagrees with what its binaries declare.",
             "Rebuild with the build plugin, or run 'nogil-toolkit wheel annotate' on the wheel.", "error"),
        Rule("tag", "A free-threaded ABI tag (cp313t) on a wheel with a module that does not declare "
             "Py_MOD_GIL_NOT_USED.", "Declare the module thread-safe ([tool.nogil]) and rebuild.", "error"),
        Rule("suffix", "An extension file's suffix does not fit the wheel's ABI tags.",
             "Build the wheel with the interpreter its tags name.", "error"),
        Rule("classifier", "The 'Programming Language :: Python :: Free Threading' classifier on a wheel "
             "with a module that does not declare Py_MOD_GIL_NOT_USED.",
             "Declare the module thread-safe, or drop the classifier.", "error"),
        Rule("unreadable", "The wheel cannot be read, or installers would refuse it.",
             "Rebuild the wheel.", "error"),
    ]


def write_verify_sarif(verified: Sequence[Verified], stream: TextIO) -> None:
    """A SARIF 2.1.0 log: every wheel is an artifact (relative to the current directory,
    ``SRCROOT``), every member a finding is about a nested artifact of it (``parentIndex``, its
    URI the member's path inside the archive), and each finding a result there."""
    from nogil_toolkit import sarif

    bases = {"SRCROOT": os.getcwd()}
    artifacts: list[dict[str, Any]] = []
    results: list[dict[str, Any]] = []
    for wheel in verified:
        wheel_index = len(artifacts)
        artifacts.append({"location": sarif.artifact_location(wheel.path, bases), "roles": ["analysisTarget"]})
        report = wheel.report
        if report is None:
            results.append(sarif.result("unreadable", "error", str(wheel.unreadable),
                                        {**artifacts[wheel_index]["location"], "index": wheel_index}))
            continue
        members: dict[str, int] = {}
        for finding in wheel.findings:
            member = finding_member(report, finding)
            if member is None:
                location = {**artifacts[wheel_index]["location"], "index": wheel_index}
            else:
                if member not in members:
                    members[member] = len(artifacts)
                    artifacts.append({"location": {"uri": "/" + sarif.uri_reference(member)},
                                      "parentIndex": wheel_index})
                location = {**artifacts[members[member]]["location"], "index": members[member]}
            results.append(sarif.result(finding.claim, finding.severity.value, finding.message, location))
    sarif.write(sarif.sarif_log("nogil-toolkit-wheel-verify", _verify_rules(), results, bases=bases,
                                artifacts=artifacts), stream)
