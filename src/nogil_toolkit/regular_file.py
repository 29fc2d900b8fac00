"""Reading a path nobody vetted: only a regular file, never blocking, never without bound.

Any path the toolkit reads may be given by a user or found in an environment, a cache folder
or a build tree, and may be a FIFO (opening it waits for a writer), a device (``/dev/zero``
never ends; opening some has effects), a huge file, or a file swapped for one of these after a
first look. So files are opened non-blocking, their type is checked through the open
descriptor, and reads are bounded. Imports nothing but ``os`` and ``stat``: the runtime
guard's warm path reads the verdict index through here.
"""

from __future__ import annotations

import os
import stat

TYPE_CHECKING = False  # typing is not imported at run time (see above)
if TYPE_CHECKING:
    from typing import Optional

OPEN_FLAGS = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_BINARY", 0)
"""How to open a file to read: opening a FIFO returns at once, a terminal never becomes ours."""

_KINDS = {stat.S_IFDIR: "a directory", stat.S_IFIFO: "a FIFO (named pipe)", stat.S_IFSOCK: "a socket",
          stat.S_IFCHR: "a character device", stat.S_IFBLK: "a block device"}


def file_kind(mode: int) -> str:
    """What a file of ``st_mode`` that is no regular file is, for an error saying why it is not
    read or replaced (``<path> is a FIFO (named pipe), not a regular file``)."""
    return _KINDS.get(stat.S_IFMT(mode), "a special file")


def read_regular(path: str, limit: int) -> Optional[bytes]:
    """The content of ``path`` if it is a regular file of at most ``limit`` bytes; None for
    anything else (missing, unreadable, another kind of file, larger, a NUL in the path)."""
    try:
        fd = os.open(path, OPEN_FLAGS)
    except (OSError, ValueError):  # ValueError: a NUL byte in the path
        return None
    try:
        status = os.fstat(fd)
        if not stat.S_ISREG(status.st_mode) or status.st_size > limit:
            return None
        chunks, size = [], 0
        while size <= limit:  # bounded even if the file grows after fstat
            chunk = os.read(fd, min(max(status.st_size + 1, 1 << 16), limit + 1 - size))
            if not chunk:
                return b"".join(chunks)
            chunks.append(chunk)
            size += len(chunk)
        return None
    except OSError:
        return None
    finally:
        os.close(fd)
