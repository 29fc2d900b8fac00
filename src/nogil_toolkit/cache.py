"""Remember verdicts by file identity, so a re-check of an unchanged environment reads no binary.

One JSON file per target interpreter under the cache directory, shared by ``nogil-check-env``
and the import guard (:mod:`nogil_toolkit.guard`), both through :mod:`nogil_toolkit.check_env`.
An entry holds a file's static inspection and, once a conclusive import probe was run, the
probe's answer; it is valid while the file's path, size, mtime and inode are unchanged. The
target's facts, the environment's scan and which distribution owns which file are kept too,
each with the identity of what it was read from. The whole cache is dropped when the
toolkit's version changes (inspection rules may have changed with it). Writes are atomic: a
crashed or concurrent run leaves either the old cache or the new one, never half of one.

The cache directory is not trusted more than any other input: a cache file that is not a regular
file of sane size and depth (a FIFO, a link to ``/dev/zero``, ``[[[...``) reads as an empty
cache, and only a regular file (or nothing) is ever replaced, so a FIFO, a device node or a
symlink someone put at its name stays as it is; the check then just runs uncached.
"""

from __future__ import annotations

import contextlib
import json
import os
import stat
from pathlib import Path
from typing import Any, NamedTuple, Optional

from nogil_toolkit import __version__
from nogil_toolkit.cache_location import cache_file
from nogil_toolkit.environment import Distribution, ExtensionFile
from nogil_toolkit.inspect.verdict import ModuleInspection
from nogil_toolkit.probe import ProbeResult
from nogil_toolkit.serialize import (extension_file_from_json, extension_file_to_json, inspection_from_json,
                                     inspection_to_json, probe_from_json, probe_to_json)
from nogil_toolkit.regular_file import read_regular
from nogil_toolkit.verdict_index import MAX_CACHE_FILE_SIZE, identity, read, render

FORMAT = 1


def file_identity(stat: os.stat_result) -> list[int]:
    return [stat.st_size, stat.st_mtime_ns, stat.st_ino]


class CachedVerdict(NamedTuple):
    """What is remembered about one unchanged file."""

    inspection: ModuleInspection
    probe: Optional[ProbeResult]
    """A conclusive import probe of the file, if one was run."""


class CheckCache:
    """Verdicts and target facts for one target interpreter.

    Several processes may use one cache at once (a check and applications under the import
    guard): :meth:`save` merges what this object changed into the file as it is then, so
    that one process does not throw away what another one learnt meanwhile."""

    def __init__(self, directory: str | os.PathLike[str], target_key: str) -> None:
        self.path = Path(cache_file(os.fspath(directory), target_key))
        self._data: dict[str, Any] = {"format": FORMAT, "toolkit": __version__, "target": None, "owners": None,
                                      "scan": None, "files": {}}
        self._changed: set[str] = set()
        """Top-level keys set, and ``files/<path>`` for file entries stored or forgotten."""
        loaded = self._read()
        if loaded is not None:
            self._data = loaded

    def _read(self) -> Optional[dict[str, Any]]:
        """The cache file's content if it is a cache of this toolkit; None for anything else."""
        data = read_regular(str(self.path), MAX_CACHE_FILE_SIZE)
        if data is None:
            return None
        try:
            loaded = json.loads(data.decode("utf-8"))
        except (ValueError, RecursionError):  # RecursionError: nested deeper than json.loads goes
            return None
        if isinstance(loaded, dict) and loaded.get("format") == FORMAT and loaded.get("toolkit") == __version__ \
                and isinstance(loaded.get("files"), dict):
            return loaded
        return None

    def target_facts(self, identity: list[Any]) -> Optional[dict[str, Any]]:
        entry = self._data.get("target")
        return entry["facts"] if entry and entry.get("identity") == identity else None

    def store_target_facts(self, identity: list[Any], facts: dict[str, Any]) -> None:
        self._data["target"] = {"identity": identity, "facts": facts}
        self._changed.add("target")

    def owners(self, stamp: list[Any]) -> Optional[dict[str, Distribution]]:
        """The owners of extension files read when the site folders had this ``stamp``."""
        entry = self._data.get("owners")
        if not entry or entry.get("stamp") != stamp:
            return None
        try:
            distributions: dict[tuple[str, str], Distribution] = {}
            return {path: distributions.setdefault((name, version), Distribution(name, version))
                    for path, (name, version) in entry["owners"].items()}
        except (KeyError, ValueError, TypeError, AttributeError):
            return None

    def store_owners(self, stamp: list[Any], owners: dict[str, Distribution]) -> None:
        self._data["owners"] = {"stamp": stamp, "owners": {p: [d.name, d.version] for p, d in owners.items()}}
        self._changed.add("owners")

    def scan(self, key: Any) -> Optional[tuple[list[Any], list[ExtensionFile]]]:
        """The stamps (``[path, mtime_ns or None]``) and the files of the scan stored under
        ``key``; the caller checks the stamps."""
        entry = self._data.get("scan")
        if not entry or entry.get("key") != key:
            return None
        try:
            return entry["stamps"], [extension_file_from_json(f) for f in entry["files"]]
        except (KeyError, ValueError, TypeError, IndexError):
            return None

    def store_scan(self, key: Any, stamps: list[Any], files: list[ExtensionFile]) -> None:
        self._data["scan"] = {"key": key, "stamps": stamps, "files": [extension_file_to_json(f) for f in files]}
        self._changed.add("scan")

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
        self._changed.add(f"files/{path}")

    def store_probe(self, path: str, stat: os.stat_result, probe: ProbeResult) -> None:
        """Add a probe's answer to the entry of the same file (ignored if the file changed)."""
        entry = self._data["files"].get(path)
        if entry is None or entry[0] != file_identity(stat):
            return
        self._data["files"][path] = [entry[0], entry[1], probe_to_json(probe)]
        self._changed.add(f"files/{path}")

    def forget_missing(self, present: set[str]) -> None:
        """Drop entries of files no longer in the environment, so the cache does not grow forever."""
        stale = [p for p in self._data["files"] if p not in present]
        for path in stale:
            del self._data["files"][path]
            self._changed.add(f"files/{path}")

    @property
    def index_path(self) -> Path:
        """The guard's index of the decided files (:mod:`nogil_toolkit.verdict_index`)."""
        return self.path.with_suffix(".index")

    def save(self) -> None:
        """Best effort: a read-only cache directory must never fail the check.

        Writes the cache file if something changed, then the index derived from it if that is
        not the index of the cache file as it now is (another writer, an older toolkit). Writes
        neither where something other than a regular file has their name."""
        if not self._changed:
            if not self._index_current():
                self._write_index(self._read() or self._data)
            return
        current = self._read()
        if current is not None:  # someone else saved since we read: keep what they added
            for key in self._changed:
                if key.startswith("files/"):
                    path = key[len("files/"):]
                    if path in self._data["files"]:
                        current["files"][path] = self._data["files"][path]
                    else:
                        current["files"].pop(path, None)
                else:
                    current[key] = self._data[key]
            self._data = current
        import tempfile  # only a run that learnt something writes: a cached re-check does not

        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            if not _replaceable(self.path):
                return
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
        self._changed.clear()
        self._write_index(self._data)

    def _index_current(self) -> bool:
        try:
            status = os.stat(self.path)
        except OSError:
            return True  # no cache file: no index to make
        if not stat.S_ISREG(status.st_mode):
            return True  # nor for what is no cache file: an index is derived from one
        return read(str(self.index_path), identity(status)) is not None

    def _write_index(self, data: dict[str, Any]) -> None:
        """The index of ``data``, stamped with the identity of the cache file it was read from
        or written to (it is that file's now): atomically, best effort."""
        import tempfile

        try:
            if not _replaceable(self.index_path):
                return
            text = render(data["files"], identity(os.stat(self.path)))
            fd, temp = tempfile.mkstemp(prefix=".check-env-", dir=self.path.parent)
        except OSError:
            return
        try:
            with os.fdopen(fd, "w", encoding="utf-8", errors="surrogateescape") as stream:
                stream.write(text)
            os.replace(temp, self.index_path)
        except OSError:
            with contextlib.suppress(OSError):
                os.unlink(temp)


def _replaceable(path: Path) -> bool:
    """Nothing or a regular file is at ``path``: renaming over anything else (a FIFO, a device
    node, a symlink, a folder) would throw away what someone deliberately put there."""
    try:
        return stat.S_ISREG(os.lstat(path).st_mode)
    except FileNotFoundError:
        return True
