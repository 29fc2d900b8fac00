"""Add or refresh the declaration record in a wheel built by any backend.

For wheels the setuptools plugin did not build (maturin, meson-python, scikit-build, or a
plugin-built wheel after ``auditwheel repair``), the record is derived from the binaries
themselves, so it can only say what they already declare; a binary the inspector cannot
judge stops the annotation rather than being guessed.

The wheel is rewritten member by member (same names, order, bytes, timestamps, permissions
and compression), with the record added or replaced and ``RECORD`` rewritten with its hash
and size, into a temporary file beside the target that then replaces it: an interrupted run
leaves the original wheel in place.
"""

from __future__ import annotations

import os
import tempfile
import zipfile
from dataclasses import dataclass
from typing import Optional

from wheel.wheelfile import WheelFile

from nogil_toolkit.inspect import Verdict
from nogil_toolkit.wheel.reading import WheelReport
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
    """Write ``report``'s wheel with a fresh record to ``output`` (default: in place)."""
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
    member = f"{report.dist_info}/{RECORD_NAME}"
    record_file = f"{report.dist_info}/RECORD"
    # Staged beside the target (same file system, so the final rename is atomic) under the
    # wheel's own name, which WheelFile insists on; the folder goes away whatever happens.
    with tempfile.TemporaryDirectory(prefix=".annotate-", dir=os.path.dirname(os.path.abspath(target))) as staging:
        staged = os.path.join(staging, os.path.basename(report.path))
        with zipfile.ZipFile(report.path) as source, WheelFile(staged, "w") as out:
            infos = [i for i in source.infolist() if i.filename not in (member, record_file)]
            template = next((i for i in infos if i.filename.startswith(report.dist_info + "/")), None)
            for info in infos:
                out.writestr(info, source.read(info))
            out.writestr(_like(template, member), record.to_text().encode("utf-8"))
        if os.path.exists(target):
            os.chmod(staged, os.stat(target).st_mode & 0o7777)
        os.replace(staged, target)


def _like(template: Optional[zipfile.ZipInfo], name: str) -> zipfile.ZipInfo:
    """A ZipInfo for a new member, dated and permissioned like its dist-info siblings."""
    info = zipfile.ZipInfo(name, date_time=template.date_time if template else (1980, 1, 1, 0, 0, 0))
    info.compress_type = zipfile.ZIP_DEFLATED
    info.external_attr = template.external_attr if template else 0o644 << 16
    return info
