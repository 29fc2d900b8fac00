"""The limited API (abi3) on free-threaded CPython 3.13 and 3.14: refused before meson runs,
by the same rule as the setuptools plugin (:mod:`nogil_toolkit.stable_abi`).

meson-python builds every extension for the limited API when ``pyproject.toml`` says
``[tool.meson-python] limited-api = true``; that is read here, before a compiler starts."""

from __future__ import annotations

import sys
import sysconfig
from pathlib import Path
from typing import Optional

from nogil_toolkit.pyproject_file import read_pyproject
from nogil_toolkit.stable_abi import limited_api_refusal

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - the toolkit depends on tomli there
    import tomli as tomllib


def limited_api_problem(pyproject: Path) -> Optional[str]:
    """Why this interpreter cannot build what ``pyproject`` asks for, or ``None``."""
    refusal = limited_api_refusal(sys.version_info[:2], bool(sysconfig.get_config_var("Py_GIL_DISABLED")))
    if refusal is None:
        return None
    text = read_pyproject(pyproject) or ""
    if tomllib.loads(text).get("tool", {}).get("meson-python", {}).get("limited-api") is not True:
        return None
    version = f"{sys.version_info[0]}{sys.version_info[1]}"
    return (f"[tool.meson-python] limited-api = true builds every extension with Py_LIMITED_API {refusal}. "
            f"Build on this interpreter with -Csetup-args=-Dpython.allow_limited_api=false, so it builds "
            f"version-specific cp{version}t modules.")
