"""The verdict cache's index for the import guard: one text line per file whose cached entry
decides it, next to the cache file and written by the same :meth:`CheckCache.save`.

A guarded interpreter asks "what does this unchanged file do to the GIL?" for every extension
module at every start. The cache file answers it, but parsing all of it (every inspection, the
environment's scan, which distribution owns which file) costs a guarded ``import numpy`` more
than the guard's whole budget once ``nogil-check-env`` has filled it. The index holds only the
answers, keyed by path and file identity, and reads with ``str.split``: no ``json`` import.

It is derived data, never a second cache: its first line names the identity (size, mtime,
inode) of the cache file it was made from, and a reader ignores it unless the cache file still
has that identity. A missing or stale index only sends modules to the guard's cold path, which
saves the cache, which writes the index again.
"""

from __future__ import annotations

import os

from nogil_toolkit import __version__
from nogil_toolkit.regular_file import read_regular

TYPE_CHECKING = False  # typing is not imported at run time: a guarded start reads this module
if TYPE_CHECKING:
    from typing import Any, Optional

FORMAT = f"nogil-toolkit {__version__} verdict index 1"
"""With the toolkit's version: like the cache, an index is trusted only by the version that wrote it."""
KEEPS_GIL_OFF, NEEDS_GIL = "keeps-gil-off", "needs-gil"
"""``check.Status`` values."""
VERDICT_WORDS = {
    "used": "declares that it needs the GIL",
    "undeclared": "declares nothing about the GIL, which CPython treats as needing it",
    "not-used": "declares that it runs without the GIL",
    "not-a-module": "exports no module init function",
    "unknown": "could not be decided from its file",
}
"""Each ``Verdict`` value in words, for errors and warnings (the cold path says the same)."""
MAX_CACHE_FILE_SIZE = 64 * 1024 * 1024
"""Bytes at most in a cache file or its index: an entry takes a few hundred, so this is room
for a hundred thousand extension files; anything larger was not written by the toolkit."""

def index_path(cache_path: str) -> str:
    """``check-env-<key>.index`` beside ``check-env-<key>.json``."""
    return os.path.splitext(cache_path)[0] + ".index"


def identity(status: os.stat_result) -> tuple[int, int, int]:
    """What a cache entry is valid for (``cache.file_identity``), as a tuple."""
    return status.st_size, status.st_mtime_ns, status.st_ino


def decided(entry: Any) -> Optional[tuple[str, str]]:
    """(``keeps-gil-off`` | ``needs-gil``, evidence in words) for a cache entry
    (``[identity, inspection, probe?]``) that decides its file as ``check.judge`` would: a static
    ``not-used`` / ``used`` / ``undeclared`` verdict, or for an undecided one a conclusive import
    probe. None: the entry decides nothing (the guard's cold path takes the file)."""
    try:
        inspection = entry[1]
        verdict = inspection["verdict"]
        if verdict in ("not-used", "used", "undeclared"):
            first = inspection["evidence"][0]["detail"] if inspection["evidence"] else inspection["reason"]
            words = "; ".join(filter(None, (VERDICT_WORDS[verdict], first)))
            return (KEEPS_GIL_OFF if verdict == "not-used" else NEEDS_GIL), words
        probe = entry[2] if len(entry) > 2 else None
        if verdict == "unknown" and probe is not None and probe["error"] is None and probe["gil_enabled"] is not None:
            if probe["gil_enabled"] is False:
                return KEEPS_GIL_OFF, f"{VERDICT_WORDS['unknown']}; import probe: the GIL stayed disabled"
            if probe["blamed"] == probe["module"]:
                return NEEDS_GIL, f"{VERDICT_WORDS['unknown']}; import probe: loading it re-enabled the GIL"
    except (KeyError, TypeError, IndexError):
        pass
    return None


def render(files: dict[str, Any], cache_identity: tuple[int, int, int]) -> str:
    """The index of a cache's ``files`` table. Lines are tab-separated: size, mtime, inode,
    status, path, evidence; a path holding a tab or a line break is left out (the cold path
    decides it)."""
    lines = [f"{FORMAT}\t{' '.join(map(str, cache_identity))}"]
    for path, entry in files.items():
        answer = decided(entry)
        if answer is None or "\t" in path or "\n" in path or "\r" in path:
            continue
        try:
            size, mtime, inode = (int(n) for n in entry[0])
        except (TypeError, ValueError):
            continue
        status, words = answer
        words = " ".join(words.split())  # no tab or line break from a detail
        lines.append(f"{size}\t{mtime}\t{inode}\t{status}\t{path}\t{words}")
    return "\n".join(lines) + "\n"


def read(path: str, cache_identity: tuple[int, int, int]) -> Optional[dict[str, tuple[tuple[int, int, int], str, str]]]:
    """path → (identity, status, evidence) from the index at ``path``; None when it is missing,
    not a regular file of at most :data:`MAX_CACHE_FILE_SIZE` bytes (a FIFO put there would
    block a guarded application at start-up), of another format, or made from another state of
    the cache file."""
    data = read_regular(path, MAX_CACHE_FILE_SIZE)
    if data is None:
        return None
    # Written in text mode: on Windows its lines end in CRLF (no indexed path holds a CR).
    text = data.decode("utf-8", "surrogateescape").replace("\r\n", "\n")
    header, _, body = text.partition("\n")
    if header != f"{FORMAT}\t{' '.join(map(str, cache_identity))}":
        return None
    answers = {}
    try:
        for line in body.split("\n"):
            fields = line.split("\t")
            if len(fields) == 6:
                size, mtime, inode, status, file, words = fields
                answers[file] = ((int(size), int(mtime), int(inode)), status, words)
    except ValueError:  # not written by render(): trust none of it
        return None
    return answers
