"""When the limited API (``Py_LIMITED_API``, the stable ABI) can be built for a target.

One rule for every build plugin (setuptools, meson): free-threaded CPython 3.13 and 3.14 can
neither compile nor load abi3 modules (abi3 bakes in the GIL build's object layout), so a
declaration built that way never reaches an interpreter. Free-threaded 3.15 has a stable ABI
of its own, abi3t (PEP 803), which Py_LIMITED_API selects there, so it is allowed from 3.15 on.
GIL builds have always had abi3.
"""

from __future__ import annotations

from typing import Optional

ABI3T_SINCE = (3, 15)
"""The first CPython whose free-threaded build has a stable ABI (abi3t, PEP 803)."""


def limited_api_refusal(version: tuple[int, int], free_threaded: bool) -> Optional[str]:
    """Why the limited API cannot be built for CPython ``version`` (free-threaded or not), or
    ``None`` when it can. The text continues a sentence naming what asked for it."""
    if not free_threaded or version >= ABI3T_SINCE:
        return None
    return (f"(the stable ABI, abi3), which free-threaded CPython {version[0]}.{version[1]} can neither compile "
            f"nor load: abi3 modules only load on GIL builds, and free-threaded builds get a stable ABI "
            f"(abi3t, PEP 803) in {ABI3T_SINCE[0]}.{ABI3T_SINCE[1]}")
