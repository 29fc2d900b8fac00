"""Add or refresh the declaration record in a wheel built by any backend.

For wheels the setuptools plugin did not build (maturin, meson-python, scikit-build, or a
plugin-built wheel after ``auditwheel repair``), the record is derived from the binaries
themselves, so it can only say what they already declare; a binary the inspector cannot
judge stops the annotation rather than being guessed.

The wheel is streamed member by member (same names, order, bytes, timestamps, permissions
and compression method; each member checked against its ``RECORD`` hash on the way, so a
damaged wheel is refused rather than re-hashed into a valid one), with the record replaced
where it was or added just before ``RECORD``, and ``RECORD``, where it was, changed in that
one line. The new wheel is staged in a temporary file beside the target that then replaces it;
the staging file is removed whatever ends the run (an error, Ctrl-C, ``SystemExit``), so an
interrupted run leaves the original wheel in place and nothing else. A member found damaged on
the way (only the copy reads every member) makes the wheel unreadable: ``WheelError``, as if
``read_wheel`` had found it.
"""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import os
import tempfile
import zipfile
from dataclasses import dataclass
from typing import Iterable, Optional

from nogil_toolkit.inspect import Verdict
from nogil_toolkit.wheel.archive import ArchiveError, WheelArchive
from nogil_toolkit.wheel.reading import WheelError, WheelReport
from nogil_toolkit.wheel.record import RECORD_NAME, DeclarationRecord


class AnnotateError(Exception):
    """The wheel cannot be annotated; nothing was written."""


@dataclass(frozen=True)
class AnnotateResult:
    record: DeclarationRecord
    previous: Optional[DeclarationRecord]
    output: str
    changed: bool


def record_from_binaries(report: WheelReport) -> DeclarationRecord:
    undecided = [m for m in report.extension_modules if m.inspection.verdict is Verdict.UNKNOWN]
    if undecided:
        details = "; ".join(f"{m.module}: {m.inspection.reason}" for m in undecided)
        raise AnnotateError(f"the declaration of {len(undecided)} module(s) cannot be read from the binaries, "
                            f"so no record is written ({details})")
    modules = {m.module: m.inspection.verdict.declaration for m in report.extension_modules}
    return DeclarationRecord({name: d for name, d in modules.items() if name and d})


def annotate(report: WheelReport, output: Optional[str] = None) -> AnnotateResult:
    """Write ``report``'s wheel with a fresh record to ``output`` (default: in place); raises
    ``AnnotateError`` (refused), ``WheelError`` (a damaged member) or ``OSError`` (writing)."""
    if not report.extension_modules:
        raise AnnotateError("the wheel has no extension modules: there is nothing to declare")
    record = record_from_binaries(report)
    target = output or report.path
    if report.record is not None and report.record.modules == record.modules and target == report.path:
        return AnnotateResult(report.record, report.record, target, changed=False)
    if report.record is not None:
        record = DeclarationRecord(record.modules, report.record.thread_safe)
    _rewrite(report, record, target)
    return AnnotateResult(record, report.record, target, changed=True)


def _rewrite(report: WheelReport, record: DeclarationRecord, target: str) -> None:
    record_member = f"{report.dist_info}/{RECORD_NAME}"
    text = record.to_text().encode("utf-8")
    digest = base64.urlsafe_b64encode(hashlib.sha256(text).digest()).rstrip(b"=").decode("ascii")
    handle, staged = tempfile.mkstemp(prefix=".annotate-", suffix=".whl.part",
                                      dir=os.path.dirname(os.path.abspath(target)))
    try:
        with os.fdopen(handle, "wb") as raw, WheelArchive(report.path) as source, \
                zipfile.ZipFile(raw, "w") as out:
            # Every other member is copied unchanged and checked against its RECORD line on the
            # way (a mismatch aborts the copy), so those lines stay true and RECORD can keep
            # its place: only the record's line changes, or is added just before RECORD's own.
            rows = [row for row in source.record_rows if row[0] != record_member]
            position = next((i for i, row in enumerate(rows) if row[0] == source.record_path), len(rows))
            rows.insert(position, [record_member, f"sha256={digest}", str(len(text))])
            added = not source.has(record_member)
            template = next((i for i in source.infos if i.filename.startswith(report.dist_info + "/")), None)
            for info in source.infos:
                if info.filename == record_member:
                    _write(out, _like(info, record_member), [text])
                elif info.filename == source.record_path:
                    if added:
                        _write(out, _like(template, record_member), [text])
                    _write(out, _like(info, info.filename), [_record_text(rows).encode("utf-8")])
                elif info.is_dir():
                    _write(out, _like(info, info.filename), [])
                else:
                    with source.stream(info) as chunks:
                        _write(out, _like(info, info.filename), chunks, info.file_size)
        # A new file gets the permissions of the wheel it replaces, or of the wheel it copies.
        os.chmod(staged, os.stat(target if os.path.exists(target) else report.path).st_mode & 0o7777)
        os.replace(staged, target)
    except ArchiveError as exc:
        raise WheelError(report.path, str(exc)) from None
    except zipfile.BadZipFile as exc:  # the wheel changed since it was read
        raise WheelError(report.path, f"not a valid zip archive ({exc})") from None
    finally:
        if os.path.lexists(staged):
            os.unlink(staged)


def _write(out: zipfile.ZipFile, info: zipfile.ZipInfo, chunks: Iterable[bytes], expected_size: int = 0) -> None:
    """Stream ``chunks`` into member ``info``."""
    # zipfile must know before writing whether a streamed member may need ZIP64 sizes.
    with out.open(info, "w", force_zip64=expected_size > zipfile.ZIP64_LIMIT) as stream:
        for chunk in chunks:
            stream.write(chunk)


def _record_text(rows: list[list[str]]) -> str:
    text = io.StringIO()
    csv.writer(text, lineterminator="\n").writerows(rows)
    return text.getvalue()


def _like(template: Optional[zipfile.ZipInfo], name: str) -> zipfile.ZipInfo:
    """A ZipInfo for ``name`` with the date, permissions and compression method of ``template``
    (the member it replaces, or a dist-info sibling for a new one)."""
    info = zipfile.ZipInfo(name, date_time=template.date_time if template else (1980, 1, 1, 0, 0, 0))
    info.compress_type = template.compress_type if template else zipfile.ZIP_DEFLATED
    info.external_attr = template.external_attr if template else 0o644 << 16
    info.create_system = template.create_system if template else info.create_system
    return info
