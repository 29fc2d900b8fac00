"""The guard's warm path: "what does the cache say this unchanged file does to the GIL?",
answered from the index the shared verdict cache writes beside itself, with nothing but ``os``.

The cache file is the one ``nogil-check-env`` and the guard's cold path (:mod:`.decide`) write
through :class:`nogil_toolkit.cache.CheckCache`; its :mod:`~nogil_toolkit.verdict_index` holds
just the answers this path needs. This is a reader of one question, not a second cache. It
exists because a guarded interpreter asks the question for every extension module at every
start, and importing ``CheckCache`` (``json``, ``pathlib``, ``typing``, the inspector's types)
or parsing the whole cache costs more than the 5 % budget of an ``import numpy``.
``tests/guard/test_warm.py`` pins it to ``CheckCache`` and ``check.judge``: same file, same answers.
"""

from __future__ import annotations

import os
import sys

from nogil_toolkit.cache_location import cache_file, default_cache_dir
from nogil_toolkit.verdict_index import KEEPS_GIL_OFF as KEEPS_GIL_OFF_STATUS
from nogil_toolkit.verdict_index import NEEDS_GIL as NEEDS_GIL_STATUS
from nogil_toolkit.verdict_index import VERDICT_WORDS, identity, index_path, read

__all__ = ["KEEPS_GIL_OFF_STATUS", "NEEDS_GIL_STATUS", "VERDICT_WORDS", "WarmVerdicts", "cache_file",
           "current_cache_file", "default_cache_dir"]

CACHE_FORMAT = 1
"""``nogil_toolkit.cache.FORMAT``."""
KEEPS_GIL_OFF = "not-used"
"""``Verdict.NOT_USED.value``."""
UNDECIDED = "unknown"
"""``Verdict.UNKNOWN.value``."""


def current_cache_file(directory: str | None = None) -> str:
    """The cache of this interpreter: the one ``nogil-check-env`` (without ``--python``) uses."""
    return cache_file(directory or default_cache_dir(), os.path.abspath(sys.executable))


class WarmVerdicts:
    """The decided files of one cache file, read from its index on first use and again when the
    cache file changes (a cold decision, or another process, saved it)."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._index = index_path(path)
        self._files: dict[str, tuple[tuple[int, int, int], str, str]] = {}
        self._stamp: tuple[int, int, int] | None = None

    def status(self, file: str, stat: os.stat_result) -> tuple[str, str] | None:
        """``("keeps-gil-off" | "needs-gil", evidence)`` for an unchanged file whose cached
        entry decides it, as ``check`` would. None: the entry is missing, stale, or decides
        nothing (the cold path takes it). Not thread-safe on its own: the caller holds a lock."""
        self._refresh()
        entry = self._files.get(file)
        if entry is None or entry[0] != identity(stat):
            return None
        return entry[1], entry[2]

    def _refresh(self) -> None:
        """One stat of the cache file; the index is read only when that changed. An index that
        is not (yet) the cache file's is tried again at the next call: a save writes it."""
        try:
            stamp = identity(os.stat(self.path))
        except OSError:
            self._files, self._stamp = {}, None
            return
        if stamp == self._stamp:
            return
        files = read(self._index, stamp)
        self._files = files or {}
        self._stamp = stamp if files is not None else None
