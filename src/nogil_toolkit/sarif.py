"""SARIF 2.1.0 logs, the one writer behind every ``--format sarif`` (audit, check-env, wheel verify).

Code-scanning services read SARIF: each finding is a *result* that names a *rule* (by id and
index into the driver's rule list) and a *location*. A location's ``artifactLocation`` is a
percent-encoded URI, relative to a named base (``originalUriBaseIds``) where one contains the
file, so that a log stays readable when the folder moves; a file inside an archive (a wheel's
member) is an artifact whose ``parentIndex`` names the archive (SARIF 2.1.0 §3.24.3).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Iterable, Mapping, Optional, Sequence, TextIO
from urllib.parse import quote

from nogil_toolkit import __version__

SCHEMA_URI = "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"
LEVELS = ("error", "warning", "note", "none")


@dataclass(frozen=True)
class Rule:
    """One kind of finding, as the log's driver describes it once."""

    id: str
    summary: str
    help: str
    level: str
    help_uri: Optional[str] = None

    def to_sarif(self) -> Dict[str, Any]:
        rule: Dict[str, Any] = {"id": self.id, "shortDescription": {"text": self.summary},
                                "help": {"text": self.help}, "defaultConfiguration": {"level": self.level}}
        if self.help_uri:
            rule["helpUri"] = self.help_uri
        return rule


def uri_reference(path: str) -> str:
    """A relative path as a URI reference: percent-encoded bytes (spaces, ``%``, ``#``, names
    that are not UTF-8), ``/`` kept."""
    return quote(os.fsencode(path), safe="/")


def file_uri(path: str | os.PathLike[str], folder: bool = False) -> str:
    """The ``file:`` URI of an absolute path (a folder's ends with ``/``, as base URIs must)."""
    uri = "file://" + uri_reference(Path(os.path.abspath(path)).as_posix())
    return uri + "/" if folder and not uri.endswith("/") else uri


def artifact_location(path: str, bases: Mapping[str, str | os.PathLike[str]]) -> Dict[str, str]:
    """Where ``path`` is: relative to the innermost of ``bases`` (base id -> folder) that holds
    it, else an absolute ``file:`` URI."""
    absolute = Path(os.path.abspath(path))
    best: Optional[tuple[int, str, str]] = None
    for base_id, folder in bases.items():
        try:
            relative = absolute.relative_to(os.path.abspath(folder)).as_posix()
        except ValueError:
            continue
        if best is None or len(relative) < best[0]:
            best = (len(relative), relative, base_id)
    if best is None:
        return {"uri": file_uri(absolute)}
    return {"uri": uri_reference(best[1]), "uriBaseId": best[2]}


def result(rule_id: str, level: str, message: str, location: Mapping[str, Any],
           region: Optional[Mapping[str, int]] = None, **extra: Any) -> Dict[str, Any]:
    """One result at one physical location (``extra``: more SARIF result properties, such as
    ``suppressions``)."""
    physical: Dict[str, Any] = {"artifactLocation": dict(location)}
    if region:
        physical["region"] = dict(region)
    return {"ruleId": rule_id, "level": level, "message": {"text": message},
            "locations": [{"physicalLocation": physical}], **extra}


def sarif_log(tool: str, rules: Sequence[Rule], results: Iterable[Dict[str, Any]], *,
              bases: Mapping[str, str | os.PathLike[str]] = {}, artifacts: Sequence[Dict[str, Any]] = (),
              **run_properties: Any) -> Dict[str, Any]:
    """A log with one run of ``tool``; each result gets the ``ruleIndex`` of its rule."""
    index = {rule.id: i for i, rule in enumerate(rules)}
    run: Dict[str, Any] = {
        "tool": {"driver": {"name": tool, "version": __version__, "rules": [rule.to_sarif() for rule in rules]}},
    }
    if bases:
        run["originalUriBaseIds"] = {base_id: {"uri": file_uri(folder, folder=True)}
                                     for base_id, folder in bases.items()}
    if artifacts:
        run["artifacts"] = list(artifacts)
    run.update(run_properties)
    run["results"] = [{**r, "ruleIndex": index[r["ruleId"]]} for r in results]
    return {"$schema": SCHEMA_URI, "version": "2.1.0", "runs": [run]}


def write(log: Dict[str, Any], stream: TextIO) -> None:
    json.dump(log, stream, indent=2, ensure_ascii=False)
    stream.write("\n")
