"""Read a wheel's extension modules and claims, without extracting it.

Only the members that matter are read: the extension binaries (judged by the same inspector
as installed files), ``WHEEL``, ``METADATA`` (for the Free Threading classifier) and the
declaration record. ``archive.WheelArchive`` first refuses what installers refuse, then checks
each member read against its hash in ``RECORD`` and keeps every read within a budget, so a
corrupted or hostile wheel is reported, not trusted; a binary over budget is reported as such
(an ``UNKNOWN`` verdict saying so), not read.
"""

from __future__ import annotations

import os
import re
import zipfile
from dataclasses import dataclass
from email.message import Message
from email.parser import HeaderParser
from typing import Optional

from packaging.tags import Tag
from packaging.utils import InvalidWheelFilename, parse_wheel_filename

from nogil_toolkit.abi import SuffixTag, dotted_module_name, inspection_versions, is_extension_file, parse_suffix
from nogil_toolkit.declaration import FREE_THREADING_CLASSIFIER_PREFIX
from nogil_toolkit.inspect import ModuleInspection, Verdict, inspect_bytes_for
from nogil_toolkit.wheel.archive import ArchiveError, BinaryBudget, MemberTooLarge, WheelArchive
from nogil_toolkit.wheel.record import RECORD_NAME, DeclarationRecord, RecordError

_DATA_PREFIX = re.compile(r"^[^/]+\.data/(?:platlib|purelib)/")


class WheelError(Exception):
    """The file is not a readable wheel (or one installers refuse); the message names the file."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason


@dataclass(frozen=True)
class WheelModule:
    """One extension binary in a wheel."""

    member: str
    module: Optional[str]
    """Dotted import name once installed; None for helper libraries (``pkg.libs/libx.so``)."""
    suffix: SuffixTag
    inspection: ModuleInspection


@dataclass(frozen=True)
class WheelReport:
    path: str
    name: str
    version: str
    tags: frozenset[Tag]
    dist_info: str
    root_is_purelib: bool
    classifiers: tuple[str, ...]
    record: Optional[DeclarationRecord]
    record_error: Optional[str]
    modules: tuple[WheelModule, ...]

    @property
    def extension_modules(self) -> tuple[WheelModule, ...]:
        """The binaries an import can reach, except those known to be plain libraries: an
        unreadable binary may well be a module, so it stays in (with its UNKNOWN verdict)."""
        return tuple(m for m in self.modules
                     if m.module is not None and m.inspection.verdict is not Verdict.NOT_A_MODULE)

    @property
    def free_threading_classifier(self) -> Optional[str]:
        return next((c for c in self.classifiers if c.startswith(FREE_THREADING_CLASSIFIER_PREFIX)), None)


def read_wheel(path: str | os.PathLike[str]) -> WheelReport:
    """Everything the wheel commands need to know about one wheel; raises WheelError."""
    path = os.fspath(path)
    filename = os.path.basename(path)
    try:
        name, version, _build, tags = parse_wheel_filename(filename)
    except InvalidWheelFilename as exc:
        raise WheelError(path, f"not a wheel file name ({exc})") from None
    try:
        with WheelArchive(path) as wheel:
            return _read(wheel, path, str(name), str(version), tags)
    except FileNotFoundError:
        raise WheelError(path, "no such file") from None
    except zipfile.BadZipFile as exc:
        raise WheelError(path, f"not a valid zip archive ({exc}); the file may be truncated") from None
    except ArchiveError as exc:
        raise WheelError(path, str(exc)) from None
    except (OSError, EOFError, zipfile.LargeZipFile, ValueError, NotImplementedError) as exc:
        # A member that cannot be read is an ArchiveError naming it; these are about the file
        # itself (EIO, EACCES) or its directory, as zipfile finds them when it opens the archive.
        raise WheelError(path, f"cannot be read ({exc})") from None


def _read(wheel: WheelArchive, path: str, name: str, version: str, tags: frozenset[Tag]) -> WheelReport:
    dist_info = wheel.dist_info
    wheel_meta = _headers(wheel, f"{dist_info}/WHEEL")
    metadata = _headers(wheel, f"{dist_info}/METADATA")
    record, record_error = None, None
    if wheel.has(f"{dist_info}/{RECORD_NAME}"):
        try:
            record = DeclarationRecord.from_bytes(wheel.read_metadata(f"{dist_info}/{RECORD_NAME}"))
        except RecordError as exc:
            record_error = str(exc)
        except MemberTooLarge as exc:
            record_error = f"{RECORD_NAME}: {exc}"
    budget = BinaryBudget()
    # Which CPython versions the tags admit decides whether PEP 793 export hooks count (3.15+).
    pythons = inspection_versions(tags)
    modules = []
    for info in wheel.infos:
        member = info.filename
        if member.endswith("/") or not is_extension_file(member):
            continue
        suffix = parse_suffix(member.rsplit("/", 1)[-1])
        module = _module_name(member, suffix)
        modules.append(WheelModule(member, module, suffix, _inspect(wheel, info, module, budget, pythons)))
    return WheelReport(
        path=path, name=name, version=version, tags=tags, dist_info=dist_info,
        root_is_purelib=(wheel_meta.get("Root-Is-Purelib", "false").strip().lower() == "true"),
        classifiers=tuple(metadata.get_all("Classifier") or ()),
        record=record, record_error=record_error, modules=tuple(modules),
    )


def _inspect(wheel: WheelArchive, info: zipfile.ZipInfo, module: Optional[str],
             budget: BinaryBudget, pythons: list[tuple[int, int]]) -> ModuleInspection:
    """The member's inspection; its dotted ``module`` name makes only its own marker count."""
    try:
        with wheel.read_binary(info, budget) as data:
            return inspect_bytes_for(data, info.filename, module, pythons)
    except MemberTooLarge as exc:
        return ModuleInspection(path=info.filename, format=None, machine=None, init_symbols=(),
                                verdict=Verdict.UNKNOWN, evidence=(), reason=str(exc))


def _headers(wheel: WheelArchive, member: str) -> Message:
    try:
        text = wheel.read_metadata(member).decode("utf-8")
    except KeyError:
        raise ArchiveError(f"has no {member}") from None
    except MemberTooLarge as exc:
        raise ArchiveError(f"{member}: {exc}") from None
    except UnicodeDecodeError as exc:
        raise ArchiveError(f"{member} is not UTF-8 ({exc})") from None
    return HeaderParser().parsestr(text)


def _module_name(member: str, suffix: SuffixTag) -> Optional[str]:
    relative = _DATA_PREFIX.sub("", member)
    return dotted_module_name([*relative.split("/")[:-1], suffix.basename])
