"""JSON forms of the inspector's and the import probe's answers (shared by the verdict cache
and the JSON reports) and of the files an environment holds (for the cache).

One mapping in both directions, so that what a report prints and what the cache stores can
never drift apart. An inspection's form lives with the inspector's values
(:mod:`nogil_toolkit.inspect.verdict`): its workers send answers in it.
"""

from __future__ import annotations

from typing import Any

__all__ = ["inspection_from_json", "inspection_to_json", "probe_from_json", "probe_to_json",
           "extension_file_from_json", "extension_file_to_json"]

from nogil_toolkit.abi import AbiStatus, ExtensionName
from nogil_toolkit.environment import Distribution, ExtensionFile
from nogil_toolkit.inspect.verdict import inspection_from_json, inspection_to_json
from nogil_toolkit.probe import ProbeResult


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
