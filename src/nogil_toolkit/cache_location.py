"""Where the toolkit keeps its caches, and the name of one interpreter's verdict cache.

One definition for every reader: the verdict cache (:mod:`nogil_toolkit.cache`), the import
guard's warm path (:mod:`nogil_toolkit.guard.warm`, which must import nothing heavier than
``os`` at every guarded start) and the provisioning script (``.ci/provision_freethreaded.py``,
which runs before the toolkit is installed). Hence strings, not ``pathlib``.
"""

from __future__ import annotations

import os


def default_cache_dir() -> str:
    """``$NOGIL_TOOLKIT_CACHE``, else ``$XDG_CACHE_HOME/nogil-toolkit``, else
    ``~/.cache/nogil-toolkit``."""
    explicit = os.environ.get("NOGIL_TOOLKIT_CACHE")
    if explicit:
        return explicit
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "nogil-toolkit")


def cache_file(directory: str, target_key: str) -> str:
    """The verdict cache in ``directory`` of the interpreter ``target_key`` (its absolute path).

    Any short digest will do: nothing in the file is trusted for another target (facts and
    scans carry their own key, verdicts belong to files), so a collision only costs re-reading.
    zlib, not hashlib, which would load OpenSSL; imported here, not at the top, because a
    guarded process asks this once, when the guard starts."""
    import zlib

    return os.path.join(directory, f"check-env-{zlib.crc32(target_key.encode()):08x}.json")
