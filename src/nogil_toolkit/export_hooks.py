"""Does a built module define Python 3.15's export hook ``PyModExport_<name>`` (PEP 793)?

For the build plugins: the setuptools plugin decides from it whether the shim wraps the hook,
the meson backend checks its wheels with it.

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
The toolkit's ELF, PE and Mach-O readers list those exports. setuptools links a module found
to define the hook once more, with the wrapper, which hides the renamed original; meson and
CMake cannot relink, so there the build names the modules with a hook (``--export-hook``): the
meson backend fails a wheel whose module still exports a renamed hook nobody wrapped, and CMake
checks each module after linking it (``nogil-toolkit shim --check-built``).
"""

from __future__ import annotations

import contextlib
import mmap
import os
from pathlib import Path
from typing import Iterator, Optional

from nogil_toolkit.inspect.core import image_reader
from nogil_toolkit.inspect.image import Buffer, MalformedBinary
from nogil_toolkit.regular_file import map_regular
from nogil_toolkit.shim import ShimPlan


def exports(library: Path) -> frozenset[str]:
    """The names ``library`` exports; empty when it is missing or in no format we read."""
    try:
        with mapped_binary(library) as data:
            return exported_names(data)
    except FileNotFoundError:
        return frozenset()


@contextlib.contextmanager
def mapped_binary(library: Path) -> Iterator[Buffer]:
    """The linked module at ``library``, mapped as :func:`nogil_toolkit.inspect.inspect_binary`
    maps a file (:func:`~nogil_toolkit.regular_file.map_regular`): a build passes whatever path
    it was given, and reading a FIFO would block, a device (``/dev/zero``) never end. OSError
    when it cannot be read, NotRegularFile when it is no regular file."""
    data = map_regular(os.fspath(library))
    try:
        yield data
    finally:
        if isinstance(data, mmap.mmap):
            data.close()


def exported_names(data: Buffer) -> frozenset[str]:
    """The names the library in ``data`` exports; empty for a format we do not read."""
    reader = image_reader(data)
    if reader is None:
        return frozenset()
    try:
        return frozenset(reader[1](data).exports)
    except MalformedBinary:
        return frozenset()


def needs_hook_wrapper(library: Path, plan: ShimPlan) -> bool:
    """The module linked without the wrapper exports its renamed hook: wrap it."""
    return not plan.export_hook and unwrapped_hook(exports(library), plan)


def unwrapped_hook(names: frozenset[str], plan: ShimPlan) -> bool:
    """Among a module's exported ``names``, its renamed hook: the sources define the hook and
    the shim does not wrap it (the wrapper would hide it)."""
    return plan.hook_alias in names


def unwrapped_hook_problem(plan: ShimPlan, binary: Buffer, remedy: str) -> Optional[str]:
    """What is wrong when ``binary`` (the module ``plan`` built) defines a hook its shim does not
    wrap, ending with ``remedy`` (each build system names the hook its own way); ``None`` when
    nothing is."""
    if not unwrapped_hook(exported_names(binary), plan):
        return None
    return (f"{plan.module} defines Python 3.15's export hook {plan.hook_symbol}, which CPython 3.15 prefers over "
            f"{plan.init_symbol}, but its shim does not wrap it: {remedy}")


def has_hook_wrapper(library: Path, plan: ShimPlan) -> bool:
    """An up-to-date module from an earlier build already carries the wrapper (the renamed
    hook is hidden then, the wrapper exported): keep it, so a no-op rebuild stays a no-op."""
    return plan.hook_symbol in exports(library)
