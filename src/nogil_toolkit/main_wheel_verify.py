"""``nogil-toolkit wheel verify``: fail when a wheel's claims disagree with its binaries."""

from __future__ import annotations

from typing import Any

from nogil_toolkit import main_wheel_inspect

EPILOG = """\
checks, each against what the binaries declare (read statically):
  record      nogil-declaration.json lists each module with the declaration its binary carries
  tag         a free-threaded ABI tag (cp313t) only with modules that declare not-used
              (an explicit 'used' is a warning: declared, but it re-enables the GIL)
  suffix      no t-only module in a cp313/abi3 wheel, no GIL or abi3 module in a cp313t wheel
  classifier  'Programming Language :: Python :: Free Threading' only when every module declares
              not-used (level 1 - Unstable: warning)

A wheel installers would refuse (a member outside the install folder, two members of one name,
a RECORD that disagrees with the archive) is an error like an unreadable one. With --format json
every wheel given is an entry (schema: wheel_report.schema.json). --format github prints GitHub
workflow commands (an annotation per finding, at the wheel file, the member in its title);
--format sarif a SARIF 2.1.0 log whose results are located at the wheel's members.

exit status: 0 no errors (warnings allowed); 1 some claim is wrong; 2 a wheel could not be read
or installers would refuse it (the others are still checked)

example:
  nogil-toolkit wheel verify wheelhouse/*.whl
  nogil-toolkit wheel verify --format github dist/*.whl
"""


def register(subparsers: Any) -> None:
    main_wheel_inspect.add_report_command(
        subparsers, "verify", check=True, epilog=EPILOG,
        help="check a wheel's tags, record and classifier against its binaries",
        formats=("text", "json", "github", "sarif"),
        format_help="text for people (default), JSON, GitHub workflow commands, or SARIF 2.1.0",
        description="Exit non-zero, with a reason per module, when a wheel's free-threading claims "
                    "disagree with what its extension modules declare.")
