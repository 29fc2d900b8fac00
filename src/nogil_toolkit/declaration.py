"""The values a module can declare about the GIL, shared by every layer of the toolkit.

CPython knows two values for the ``Py_mod_gil`` slot (``Py_MOD_GIL_USED`` is ``(void *)0``,
``Py_MOD_GIL_NOT_USED`` is ``(void *)1``); a module with no slot behaves as ``USED``. The
configuration, the build plugins, the binary inspector and the wheel metadata all speak in
these two values so that a declaration means one thing from ``pyproject.toml`` to ``.so``.
"""

from __future__ import annotations

import enum

FREE_THREADING_CLASSIFIER_PREFIX = "Programming Language :: Python :: Free Threading :: "
"""The trove classifiers a package uses to claim free-threading support (``... :: 3 - Stable``)."""


class GilDeclaration(enum.Enum):
    """What a module declares at init about running without the GIL."""

    NOT_USED = "not-used"
    """Safe without the GIL: ``Py_MOD_GIL_NOT_USED``."""

    USED = "used"
    """Needs the GIL: ``Py_MOD_GIL_USED``; a free-threaded interpreter re-enables it."""

    @property
    def c_macro(self) -> str:
        """The C macro naming this value (never the number: slot values may be renumbered)."""
        return "Py_MOD_GIL_NOT_USED" if self is GilDeclaration.NOT_USED else "Py_MOD_GIL_USED"

    @classmethod
    def from_thread_safe(cls, thread_safe: bool) -> GilDeclaration:
        """Map the user-facing ``thread-safe = true|false`` onto the slot value."""
        return cls.NOT_USED if thread_safe else cls.USED
