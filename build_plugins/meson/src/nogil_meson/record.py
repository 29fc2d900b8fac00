"""Check a built wheel against ``[tool.nogil]`` and add the declaration record to it.

The check runs on the wheel rather than on ``meson.build``: the wheel is the one complete list
of the modules a meson build produced, whatever subdirectories and options made them. The
same rules as the setuptools plugin apply: an override naming no module of the wheel fails,
and so does a module the configuration declares whose binary does not carry the toolkit's
marker with that declaration (its ``extension_module`` lacks ``dependencies: nogil[...]``), or
that defines Python 3.15's export hook without the shim wrapping it (``nogil_export_hooks``).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from wheel.wheelfile import WheelFile

from nogil_meson.export_hooks import unwrapped_hook_error
from nogil_toolkit.config import NogilConfig, unmatched_overrides_error
from nogil_toolkit.declaration import GilDeclaration
from nogil_toolkit.marker import iter_markers
from nogil_toolkit.wheel.record import RECORD_NAME, DeclarationRecord
from nogil_toolkit.wheel.reading import WheelError, read_wheel


class RecordingError(Exception):
    """The wheel does not carry what ``[tool.nogil]`` declares; the message says what to fix."""


def record_declarations(wheel_path: Path, config: NogilConfig) -> DeclarationRecord:
    """Check ``wheel_path`` against ``config`` and rewrite it with the record in ``.dist-info``.

    A wheel without extension modules gets no record, as with setuptools."""
    try:
        report = read_wheel(wheel_path)
    except WheelError as exc:
        raise RecordingError(str(exc)) from None
    members = {m.module: m.member for m in report.extension_modules if m.module is not None}
    unmatched = unmatched_overrides_error(config, members)
    if unmatched is not None:
        raise RecordingError(str(unmatched))
    declared = {}
    with WheelFile(wheel_path) as wheel:
        for module in sorted(members):
            expected = config.declaration_for(module)
            if expected is None:
                continue
            binary = wheel.read(members[module])
            found = [m.declaration for m in iter_markers(binary) if m.module == module]
            if found != [expected]:
                raise RecordingError(_mismatch(module, expected, found))
            unwrapped = unwrapped_hook_error(module, expected, binary)
            if unwrapped is not None:
                raise RecordingError(unwrapped)
            declared[module] = expected
    record = DeclarationRecord(declared, config.thread_safe)
    if members:
        try:
            add_member(wheel_path, f"{report.dist_info}/{RECORD_NAME}", record.to_text().encode("utf-8"))
        except OSError as exc:
            raise RecordingError(f"cannot rewrite {wheel_path}: {exc}") from None
    return record


def _mismatch(module: str, expected: GilDeclaration, found: list[GilDeclaration]) -> str:
    if not found:
        return (f"[tool.nogil] declares {module} {expected.value}, but its binary was built without the "
                f"shim: give its extension_module() 'dependencies: nogil[{module!r}]' and list it in "
                f"nogil_modules (templates/nogil_meson_setup.build)")
    return (f"[tool.nogil] declares {module} {expected.value}, but its binary carries "
            f"{', '.join(d.value for d in found)}: reconfigure the build directory (meson setup --reconfigure)")


def add_member(wheel_path: Path, name: str, data: bytes) -> None:
    """Rewrite the wheel with one more member; ``WheelFile`` writes RECORD with its hash and size.

    Every other member keeps its bytes, date and permissions. The new wheel replaces the old
    one only once it is complete."""
    with tempfile.TemporaryDirectory(dir=wheel_path.parent) as staging:
        out_path = Path(staging) / wheel_path.name  # WheelFile parses the name of the file it writes
        with WheelFile(wheel_path) as source, WheelFile(out_path, "w") as out:
            for item in source.infolist():
                if item.filename not in (source.record_path, name) and not item.is_dir():
                    out.writestr(item, source.read(item))
            out.writestr(name, data)
        os.replace(out_path, wheel_path)
