"""JSON forms of the inspector's and the import probe's answers (shared by the verdict cache
and the JSON reports) and of the files an environment holds (for the cache).

One mapping in both directions, so that what a report prints and what the cache stores can
never drift apart.
"""

from __future__ import annotations

from typing import Any

from nogil_toolkit.abi import AbiStatus, ExtensionName
from nogil_toolkit.environment import Distribution, ExtensionFile
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


# A cached check turns every stored inspection back into values: dict lookups are several
# times cheaper than calling the enums.
_VERDICTS = {v.value: v for v in Verdict}
_EVIDENCE_KINDS = {k.value: k for k in EvidenceKind}


def inspection_from_json(path: str, data: dict[str, Any]) -> ModuleInspection:
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


def probe_to_json(probe: ProbeResult) -> dict[str, Any]:
    return {"module": probe.module, "gil_enabled": probe.gil_enabled, "blamed": probe.blamed, "error": probe.error,
            "exec_error": probe.exec_error}


def probe_from_json(data: dict[str, Any]) -> ProbeResult:
    """Raises KeyError on data of another shape."""
    return ProbeResult(data["gil_enabled"], data["blamed"], data["error"], data["module"], data["exec_error"])


def extension_file_to_json(file: ExtensionFile) -> list[Any]:
    """A compact list: an environment's cached scan holds hundreds of these."""
    abi, dist = file.abi, file.distribution
    return [file.path, file.module, [abi.module_basename, abi.suffix, abi.built_for, abi.free_threaded,
                                     abi.status.value, abi.reason],
            [dist.name, dist.version] if dist else None, file.shadowed_by]


def extension_file_from_json(data: list[Any]) -> ExtensionFile:
    """Raises ValueError, TypeError or IndexError on data of another shape."""
    path, module, abi, dist, shadowed_by = data
    basename, suffix, built_for, free_threaded, status, reason = abi
    name = ExtensionName(basename, suffix, built_for, free_threaded, AbiStatus(status), reason)
    return ExtensionFile(path, module, name, Distribution(*dist) if dist else None, shadowed_by)
