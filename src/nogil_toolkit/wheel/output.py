"""What the wheel commands print about a wheel, in text and JSON, shared by inspect and verify."""

from __future__ import annotations

from typing import Any, Sequence, TextIO

from nogil_toolkit.console import plural, style
from nogil_toolkit.serialize import inspection_to_json
from nogil_toolkit.wheel.reading import WheelReport
from nogil_toolkit.wheel.verify import Finding, Severity


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
        print(line, file=stream)

    out(style(report.path, "bold", stream))
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
        print(f"  {label} [{finding.claim}] {finding.message}", file=stream)
