"""Remember verdicts by file identity, so a re-check of an unchanged environment reads no binary.

One JSON file per target interpreter under the cache directory, shared by ``nogil-check-env``
and the runtime guard. An entry holds a file's static inspection and, once a conclusive
import probe was run, the probe's answer; it is valid while the file's path, size, mtime and
inode are unchanged. The whole cache is dropped when the toolkit's version changes
(inspection rules may have changed with it). Writes are atomic: a crashed or concurrent run
leaves either the old cache or the new one, never half of one.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from pathlib import Path
from dataclasses import dataclass
from typing import Any, Optional

from nogil_toolkit import __version__
from nogil_toolkit.inspect.verdict import ModuleInspection
from nogil_toolkit.probe import ProbeResult
from nogil_toolkit.serialize import inspection_from_json, inspection_to_json, probe_from_json, probe_to_json

FORMAT = 1


def default_cache_dir() -> Path:
    explicit = os.environ.get("NOGIL_TOOLKIT_CACHE")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "nogil-toolkit"


def file_identity(stat: os.stat_result) -> list[int]:
    return [stat.st_size, stat.st_mtime_ns, stat.st_ino]


@dataclass(frozen=True)
class CachedVerdict:
    """What is remembered about one unchanged file."""

    inspection: ModuleInspection
    probe: Optional[ProbeResult]
    """A conclusive import probe of the file, if one was run."""


class CheckCache:
    """Verdicts and target facts for one target interpreter."""

    def __init__(self, directory: Path, target_key: str) -> None:
        digest = hashlib.sha256(target_key.encode()).hexdigest()[:16]
        self.path = directory / f"check-env-{digest}.json"
        self._data: dict[str, Any] = {"format": FORMAT, "toolkit": __version__, "target": None, "files": {}}
        self._dirty = False
        try:
            loaded = json.loads(self.path.read_text("utf-8"))
        except (OSError, ValueError):
            return
        if isinstance(loaded, dict) and loaded.get("format") == FORMAT and loaded.get("toolkit") == __version__:
            self._data = loaded

    def target_facts(self, identity: list[Any]) -> Optional[dict[str, Any]]:
        entry = self._data.get("target")
        return entry["facts"] if entry and entry.get("identity") == identity else None

    def store_target_facts(self, identity: list[Any], facts: dict[str, Any]) -> None:
        self._data["target"] = {"identity": identity, "facts": facts}
        self._dirty = True

    def lookup(self, path: str, stat: os.stat_result) -> Optional[CachedVerdict]:
        entry = self._data["files"].get(path)
        if entry is None or entry[0] != file_identity(stat):
            return None
        try:
            probe = probe_from_json(entry[2]) if len(entry) > 2 else None
            return CachedVerdict(inspection_from_json(path, entry[1]), probe)
        except (KeyError, ValueError, TypeError, IndexError):
            return None

    def store(self, path: str, stat: os.stat_result, inspection: ModuleInspection) -> None:
        """A fresh inspection replaces the whole entry: a probe of an older file is forgotten."""
        self._data["files"][path] = [file_identity(stat), inspection_to_json(inspection)]
        self._dirty = True

    def store_probe(self, path: str, stat: os.stat_result, probe: ProbeResult) -> None:
        """Add a probe's answer to the entry of the same file (ignored if the file changed)."""
        entry = self._data["files"].get(path)
        if entry is None or entry[0] != file_identity(stat):
            return
        self._data["files"][path] = [entry[0], entry[1], probe_to_json(probe)]
        self._dirty = True

    def forget_missing(self, present: set[str]) -> None:
        """Drop entries of files no longer in the environment, so the cache does not grow forever."""
        stale = [p for p in self._data["files"] if p not in present]
        for path in stale:
            del self._data["files"][path]
        self._dirty = self._dirty or bool(stale)

    def save(self) -> None:
        """Best effort: a read-only cache directory must never fail the check."""
        if not self._dirty:
            return
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd, temp = tempfile.mkstemp(prefix=".check-env-", dir=self.path.parent)
        except OSError:
            return
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as stream:
                json.dump(self._data, stream, separators=(",", ":"))
            os.replace(temp, self.path)
        except OSError:
            with contextlib.suppress(OSError):
                os.unlink(temp)
            return
        self._dirty = False
