"""A wheel's zip archive, read safely: the installers' rules first, then members within a budget.

A wheel is untrusted input. Before any member is read, the archive is held to what installers
refuse (checked against pip 25 and pypa/installer; the sources are named in each rule):

- a member whose path leaves the installation folder: absolute (``/x``, ``C:\\x``,
  ``\\\\server\\x``) or climbing with ``..`` once normalised, with ``\\`` read as the separator
  Windows makes of it (pip: "trying to install outside the target directory"; installer:
  "Attempting to write ... outside of the target directory");
- two members with the same name: an installer writes both and keeps the last, so what is
  inspected need not be what is installed (installer's ``validate_record`` refuses the second
  copy as "not mentioned in RECORD", the first having used up the name);
- a file the ``RECORD`` does not list with hash and size (installer's ``validate_record``),
  and a ``RECORD`` line for a file the wheel does not contain: ``RECORD`` is the wheel's
  inventory, so either way it and the archive disagree;
- a member stored encrypted (zip flag bit 0): pip and installer read members with ``zipfile``,
  which asks for a password nobody gives, so neither can install the wheel. This is checked
  first, as even ``RECORD`` may be encrypted.

Members are then read within fixed budgets, so that a few megabytes of zip cannot cost gigabytes
of memory or minutes of time. The size a member declares is checked before it is opened, and
the bytes actually produced are counted while it is read (``zipfile`` stops at the declared
size, but the count does not rely on that). A binary is streamed through a temporary file and
mapped, as installed files are, so memory stays at one chunk whatever its size. A member whose
data ``zipfile`` or its decompressor cannot read (corrupt deflate, an unknown method) is an
``ArchiveError`` naming it.
"""

from __future__ import annotations

import base64
import contextlib
import csv
import hashlib
import io
import mmap
import ntpath
import os
import stat
import tempfile
import zipfile
import zlib
from typing import IO, Iterator, Optional, Sequence, Union

from nogil_toolkit.console import plural

try:
    import lzma
    _LZMA_ERRORS: tuple[type[Exception], ...] = (lzma.LZMAError,)
except ImportError:  # a Python built without lzma: zipfile refuses such members (RuntimeError)
    _LZMA_ERRORS = ()

MAX_BINARY_SIZE = 1 << 30
"""Largest extension binary read (1 GiB, uncompressed): about twice the largest modules known
(TensorFlow's ``_pywrap_tensorflow_internal``); larger members are reported, not read."""
MAX_BINARIES_PER_WHEEL = 4 << 30
"""Binary bytes read from one wheel in all (4 GiB): bounds the time a wheel of many members takes."""
MAX_METADATA_SIZE = 64 << 20
"""Largest ``RECORD``, ``METADATA``, ``WHEEL`` or declaration record read (64 MiB)."""
_IN_MEMORY = 32 << 20
"""Binaries up to this size are kept in memory; larger ones go through a temporary file."""
_CHUNK = 1 << 20
_ENCRYPTED = 0x1
"""The zip general purpose flag of an encrypted member."""
_MEMBER_ERRORS = (zipfile.BadZipFile, zlib.error, *_LZMA_ERRORS, OSError, EOFError, NotImplementedError,
                  RuntimeError)
"""What opening or reading a damaged member raises: a bad local header or CRC (``BadZipFile``),
corrupt deflate, LZMA or bzip2 data (``OSError``) cut short (``EOFError``), a compression method
``zipfile`` lacks (``NotImplementedError``, or ``RuntimeError`` for a module missing here)."""


class ArchiveError(Exception):
    """The archive breaks a rule installers enforce, or cannot be read; the message says why."""


class MemberTooLarge(ArchiveError):
    """A member is larger than the budget allows: reported, not read."""


class WheelArchive:
    """An open wheel whose layout installers would accept; members are read within budgets,
    each checked against its ``RECORD`` hash when read to the end.

    Raises ``ArchiveError`` (rules, hashes, budgets, damaged members), and ``OSError`` and
    ``zipfile.BadZipFile`` when the archive itself cannot be opened.
    """

    def __init__(self, path: str) -> None:
        check_regular_file(path)
        self._zip = zipfile.ZipFile(path)
        try:
            self.infos = self._zip.infolist()
            _refuse(_encrypted_members(self.infos))
            self.dist_info = self._dist_info(os.path.basename(path))
            self.record_path = f"{self.dist_info}/RECORD"
            self._hashes: dict[str, tuple[str, bytes]] = {}
            try:
                record_text = self.read_metadata(self.record_path).decode("utf-8")
                problems = installer_problems(self.infos, record_text, self.record_path)
                hashes = _record_hashes(record_text)
            except (UnicodeDecodeError, csv.Error) as exc:
                raise ArchiveError(f"{self.record_path} is not UTF-8 CSV ({exc})") from None
            _refuse(problems)
            self._hashes = hashes
            self.record_rows = [row for row in csv.reader(io.StringIO(record_text)) if row]
            """``RECORD`` as rows, in its order (for rewriting it with one line changed)."""
        except BaseException:
            self._zip.close()
            raise

    def __enter__(self) -> WheelArchive:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._zip.close()

    def _dist_info(self, filename: str) -> str:
        """``name-version.dist-info`` as the file name spells it, or as the archive does when
        it differs only in case (the normalised lowercase names of newer backends)."""
        spelled = "-".join(filename.split("-")[:2]) + ".dist-info"
        names = {info.filename for info in self.infos}
        if f"{spelled}/RECORD" in names:
            return spelled
        for member in names:
            if member.lower() == f"{spelled}/record".lower():
                return member.rsplit("/", 1)[0]
        raise ArchiveError(f"has no {spelled}/RECORD")

    def has(self, name: str) -> bool:
        return name in self._zip.NameToInfo

    def read_metadata(self, name: str) -> bytes:
        """A small member (``RECORD``, ``METADATA``...) in full; ``MemberTooLarge`` past 64 MiB,
        ``KeyError`` if there is none."""
        with self._bounded(self._zip.getinfo(name), MAX_METADATA_SIZE) as chunks:
            return b"".join(chunks)

    @contextlib.contextmanager
    def read_binary(self, info: zipfile.ZipInfo, budget: BinaryBudget) -> Iterator[Union[bytes, mmap.mmap]]:
        """The member's bytes, in memory when small, else mapped from a temporary file that is
        gone when the block ends; raises ``MemberTooLarge`` before reading anything if the
        declared size is over budget, and as soon as the bytes read are."""
        limit = budget.limit_for(info)
        memory = bytearray()
        spill: Optional[io.BufferedRandom] = None
        try:
            with self._bounded(info, limit) as chunks:
                for chunk in chunks:
                    budget.left -= len(chunk)
                    if spill is None and len(memory) + len(chunk) <= _IN_MEMORY:
                        memory += chunk
                        continue
                    if spill is None:
                        spill = tempfile.TemporaryFile(prefix=".nogil-member-")
                        spill.write(memory)
                        memory = bytearray()
                    spill.write(chunk)
            if spill is None:
                yield bytes(memory)
                return
            spill.flush()
            with mmap.mmap(spill.fileno(), 0, access=mmap.ACCESS_READ) as mapped:
                yield mapped
        finally:
            if spill is not None:
                spill.close()

    def stream(self, info: zipfile.ZipInfo) -> contextlib.AbstractContextManager[Iterator[bytes]]:
        """The member's bytes in chunks, whatever its size, checked against ``RECORD`` at the end
        (for copying a member without holding it)."""
        return self._bounded(info, info.file_size)

    @contextlib.contextmanager
    def _bounded(self, info: zipfile.ZipInfo, limit: int) -> Iterator[Iterator[bytes]]:
        """The member's bytes in chunks, refusing (``MemberTooLarge``) a declared size or an
        actual output beyond ``limit``, and checking the ``RECORD`` hash at the end."""
        if info.file_size > limit:
            raise MemberTooLarge(f"{_size(info.file_size)} uncompressed, over the {_size(limit)} limit, so not read")
        expected = self._hashes.get(info.filename)
        digest = hashlib.new(expected[0]) if expected else None
        with self._open(info) as stream:
            def chunks() -> Iterator[bytes]:
                produced = 0
                while chunk := _read_chunk(stream, info):
                    produced += len(chunk)
                    if produced > limit:
                        raise MemberTooLarge(f"decompresses to more than {_size(limit)}, though it declares "
                                             f"{_size(info.file_size)}")
                    if digest is not None:
                        digest.update(chunk)
                    yield chunk
                if expected is not None and digest is not None and digest.digest() != expected[1]:
                    raise ArchiveError(f"hash mismatch for {info.filename!r}: its bytes are not those RECORD "
                                       "lists (the wheel was altered or damaged)")
            yield chunks()

    def _open(self, info: zipfile.ZipInfo) -> IO[bytes]:
        try:
            return self._zip.open(info)
        except _MEMBER_ERRORS as exc:
            raise _unreadable(info, exc) from None


def _read_chunk(stream: IO[bytes], info: zipfile.ZipInfo) -> bytes:
    """The next chunk of member ``info`` (empty at its end)."""
    try:
        return stream.read(_CHUNK)
    except _MEMBER_ERRORS as exc:
        raise _unreadable(info, exc) from None


def _unreadable(info: zipfile.ZipInfo, exc: Exception) -> ArchiveError:
    return ArchiveError(f"member {info.filename!r} cannot be read ({str(exc) or type(exc).__name__})")


class BinaryBudget:
    """What is left of one wheel's budget for binaries."""

    def __init__(self, total: int = MAX_BINARIES_PER_WHEEL, per_member: int = MAX_BINARY_SIZE) -> None:
        self.total = self.left = total
        self.per_member = per_member

    def limit_for(self, info: zipfile.ZipInfo) -> int:
        """The most ``info`` may produce; raises ``MemberTooLarge`` if its declared size is over."""
        if info.file_size > self.per_member:
            raise MemberTooLarge(f"{_size(info.file_size)} uncompressed, over the {_size(self.per_member)} "
                                 "limit for one binary, so not read")
        if info.file_size > self.left:
            raise MemberTooLarge(f"not read: with it the wheel's binaries would pass the {_size(self.total)} "
                                 "read at most from one wheel")
        return min(self.per_member, self.left)


def check_regular_file(path: str) -> None:
    """Refuse, before opening it, a path that is not a regular file: opening a FIFO blocks
    until a writer comes, forever if none does. Raises ``OSError`` or ``ArchiveError``."""
    mode = os.stat(path).st_mode
    if stat.S_ISDIR(mode):
        raise ArchiveError("is a directory")
    if not stat.S_ISREG(mode):
        raise ArchiveError("not a regular file (a FIFO, socket or device), so not read")


def member_escapes(name: str) -> bool:
    """Whether installing member ``name`` would write outside the installation folder, on
    POSIX or on Windows (where ``\\`` separates too and drives and UNC paths are absolute)."""
    if name.startswith(("/", "\\")) or ntpath.splitdrive(name)[0]:
        return True
    normal = ntpath.normpath(name)
    return normal == ".." or normal.startswith("..\\")


def _encrypted_members(infos: Sequence[zipfile.ZipInfo]) -> list[str]:
    """One phrase per encrypted member (empty: none)."""
    return [f"member {info.filename!r} is encrypted, which installers cannot read"
            for info in infos if info.flag_bits & _ENCRYPTED]


def _refuse(problems: Sequence[str]) -> None:
    """Raise ``ArchiveError`` listing the first five of ``problems``, if there are any."""
    if problems:
        more = f"; and {len(problems) - 5} more" if len(problems) > 5 else ""
        raise ArchiveError(f"installers refuse this wheel: {'; '.join(problems[:5])}{more}")


def installer_problems(infos: Sequence[zipfile.ZipInfo], record_text: str, record_path: str) -> list[str]:
    """What installers refuse in this archive, one phrase each (empty: nothing)."""
    problems = [f"member {info.filename!r} would be installed outside the target folder"
                for info in infos if member_escapes(info.filename)]
    counts: dict[str, int] = {}
    for info in infos:
        counts[info.filename] = counts.get(info.filename, 0) + 1
    # Directory entries are not installed (installers skip them), so only files count twice.
    problems += [f"{count} members are named {name!r} (an installer keeps only the last)"
                 for name, count in counts.items() if count > 1 and not name.endswith("/")]
    listed = {row[0]: row[1:] for row in csv.reader(io.StringIO(record_text)) if row}
    signatures = {f"{record_path}.jws", f"{record_path}.p7s"}
    for name in counts:
        if name.endswith("/") or name == record_path or name in signatures:
            continue
        if name not in listed:
            problems.append(f"{name!r} is not listed in RECORD")
        elif len(listed[name]) < 2 or not all(listed[name][:2]):
            problems.append(f"RECORD lists {name!r} without its hash and size")
    problems += [f"RECORD lists {name!r}, which the wheel does not contain"
                 for name in listed if name not in counts and not name.endswith("/")]
    return problems


def _record_hashes(record_text: str) -> dict[str, tuple[str, bytes]]:
    """Member name -> (algorithm, digest) from ``RECORD``; refuses the hashes PEP 427 forbids."""
    hashes = {}
    for row in csv.reader(io.StringIO(record_text)):
        if len(row) < 2 or not row[1]:
            continue
        algorithm, _, encoded = row[1].partition("=")
        if algorithm.lower() in ("md5", "sha1") or algorithm not in hashlib.algorithms_available:
            raise ArchiveError(f"RECORD uses the hash {algorithm!r} for {row[0]!r}, which is weak or unknown (PEP 427)")
        try:
            hashes[row[0]] = (algorithm, base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)))
        except ValueError:
            raise ArchiveError(f"RECORD has a malformed hash for {row[0]!r}") from None
    return hashes


def _size(count: int) -> str:
    """``3.0 GiB``, ``512 MiB``, ``4 kiB``: sizes as people read them."""
    for unit, shift in (("GiB", 30), ("MiB", 20), ("kiB", 10)):
        if count >= 1 << shift:
            value = count / (1 << shift)
            return f"{value:.1f} {unit}" if value < 10 and value != int(value) else f"{value:.0f} {unit}"
    return plural(count, "byte")
