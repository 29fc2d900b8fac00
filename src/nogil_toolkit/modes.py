"""The three modes and the check's exit codes: names shared by ``nogil-check-env``, the
import guard (:mod:`nogil_toolkit.guard`) and :mod:`nogil_toolkit.check`.

Apart from :mod:`nogil_toolkit.check` so that code needing only these names (argument
parsing, ``--version``, a guard deciding at startup whether it has anything to do) imports
nothing else.
"""

from __future__ import annotations

import enum


class Mode(enum.Enum):
    """What a module that needs the GIL means for the application (see :mod:`nogil_toolkit.check`)."""

    GIL = "gil"
    NOGIL = "nogil"
    UNSAFE_NOGIL = "unsafe-nogil"


class ExitCode(enum.IntEnum):
    """Documented in ``nogil-check-env --help`` and the README."""

    OK = 0
    VIOLATED = 1
    USAGE = 2
    UNDECIDED = 3
