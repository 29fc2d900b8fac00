"""Find and read a project's ``pyproject.toml`` without trusting what sits at that path.

The build plugin, ``nogil-check-env --project`` and ``declare`` all read a file that someone
else put there. A FIFO would block ``open()`` forever, a directory or a device is not a file at
all, a multi-gigabyte file would be read whole into memory, and binary junk would reach the
TOML parser as text. Each of these ends here with :class:`PyprojectFileError`: one sentence
saying what the path is, which the commands print as ``error: <what> (<path>)``.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path
from typing import Optional, Union

from nogil_toolkit.regular_file import OPEN_FLAGS, file_kind

PYPROJECT = "pyproject.toml"

MAX_SIZE = 4 * 1024 * 1024
"""Larger than any real ``pyproject.toml`` by two orders of magnitude; anything bigger is not one."""



class PyprojectFileError(ValueError):
    """The path is not a readable ``pyproject.toml``; ``message`` says why, ``path`` where."""

    def __init__(self, path: Path, message: str) -> None:
        super().__init__(f"{message} ({path})")
        self.path = path
        self.message = message


def find_pyproject(project: Union[str, os.PathLike[str]]) -> Path:
    """``project/pyproject.toml`` if ``project`` is a directory, else ``project`` itself.

    A path that does not exist is taken as the file it names, so an error about
    ``missing/pyproject.toml`` names exactly that path.
    """
    path = Path(project)
    return path / PYPROJECT if path.is_dir() else path


def read_pyproject(path: Path) -> Optional[str]:
    """The text of ``path``, or ``None`` if nothing is there (a dangling symlink counts as nothing).

    Raises PyprojectFileError for anything that is not a regular, readable UTF-8 text file of
    at most :data:`MAX_SIZE` bytes. Never blocks: the file is opened non-blocking and checked
    again through the open descriptor, so a FIFO swapped in after the first look is still refused.
    """
    try:
        _check_regular(path, os.stat(path))  # before open(): opening some devices has effects
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise PyprojectFileError(path, _os_problem(exc)) from None
    try:
        descriptor = os.open(path, OPEN_FLAGS)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise PyprojectFileError(path, _os_problem(exc)) from None
    with open(descriptor, "rb", closefd=True) as stream:
        status = os.fstat(descriptor)
        _check_regular(path, status)
        try:
            # The size is checked first to spare the read, and the read is bounded anyway: a file
            # may grow after fstat.
            data = b"" if status.st_size > MAX_SIZE else stream.read(MAX_SIZE + 1)
        except OSError as exc:
            raise PyprojectFileError(path, _os_problem(exc)) from None
    if status.st_size > MAX_SIZE or len(data) > MAX_SIZE:
        raise PyprojectFileError(path, f"{PYPROJECT} is larger than {MAX_SIZE // (1024 * 1024)} MiB, "
                                       "so it is not a pyproject.toml")
    return decode(path, data)


def decode(path: Path, data: bytes) -> str:
    """``data`` as UTF-8 text, or an error naming the line and column of the first bad byte."""
    nul = data.find(b"\0")
    if nul >= 0:
        line, column = _position(data, nul)
        raise PyprojectFileError(path, f"{PYPROJECT} contains a NUL byte at line {line}, column {column}: "
                                       "it is not a text file")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line, column = _position(data, exc.start)
        raise PyprojectFileError(path, f"{PYPROJECT} is not UTF-8 text (byte 0x{data[exc.start]:02x} at line "
                                       f"{line}, column {column}); TOML files are UTF-8") from None


def _check_regular(path: Path, status: os.stat_result) -> None:
    if not stat.S_ISREG(status.st_mode):
        raise PyprojectFileError(path, f"{PYPROJECT} is {file_kind(status.st_mode)}, not a regular file")


def _os_problem(exc: OSError) -> str:
    if exc.errno == errno.ELOOP:
        return f"{PYPROJECT} is a symlink loop"
    if exc.errno in (errno.EACCES, errno.EPERM):
        return f"{PYPROJECT} cannot be read: permission denied"
    return f"{PYPROJECT} cannot be read: {exc.strerror or exc}"


def _position(data: bytes, offset: int) -> tuple[int, int]:
    """1-based line and column (in bytes) of ``offset``."""
    line_start = data.rfind(b"\n", 0, offset) + 1
    return data.count(b"\n", 0, offset) + 1, offset - line_start + 1
