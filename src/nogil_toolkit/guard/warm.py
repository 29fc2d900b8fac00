"""The guard's warm path: "what does the cache say this unchanged file does to the GIL?",
answered from the shared verdict cache with nothing but ``json`` and ``os``.

The cache file is the one ``nogil-check-env`` and the guard's cold path (:mod:`.decide`) write
through :class:`nogil_toolkit.cache.CheckCache`; this is a reader of one question, not a
second cache. It exists because a guarded interpreter asks the question for every extension
module at every start, and importing ``CheckCache`` (``pathlib``, ``typing``, the inspector's
types) costs more than the whole 5 % budget of an ``import numpy``. ``tests/guard/test_warm.py``
pins it to ``CheckCache`` and ``check.judge``: same file name, same answers.
"""

from __future__ import annotations

import json
import os
import sys

from nogil_toolkit import __version__

CACHE_FORMAT = 1
"""``nogil_toolkit.cache.FORMAT``."""
KEEPS_GIL_OFF = "not-used"
"""``Verdict.NOT_USED.value``."""
UNDECIDED = "unknown"
"""``Verdict.UNKNOWN.value``."""
KEEPS_GIL_OFF_STATUS, NEEDS_GIL_STATUS = "keeps-gil-off", "needs-gil"
"""``check.Status`` values."""
VERDICT_WORDS = {
    "used": "declares that it needs the GIL",
    "undeclared": "declares nothing about the GIL, which CPython treats as needing it",
    "not-used": "declares that it runs without the GIL",
    "not-a-module": "exports no module init function",
    "unknown": "could not be decided from its file",
}
"""Each ``Verdict`` value in words, for errors and warnings (the cold path says the same)."""


def default_cache_dir() -> str:
    """``nogil_toolkit.cache.default_cache_dir()``, as a string."""
    explicit = os.environ.get("NOGIL_TOOLKIT_CACHE")
    if explicit:
        return explicit
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "nogil-toolkit")


def cache_file(directory: str, target_key: str) -> str:
    """``CheckCache(directory, target_key).path``."""
    import zlib

    return os.path.join(directory, f"check-env-{zlib.crc32(target_key.encode()):08x}.json")


def current_cache_file(directory: str | None = None) -> str:
    """The cache of this interpreter: the one ``nogil-check-env`` (without ``--python``) uses."""
    return cache_file(directory or default_cache_dir(), os.path.abspath(sys.executable))


class WarmVerdicts:
    """The cached ``not-used`` files of one cache file, re-read when the file changes."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._files: dict[str, list] = {}
        self._stamp: tuple[int, int] | None = None

    def status(self, file: str, stat: os.stat_result) -> tuple[str, str] | None:
        """``("keeps-gil-off" | "needs-gil", evidence)`` for an unchanged file whose cached
        entry decides it, as ``check`` would: a static ``not-used`` / ``used`` / ``undeclared``
        verdict, or for an undecided one a conclusive cached import probe. None: the entry is
        missing, stale, or decides nothing (the cold path takes it). Not thread-safe on its
        own: the caller holds a lock."""
        self._refresh()
        entry = self._files.get(file)
        try:
            if entry is None or entry[0] != [stat.st_size, stat.st_mtime_ns, stat.st_ino]:
                return None
            inspection = entry[1]
            verdict = inspection["verdict"]
            if verdict in (KEEPS_GIL_OFF, "used", "undeclared"):
                first = inspection["evidence"][0]["detail"] if inspection["evidence"] else inspection["reason"]
                words = "; ".join(filter(None, (VERDICT_WORDS[verdict], first)))
                return (KEEPS_GIL_OFF_STATUS if verdict == KEEPS_GIL_OFF else NEEDS_GIL_STATUS), words
            probe = entry[2] if len(entry) > 2 else None
            if verdict == UNDECIDED and probe is not None and probe["error"] is None and probe["gil_enabled"] is not None:
                if probe["gil_enabled"] is False:
                    return KEEPS_GIL_OFF_STATUS, f"{VERDICT_WORDS[UNDECIDED]}; import probe: the GIL stayed disabled"
                if probe["blamed"] == probe["module"]:
                    return NEEDS_GIL_STATUS, f"{VERDICT_WORDS[UNDECIDED]}; import probe: loading it re-enabled the GIL"
        except (KeyError, TypeError, IndexError):
            pass
        return None

    def _refresh(self) -> None:
        try:
            stat = os.stat(self.path)
        except OSError:
            self._files, self._stamp = {}, None
            return
        stamp = (stat.st_mtime_ns, stat.st_ino)
        if stamp == self._stamp:
            return
        try:
            with open(self.path, encoding="utf-8") as stream:
                data = json.load(stream)
        except (OSError, ValueError):
            data = None
        valid = isinstance(data, dict) and data.get("format") == CACHE_FORMAT and data.get("toolkit") == __version__
        files = data.get("files") if valid else None
        self._files = files if isinstance(files, dict) else {}
        self._stamp = stamp
