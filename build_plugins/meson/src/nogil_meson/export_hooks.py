"""A built module whose Python 3.15 export hook the shim does not wrap.

meson cannot relink a module after looking at it, as the setuptools plugin does, so the setup
block is told which modules define ``PyModExport_<name>`` (``nogil_export_hooks``). A module
left out of that list still has its hook renamed by the shim's flags, and the renamed hook,
which no wrapper hides, stays among its exports: that is how the wheel check finds it (see
:mod:`nogil_toolkit.export_hooks`)."""

from __future__ import annotations

from typing import Optional

from nogil_toolkit.declaration import GilDeclaration
from nogil_toolkit.export_hooks import unwrapped_hook_problem
from nogil_toolkit.shim import ShimPlan


def unwrapped_hook_error(module: str, declaration: GilDeclaration, binary: bytes) -> Optional[str]:
    """What to change when ``binary`` (the module's file) defines a hook its shim does not wrap."""
    return unwrapped_hook_problem(ShimPlan(module, declaration), binary,
                                  f"add {module!r} to nogil_export_hooks (templates/nogil_meson_setup.build)")
