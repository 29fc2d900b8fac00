"""Replace a file the user owns with new contents: atomically, and as the same file.

``declare`` edits a hand-written ``pyproject.toml``. Writing it in place could leave half a
file after a crash or Ctrl-C, so the new text goes to a temporary file in the same directory
that is renamed over the old one. A rename makes a *new* file, though, and a tool running as
root would silently give it root's owner, a default mode and drop the owner's decision to make
it read-only. So before anything is written, :func:`check_replaceable` refuses what could not
be written in place; the replacement then gets the original's owner, group and mode.

The rules (``force`` is ``declare --force``):

- the directory must be writable by the caller (the rename needs it);
- a file nobody may write (no ``w`` bit, e.g. 0444), or one its owner may not write, is
  read-only: refused unless ``force``, and then only for its owner or root (who could
  ``chmod`` it anyway); it stays read-only afterwards;
- a file the caller could not write in place is refused, even with ``force``;
- a file owned by another user is replaced only by root: anyone else would become its owner.
"""

from __future__ import annotations

import contextlib
import errno
import os
import signal
import stat
import tempfile
import threading
from pathlib import Path
from typing import Iterator


class ReplaceRefused(Exception):
    """The file must not be replaced by this caller; nothing was written. ``str()`` says why."""


class NotDurable(Exception):
    """The file *was* replaced, but its directory could not be synced: a crash may undo it."""

    def __init__(self, cause: OSError) -> None:
        super().__init__(cause.strerror or str(cause))
        self.cause = cause


_FS_CANNOT_SYNC_DIRECTORIES = {errno.EINVAL, errno.ENOTSUP, errno.EOPNOTSUPP}


def check_replaceable(target: Path, force: bool = False) -> os.stat_result:
    """Raise ReplaceRefused if ``target`` (a resolved path) must not be replaced; return its stat."""
    status = target.stat()
    euid = _euid()
    mode = stat.S_IMODE(status.st_mode)
    describe = f"mode {mode:04o}, owner uid {status.st_uid}"
    if not _access(target.parent, os.W_OK | os.X_OK):
        raise ReplaceRefused(f"the directory {target.parent} is not writable by you, so {target.name} "
                             "cannot be replaced; nothing was written")
    is_owner = euid in (0, status.st_uid)
    read_only = mode & 0o222 == 0 or (euid == status.st_uid and not mode & stat.S_IWUSR)
    if read_only and not (force and is_owner):
        hint = "; run with --force to replace it anyway (it stays read-only)" if is_owner else ""
        raise ReplaceRefused(f"{target.name} is read-only ({describe}); nothing was written{hint}")
    if not read_only and not _access(target, os.W_OK):
        raise ReplaceRefused(f"{target.name} is not writable by you ({describe}); nothing was written")
    if not is_owner:
        raise ReplaceRefused(f"{target.name} belongs to uid {status.st_uid}: a replacement written by you "
                             f"(uid {euid}) would belong to you; nothing was written. Run as its owner")
    return status


def new_file_status(directory: Path) -> os.stat_result:
    """The owner, group and mode a file this user creates in ``directory`` gets (0666 less the
    umask; the directory's group if it is set-group-ID), for :func:`replace_file` to give a new
    file: so a file that does not exist yet is written as atomically as a replaced one."""
    umask = os.umask(0o022)
    os.umask(umask)
    folder = directory.stat()
    uid = os.geteuid() if hasattr(os, "geteuid") else folder.st_uid
    gid = folder.st_gid if folder.st_mode & stat.S_ISGID or not hasattr(os, "getegid") else os.getegid()
    return os.stat_result((stat.S_IFREG | (0o666 & ~umask), 0, 0, 1, uid, gid, 0, 0, 0, 0))


def replace_file(target: Path, data: bytes, status: os.stat_result) -> None:
    """Replace ``target`` by ``data``, with the owner, group and mode of ``status``.

    OSError: nothing was replaced (and no temporary file is left). NotDurable: it was.
    SIGINT and SIGTERM are held back while the temporary file exists, so an interrupt takes
    effect once the old file or the new one is in place and the temporary file is gone.
    """
    with _signals_held():
        descriptor, temporary = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
        try:
            with os.fdopen(descriptor, "wb") as stream:
                stream.write(data)
                stream.flush()
                _copy_identity(descriptor, status)
                os.fsync(descriptor)
            os.replace(temporary, target)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temporary)
            raise
    try:
        _fsync_directory(target.parent)
    except OSError as exc:
        if exc.errno not in _FS_CANNOT_SYNC_DIRECTORIES:
            raise NotDurable(exc) from exc


def _copy_identity(descriptor: int, status: os.stat_result) -> None:
    """Give the new file the old one's owner, group and mode (chown first: it may clear set-id bits)."""
    created = os.fstat(descriptor)
    if hasattr(os, "fchown") and (status.st_uid, status.st_gid) != (created.st_uid, created.st_gid):
        os.fchown(descriptor, status.st_uid, status.st_gid)
    if hasattr(os, "fchmod"):  # POSIX; Windows keeps only a read-only flag, which the new file lacks anyway
        os.fchmod(descriptor, stat.S_IMODE(status.st_mode))


def _fsync_directory(directory: Path) -> None:
    """Make the rename itself durable; only POSIX can open a directory for that."""
    if not hasattr(os, "O_DIRECTORY"):
        return
    descriptor = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


@contextlib.contextmanager
def _signals_held() -> Iterator[None]:
    """Block SIGINT and SIGTERM (delivered on exit): Python code can be interrupted between any
    two bytecodes, even between ``mkstemp`` creating the file and returning its name."""
    if not hasattr(signal, "pthread_sigmask") or threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def _euid() -> int:
    return os.geteuid() if hasattr(os, "geteuid") else 0


def _access(path: Path, mode: int) -> bool:
    """Permission as the *effective* user, which is who writes (differs under setuid)."""
    if os.access in os.supports_effective_ids:
        return os.access(path, mode, effective_ids=True)
    return os.access(path, mode)
