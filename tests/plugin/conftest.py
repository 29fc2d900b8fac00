"""Session fixtures of the plugin tests: the pinned real sdists, downloaded once."""

from __future__ import annotations

from pathlib import Path

import pytest

from plugin_support import download_sdists

SDISTS = (
    # Its own build_ext.build_extension derives a .pyx name from every source, and its sdist
    # command runs Cython. Its .pyx needs Cython 3.0, whose output does not compile for
    # free-threaded 3.13 (with or without the plugin): it is built on the GIL 3.13.
    "msgpack==1.0.8",
    # cythonize() in setup.py, language c++, its own build_ext subclass setting flags per compiler.
    "cymem==2.0.8",
    # setup.py only, no pyproject.toml.
    "MarkupSafe==2.1.5",
    # setup.py only, with its own build_ext subclass that tolerates compile failures.
    "simplejson==3.19.3",
    # Two extensions sharing two C sources; Py_LIMITED_API, so GIL builds only.
    "psutil==5.9.8",
)


@pytest.fixture(scope="session")
def sdists(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """``name==version`` -> its sdist archive; unpack a fresh copy per build."""
    return download_sdists(SDISTS, tmp_path_factory.mktemp("sdists"))
