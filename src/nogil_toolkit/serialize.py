"""JSON forms of the inspector's and the import probe's answers, shared by the verdict cache
and the JSON reports.

One mapping in both directions, so that what a report prints and what the cache stores can
never drift apart.
"""

from __future__ import annotations

from typing import Any

from nogil_toolkit.inspect.verdict import Evidence, EvidenceKind, ModuleInspection, Verdict
from nogil_toolkit.probe import ProbeResult


def evidence_to_json(evidence: Evidence) -> dict[str, Any]:
    return {"kind": evidence.kind.value, "detail": evidence.detail, "offset": evidence.offset}


def inspection_to_json(inspection: ModuleInspection) -> dict[str, Any]:
    return {
        "verdict": inspection.verdict.value,
        "format": inspection.format,
        "machine": inspection.machine,
        "init_symbols": list(inspection.init_symbols),
        "evidence": [evidence_to_json(e) for e in inspection.evidence],
        "reason": inspection.reason,
        "generator": inspection.generator,
        "generator_version": inspection.generator_version,
    }


def inspection_from_json(path: str, data: dict[str, Any]) -> ModuleInspection:
    """Raises KeyError or ValueError on data of another shape (a cache of an older version)."""
    return ModuleInspection(
        path=path,
        format=data["format"],
        machine=data["machine"],
        init_symbols=tuple(data["init_symbols"]),
        verdict=Verdict(data["verdict"]),
        evidence=tuple(Evidence(EvidenceKind(e["kind"]), e["detail"], e["offset"]) for e in data["evidence"]),
        reason=data["reason"],
        generator=data["generator"],
        generator_version=data["generator_version"],
    )


def probe_to_json(probe: ProbeResult) -> dict[str, Any]:
    return {"module": probe.module, "gil_enabled": probe.gil_enabled, "blamed": probe.blamed, "error": probe.error,
            "exec_error": probe.exec_error}


def probe_from_json(data: dict[str, Any]) -> ProbeResult:
    """Raises KeyError on data of another shape."""
    return ProbeResult(data["gil_enabled"], data["blamed"], data["error"], data["module"], data["exec_error"])
