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
    import mmap
    from typing import Optional, Union

OPEN_FLAGS = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_BINARY", 0)
"""How to open a file to read: opening a FIFO returns at once, a terminal never becomes ours."""

_KINDS = {stat.S_IFDIR: "a directory", stat.S_IFIFO: "a FIFO (named pipe)", stat.S_IFSOCK: "a socket",
          stat.S_IFCHR: "a character device", stat.S_IFBLK: "a block device"}


def file_kind(mode: int) -> str:
    """What a file of ``st_mode`` that is no regular file is, for an error saying why it is not
    read or replaced (``<path> is a FIFO (named pipe), not a regular file``)."""
    return _KINDS.get(stat.S_IFMT(mode), "a special file")


class NotRegularFile(OSError):
    """What is at the path is no regular file (a directory, a FIFO, a device), so it is not
    read; ``mode`` is its ``st_mode``, ``str()`` says what it is."""

    def __init__(self, mode: int) -> None:
        super().__init__(f"it is {file_kind(mode)}, not a regular file")
        self.mode = mode


def _check_regular(mode: int) -> None:
    if not stat.S_ISREG(mode):
        raise NotRegularFile(mode)


def map_regular(path: str) -> Union[mmap.mmap, bytes]:
    """The regular file at ``path`` memory-mapped read-only (``b""`` when it is empty, or was
    emptied since its size was read: mmap cannot map that); the caller closes the mapping.

    OSError when it cannot be opened, NotRegularFile when it is no regular file. The type is
    checked before the open (opening some devices has effects) and again through the
    descriptor, opened non-blocking, so a FIFO swapped in meanwhile cannot hang it."""
    import mmap  # an extension module of its own: the guard's warm path never maps a file

    _check_regular(os.stat(path).st_mode)
    fd = os.open(path, OPEN_FLAGS)
    try:
        status = os.fstat(fd)
        _check_regular(status.st_mode)
        if not status.st_size:
            return b""
        try:
            return mmap.mmap(fd, 0, access=mmap.ACCESS_READ)  # keeps a descriptor of its own
        except ValueError:
            return b""
    finally:
        os.close(fd)


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
