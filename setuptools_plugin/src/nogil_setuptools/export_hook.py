"""Does a built module define Python 3.15's export hook ``PyModExport_<name>`` (PEP 793)?

The shim must wrap the hook when, and only when, the module defines it: CPython 3.15 prefers
an exported hook over ``PyInit_<name>`` and fails the import when a hook returns NULL, so a
wrapper around a hook that does not exist would break a module that has only ``PyInit_``.

Nothing before the link can tell. The sources may spell the hook through macros (a generator's
``CONCAT(PyModExport_, name)``), so scanning them guesses; the shim is its own translation
unit, so the preprocessor cannot see them; and a weak reference decides what the wrapper calls,
not whether the wrapper is exported (and PE has no weak symbols). The linked module can: the
sources are compiled with the hook renamed (:meth:`ShimPlan.hook_rename_macro`), and since
``PyMODEXPORT_FUNC`` exports what it declares, the renamed hook shows among the module's
exports exactly when the sources define an exported hook, which is CPython's own criterion.
The toolkit's ELF, PE and Mach-O readers list those exports. A module found to define the
hook is linked once more with the wrapper, which hides the renamed original.
"""

from __future__ import annotations

from pathlib import Path

from nogil_toolkit.inspect import elf, macho, pe
from nogil_toolkit.inspect.image import MalformedBinary
from nogil_toolkit.shim import ShimPlan


def exports(library: Path) -> frozenset[str]:
    """The names ``library`` exports; empty when it is missing or in no format we read."""
    try:
        data = library.read_bytes()
    except FileNotFoundError:
        return frozenset()
    for recognises, load in ((lambda head: head.startswith(elf.MAGIC), elf.load), (pe.is_pe, pe.load),
                             (macho.is_macho, macho.load)):
        if recognises(data[:8]):
            try:
                return frozenset(load(data).exports)
            except MalformedBinary:
                return frozenset()
    return frozenset()


def needs_hook_wrapper(library: Path, plan: ShimPlan) -> bool:
    """The module linked without the wrapper exports its renamed hook: wrap it."""
    return not plan.export_hook and plan.hook_alias in exports(library)


def has_hook_wrapper(library: Path, plan: ShimPlan) -> bool:
    """An up-to-date module from an earlier build already carries the wrapper (the renamed
    hook is hidden then, the wrapper exported): keep it, so a no-op rebuild stays a no-op."""
    return plan.hook_symbol in exports(library)
