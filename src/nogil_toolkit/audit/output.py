"""An audit's result as text for people, JSON (``audit.schema.json``) or SARIF 2.1.0."""

from __future__ import annotations

import json
import os
from collections import Counter
from pathlib import Path
from typing import Any, Dict, TextIO

from nogil_toolkit import __version__, sarif
from nogil_toolkit.audit import AuditResult
from nogil_toolkit.audit.rules import Rule, Severity, load_rules
from nogil_toolkit.console import plural, style

JSON_SCHEMA_VERSION = 1
_COLOURS = {Severity.ERROR: "red", Severity.WARNING: "yellow", Severity.NOTE: "dim"}


def shown(path: str) -> str:
    """A path as text any stream can print: bytes of a file name that are not UTF-8 (kept by
    Python as surrogates) are written as ``\\xNN``."""
    return os.fsencode(path).decode("utf-8", "backslashreplace")


def render_text(result: AuditResult, stream: TextIO) -> None:
    """One block per finding, ``file:line:col: severity [rule] ...``, as compilers print them."""
    for finding in result.findings:
        severity = finding.rule.severity
        print(f"{shown(finding.path)}:{finding.line}:{finding.column}: "
              f"{style(str(severity), _COLOURS[severity], stream)} [{finding.rule.id}] {finding.message}", file=stream)
        print(f"    instead: {finding.rule.replacement_text}", file=stream)


def summary(result: AuditResult) -> str:
    """The closing line: what was read, what was found, by severity."""
    counts = ", ".join(plural(result.count(s), str(s)) for s in sorted(Severity, reverse=True) if result.count(s))
    files = len({f.path for f in result.findings})
    found = f"{plural(len(result.findings), 'finding')} ({counts}) in {plural(files, 'file')}" \
        if result.findings else "no findings"
    extra = [f"{result.suppressed} suppressed"] if result.suppressed else []
    if result.skipped:
        extra.append(f"{len(result.skipped)} skipped")
    tail = f"; {', '.join(extra)}" if extra else ""
    return f"audited {plural(result.audited, 'file')} from {result.origin} in {result.seconds:.2f} s: {found}{tail}"


def _finding_json(finding) -> Dict[str, Any]:
    rule: Rule = finding.rule
    return {"path": shown(finding.path), "line": finding.line, "column": finding.column, "end_column": finding.end_column,
            "rule": rule.id, "severity": str(rule.severity), "api": finding.api, "message": finding.message,
            "replacement": {"text": rule.replacement, "since": rule.since or None,
                            "pythoncapi_compat": rule.pythoncapi_compat},
            "documentation": {"section": rule.section, "url": rule.url}}


def to_json(result: AuditResult, exit_code: int) -> Dict[str, Any]:
    return {
        "schema_version": JSON_SCHEMA_VERSION,
        "tool": {"name": "nogil-toolkit audit", "version": __version__},
        "origin": result.origin,
        "files_audited": result.audited,
        "skipped": [{"path": shown(p), "reason": r} for p, r in result.skipped],
        "notes": [{"path": shown(p), "note": n} for p, n in result.notes],
        "suppressed": result.suppressed,
        "summary": {"by_rule": dict(sorted(Counter(f.rule.id for f in result.findings).items())),
                    "by_severity": {str(s): result.count(s) for s in sorted(Severity, reverse=True)}},
        "exit_code": exit_code,
        "findings": [_finding_json(f) for f in result.findings],
    }


def to_sarif(result: AuditResult, base: Path) -> Dict[str, Any]:
    """A SARIF 2.1.0 log with one run; paths relative to ``base`` (the ``SRCROOT`` base id)."""
    rules = [sarif.Rule(rule.id, f"{', '.join(rule.apis) or rule.detector}: {rule.why}",
                        f"Instead: {rule.replacement_text}. See {rule.section}.", str(rule.severity), rule.url)
             for rule in load_rules()]
    bases = {"SRCROOT": base}
    return sarif.sarif_log("nogil-toolkit-audit", rules, [
        sarif.result(f.rule.id, str(f.rule.severity), f"{f.message}. Instead: {f.rule.replacement_text}.",
                     sarif.artifact_location(f.path, bases),
                     {"startLine": f.line, "startColumn": f.column, "endColumn": f.end_column})
        for f in result.findings], bases=bases, columnKind="unicodeCodePoints")


def dump(document: Dict[str, Any], stream: TextIO) -> None:
    json.dump(document, stream, indent=2, ensure_ascii=False)
    stream.write("\n")

